//! A shard's secondary index: for each indexed field (meta fields and configured parameter
//! paths), value → the set of devices holding it, as a bitmap of twin numbers (see
//! [`crate::table::TwinTable::number`]). `apply` keeps it current for every device a command
//! touches, so an indexed query reads the devices from the index instead of scanning twins.
//!
//! Where every term of a query is indexed, [`FieldIndex::exact`] decides the answer from the
//! postings alone: counts, group-bys over indexed fields and the ids of a page read no twin.
//! Otherwise [`FieldIndex::candidates`] narrows: a superset of the matching devices, which the
//! caller evaluates against their twins.
//!
//! Memory is what makes a cold twin cheap (issue 12): the index keeps no per-device record
//! (`apply` reads a twin's old values from the twin before changing it), a value held by one
//! device is a bare number, and larger sets are roaring bitmaps (about 2 bytes per device, or
//! one bit in dense runs).

use crate::model::{ShardState, Twin};
use crate::paths::PathDict;
use crate::query::{self, CmpOp, EvalContext, Expr, FieldValue, Literal};
use radar_core::Timestamp;
use roaring::RoaringBitmap;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::Duration;

/// Meta fields indexed in every shard (time-dependent ones like `online` are not indexable).
pub const INDEXED_META_FIELDS: &[&str] = &[
    "protocol",
    "mtp",
    "oui",
    "product_class",
    "serial",
    "software_version",
    "manufacturer",
];

/// Parameter paths indexed by default (TR-181 and TR-098 spellings).
pub const DEFAULT_INDEXED_PATHS: &[&str] = &[
    "Device.DeviceInfo.SoftwareVersion",
    "Device.DeviceInfo.ProductClass",
    "Device.DeviceInfo.ModelName",
    "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
    "InternetGatewayDevice.DeviceInfo.ProductClass",
    "InternetGatewayDevice.DeviceInfo.ModelName",
];

/// A set of twins, by number.
pub type TwinSet = RoaringBitmap;

/// The devices holding one value: most values of a field like `serial` are held by one.
#[derive(Debug, Clone)]
enum Posting {
    One(u32),
    Many(Box<RoaringBitmap>),
}

impl Posting {
    fn len(&self) -> u64 {
        match self {
            Posting::One(_) => 1,
            Posting::Many(set) => set.len(),
        }
    }

    fn to_set(&self) -> Cow<'_, RoaringBitmap> {
        match self {
            Posting::One(n) => Cow::Owned(std::iter::once(*n).collect()),
            Posting::Many(set) => Cow::Borrowed(set),
        }
    }

    fn intersection_len(&self, other: &RoaringBitmap) -> u64 {
        match self {
            Posting::One(n) => u64::from(other.contains(*n)),
            Posting::Many(set) => set.intersection_len(other),
        }
    }
}

/// One field's postings: value → devices.
type Postings = BTreeMap<Box<str>, Posting>;

/// The indexed texts of one twin, in [`FieldIndex::fields`] order.
pub type IndexedValues = Vec<Option<String>>;

#[derive(Debug, Default, Clone)]
pub struct FieldIndex {
    fields: Vec<String>,
    /// Per field, in `fields` order.
    postings: Vec<Postings>,
    /// Per field: false while it is being built (see [`FieldIndex::add_field`]); queries
    /// use only ready fields.
    ready: Vec<bool>,
}

/// The indexable text of a field: strings only (`=` and `LIKE` compare them exactly).
fn text_of(twin: &Twin, dict: &PathDict, field: &str) -> Option<String> {
    // The evaluation context matters only for time-dependent fields, which are not indexed.
    let ctx = EvalContext {
        now: Timestamp(0),
        online_window: Duration::ZERO,
        overdue_grace: Duration::ZERO,
    };
    match query::field(twin, dict, &ctx, field)? {
        FieldValue::Str(s) | FieldValue::Typed(s, _) => Some(s),
        FieldValue::Bool(_) | FieldValue::Time(_) => None,
    }
}

fn add(postings: &mut Postings, value: &str, number: u32) {
    match postings.get_mut(value) {
        None => {
            postings.insert(value.into(), Posting::One(number));
        }
        Some(Posting::One(n)) if *n == number => {}
        Some(posting @ Posting::One(_)) => {
            let Posting::One(n) = *posting else {
                unreachable!()
            };
            *posting = Posting::Many(Box::new([n, number].into_iter().collect()));
        }
        Some(Posting::Many(set)) => {
            set.insert(number);
        }
    }
}

fn take(postings: &mut Postings, value: &str, number: u32) {
    let Some(posting) = postings.get_mut(value) else {
        return;
    };
    let empty = match posting {
        Posting::One(n) => *n == number,
        Posting::Many(set) => {
            set.remove(number);
            match set.len() {
                0 => true,
                1 => {
                    let last = set.min().expect("one element");
                    *posting = Posting::One(last);
                    false
                }
                _ => false,
            }
        }
    };
    if empty {
        postings.remove(value);
    }
}

impl FieldIndex {
    /// An index over the meta fields and `paths`, built from the state's twins (one pass,
    /// cold twins streamed from disk).
    pub fn build(
        paths: &[String],
        state: &ShardState,
    ) -> Result<Self, crate::table::ColdReadError> {
        let mut index = Self::empty(&Self::fields_for(paths));
        for twin in state.twins.iter() {
            let twin = twin?;
            if let Some(number) = state.twins.number(&twin.key) {
                index.insert(number, &twin, &state.dict);
            }
        }
        Ok(index)
    }

    /// Opens a shard's state: one pass over its twins (cold ones from disk) builds the index
    /// over the meta fields and `paths` and fills the table's columns.
    pub fn open(
        paths: &[String],
        state: &mut ShardState,
    ) -> Result<(), crate::table::ColdReadError> {
        let ShardState {
            twins, dict, index, ..
        } = state;
        let mut built = Self::empty(&Self::fields_for(paths));
        twins.open_pass(dict, |number, twin| built.insert(number, twin, dict))?;
        *index = built;
        Ok(())
    }

    /// The meta fields, then `paths`.
    fn fields_for(paths: &[String]) -> Vec<String> {
        let mut fields: Vec<String> = INDEXED_META_FIELDS.iter().map(|f| f.to_string()).collect();
        for path in paths {
            if !fields.contains(path) {
                fields.push(path.clone());
            }
        }
        fields
    }

    /// An index over exactly `fields` (e.g. another index's [`FieldIndex::fields`]), holding no
    /// device yet.
    pub fn empty(fields: &[String]) -> Self {
        Self {
            fields: fields.to_vec(),
            postings: vec![Postings::new(); fields.len()],
            ready: vec![true; fields.len()],
        }
    }

    /// Starts indexing `field` while the shard runs: from now on `apply` keeps it current for
    /// every twin it changes, and the builder adds every other twin with
    /// [`FieldIndex::add_twin_value`]; queries ignore it until [`FieldIndex::mark_ready`].
    /// Adding a twin the builder meets after `apply` changed it is harmless (its current
    /// value, again). False when the field is already indexed or being built.
    pub fn add_field(&mut self, field: &str) -> bool {
        if self.fields.iter().any(|f| f == field) {
            return false;
        }
        self.fields.push(field.to_owned());
        self.postings.push(Postings::new());
        self.ready.push(false);
        true
    }

    /// The builder's step: twin `number`'s current value of `field`, added to its posting.
    pub fn add_twin_value(&mut self, field: &str, number: u32, twin: &Twin, dict: &PathDict) {
        let Some(i) = self.fields.iter().position(|f| f == field) else {
            return;
        };
        if let Some(value) = text_of(twin, dict, field) {
            add(&mut self.postings[i], &value, number);
        }
    }

    /// Queries may use `field` from now on.
    pub fn mark_ready(&mut self, field: &str) {
        if let Some(i) = self.fields.iter().position(|f| f == field) {
            self.ready[i] = true;
        }
    }

    /// Whether `field` is indexed and ready, building, or not indexed.
    pub fn field_state(&self, field: &str) -> Option<bool> {
        let i = self.fields.iter().position(|f| f == field)?;
        Some(self.ready[i])
    }

    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    pub fn is_enabled(&self) -> bool {
        !self.fields.is_empty()
    }

    /// `twin`'s indexed texts.
    pub fn values_of(&self, twin: &Twin, dict: &PathDict) -> IndexedValues {
        self.fields.iter().map(|f| text_of(twin, dict, f)).collect()
    }

    /// Adds a twin not yet in the index as twin `number`.
    pub fn insert(&mut self, number: u32, twin: &Twin, dict: &PathDict) {
        let now = self.values_of(twin, dict);
        self.change(number, None, Some(&now));
    }

    /// Moves twin `number` from the postings of its `before` values (none: it was not
    /// indexed) to those of its `after` values (none: it is gone).
    pub fn change(
        &mut self,
        number: u32,
        before: Option<&IndexedValues>,
        after: Option<&IndexedValues>,
    ) {
        for (i, postings) in self.postings.iter_mut().enumerate() {
            let old = before.and_then(|b| b.get(i)).and_then(Option::as_deref);
            let new = after.and_then(|a| a.get(i)).and_then(Option::as_deref);
            if old == new {
                continue;
            }
            if let Some(old) = old {
                take(postings, old, number);
            }
            if let Some(new) = new {
                add(postings, new, number);
            }
        }
    }

    /// Removes twin `number` from every posting, without knowing its values (slow: reads
    /// every posting of every field).
    pub fn forget(&mut self, number: u32) {
        for postings in &mut self.postings {
            let held: Vec<Box<str>> = postings
                .iter()
                .filter(|(_, p)| match p {
                    Posting::One(n) => *n == number,
                    Posting::Many(set) => set.contains(number),
                })
                .map(|(v, _)| v.clone())
                .collect();
            for value in held {
                take(postings, &value, number);
            }
        }
    }

    /// Whether queries can use `field` (indexed and built).
    pub fn is_indexed(&self, field: &str) -> bool {
        self.field_state(field) == Some(true)
    }

    fn indexed(&self, field: &str) -> Option<&Postings> {
        let i = self.fields.iter().position(|f| f == field)?;
        self.ready[i].then(|| &self.postings[i])
    }

    /// The devices that can match `expr`, or `None` when the index cannot narrow it: a
    /// superset, which the caller evaluates (an `AND` with one indexed side narrows by it).
    pub fn candidates(&self, expr: &Expr) -> Option<Cow<'_, TwinSet>> {
        if let Some(exact) = self.exact(expr) {
            return Some(exact);
        }
        match expr {
            Expr::And(a, b) => match (self.candidates(a), self.candidates(b)) {
                (Some(a), Some(b)) => Some(Cow::Owned(a.as_ref() & b.as_ref())),
                (Some(one), None) | (None, Some(one)) => Some(one),
                (None, None) => None,
            },
            Expr::Or(a, b) => {
                let (a, b) = (self.candidates(a)?, self.candidates(b)?);
                Some(Cow::Owned(a.as_ref() | b.as_ref()))
            }
            _ => None,
        }
    }

    /// The devices that match `expr`, decided by the index alone (no twin is read), or `None`
    /// when a term is not indexed. Exact shapes: `field = "text"` and `field LIKE "pattern"` on
    /// an indexed field (whose values are text, compared as `query::matches` compares them),
    /// and `AND`/`OR` of exact shapes.
    pub fn exact(&self, expr: &Expr) -> Option<Cow<'_, TwinSet>> {
        match expr {
            Expr::Cmp {
                field,
                op: CmpOp::Eq,
                value: Literal::Str(value),
            } => Some(
                self.indexed(field)?
                    .get(value.as_str())
                    .map_or_else(|| Cow::Owned(TwinSet::new()), Posting::to_set),
            ),
            Expr::Like { field, pattern } => {
                let postings = self.indexed(field)?;
                let prefix: String = pattern
                    .chars()
                    .take_while(|c| *c != '*' && *c != '?')
                    .collect();
                // Distinct values are few next to devices: glob each value once.
                let mut matching = postings
                    .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                    .take_while(|(value, _)| value.starts_with(&prefix))
                    .filter(|(value, _)| query::glob(pattern.as_bytes(), value.as_bytes()))
                    .map(|(_, devices)| devices);
                let Some(first) = matching.next() else {
                    return Some(Cow::Owned(TwinSet::new()));
                };
                match matching.next() {
                    None => Some(first.to_set()),
                    Some(second) => {
                        let mut out = first.to_set().into_owned();
                        out |= second.to_set().as_ref();
                        for devices in matching {
                            match devices {
                                Posting::One(n) => {
                                    out.insert(*n);
                                }
                                Posting::Many(set) => out |= set.as_ref(),
                            }
                        }
                        Some(Cow::Owned(out))
                    }
                }
            }
            Expr::And(a, b) => {
                let (a, b) = (self.exact(a)?, self.exact(b)?);
                Some(Cow::Owned(a.as_ref() & b.as_ref()))
            }
            Expr::Or(a, b) => {
                let (a, b) = (self.exact(a)?, self.exact(b)?);
                if a.is_empty() {
                    return Some(b);
                }
                if b.is_empty() {
                    return Some(a);
                }
                Some(Cow::Owned(a.as_ref() | b.as_ref()))
            }
            _ => None,
        }
    }

    /// How many devices hold each value of an indexed `field` (no entry for devices without
    /// one), or `None` when the field is not indexed. With `within`, only those devices count.
    pub fn value_counts(
        &self,
        field: &str,
        within: Option<&TwinSet>,
    ) -> Option<BTreeMap<String, u64>> {
        Some(
            self.indexed(field)?
                .iter()
                .map(|(value, devices)| {
                    let n = match within {
                        Some(set) => devices.intersection_len(set),
                        None => devices.len(),
                    };
                    (value.to_string(), n)
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{apply, Identity, ReportedParam, TwinCommand};
    use radar_core::DeviceKey;

    fn inform(serial: &str, class: &str, version: &str) -> TwinCommand {
        TwinCommand::Inform {
            device: DeviceKey::from_oui_serial("00D09E", serial).unwrap(),
            at: Timestamp(1),
            identity: Identity {
                oui: "00D09E".into(),
                product_class: class.into(),
                serial: serial.into(),
                manufacturer: "Acme".into(),
            },
            events: vec![],
            params: vec![ReportedParam {
                path: "Device.DeviceInfo.SoftwareVersion".into(),
                value: version.into(),
                ty: None,
                writable: Some(false),
            }],
        }
    }

    /// The keys of a set of twins, sorted.
    fn keys<'a>(state: &'a ShardState, set: &TwinSet) -> Vec<&'a str> {
        let mut keys: Vec<&str> = set
            .iter()
            .map(|n| state.twins.key_of(n).expect("a live number").as_str())
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn the_index_follows_applied_commands_and_narrows_queries() {
        let mut state = ShardState::default();
        state.index =
            FieldIndex::build(&["Device.DeviceInfo.SoftwareVersion".to_string()], &state).unwrap();
        apply(&mut state, &inform("A", "HG8245", "1.0")).unwrap();
        apply(&mut state, &inform("B", "HG8546", "2.0")).unwrap();
        apply(&mut state, &inform("C", "Archer", "2.0")).unwrap();
        let q = |state: &ShardState, text: &str| {
            state
                .index
                .candidates(&query::parse(text).unwrap())
                .map(Cow::into_owned)
        };
        assert_eq!(
            keys(&state, &q(&state, "software_version = \"2.0\"").unwrap()),
            ["os::00D09E-B", "os::00D09E-C"]
        );
        assert_eq!(
            keys(
                &state,
                &q(
                    &state,
                    "product_class LIKE \"HG8*\" AND Device.DeviceInfo.SoftwareVersion = \"2.0\""
                )
                .unwrap()
            ),
            ["os::00D09E-B"]
        );
        assert_eq!(
            keys(
                &state,
                &q(&state, "serial = \"A\" OR serial = \"C\"").unwrap()
            )
            .len(),
            2
        );
        assert!(q(&state, "online = true").is_none(), "not indexable");
        assert!(
            q(&state, "serial = \"A\" OR online = true").is_none(),
            "an OR needs both sides"
        );
        // An upgrade moves the device between postings.
        apply(&mut state, &inform("A", "HG8245", "2.0")).unwrap();
        assert_eq!(
            keys(&state, &q(&state, "software_version = \"2.0\"").unwrap()).len(),
            3
        );
        assert!(q(&state, "software_version = \"1.0\"").unwrap().is_empty());
    }

    #[test]
    fn candidates_always_contain_every_match() {
        let mut state = ShardState::default();
        state.index = FieldIndex::build(&[], &state).unwrap();
        for (i, class) in ["HG8245", "HG8546", "Archer", "HG"].iter().enumerate() {
            apply(&mut state, &inform(&format!("S{i}"), class, "1.0")).unwrap();
        }
        let ctx = EvalContext {
            now: Timestamp(10),
            online_window: Duration::from_secs(1),
            overdue_grace: Duration::ZERO,
        };
        for text in [
            "product_class LIKE \"HG*\"",
            "product_class = \"HG\"",
            "product_class LIKE \"HG8*\" AND serial = \"S1\"",
            "product_class = \"Archer\" OR product_class = \"HG\"",
        ] {
            let expr = query::parse(text).unwrap();
            let candidates = state.index.candidates(&expr).unwrap();
            for twin in state.twins.resident_twins() {
                if query::matches(&expr, twin, &state.dict, &ctx) {
                    assert!(
                        candidates.contains(state.twins.number(&twin.key).unwrap()),
                        "{text}: {} missing",
                        twin.key
                    );
                }
            }
        }
    }

    #[test]
    fn exact_answers_equal_evaluating_every_twin() {
        let mut state = ShardState::default();
        state.index =
            FieldIndex::build(&["Device.DeviceInfo.SoftwareVersion".to_string()], &state).unwrap();
        let classes = ["HG8245", "HG8546", "Archer", "HG", "hg8245", ""];
        let versions = ["1.0", "2.0", "2.0.1", "10.0", "2.0*"];
        for i in 0..60 {
            apply(
                &mut state,
                &inform(
                    &format!("S{i:02}"),
                    classes[i % classes.len()],
                    versions[(i / 2) % versions.len()],
                ),
            )
            .unwrap();
        }
        let ctx = EvalContext {
            now: Timestamp(10),
            online_window: Duration::from_secs(1),
            overdue_grace: Duration::ZERO,
        };
        let mut exact_shapes = 0;
        for text in [
            "product_class = \"HG\"",
            "product_class = \"nothing\"",
            "product_class LIKE \"HG*\"",
            "product_class LIKE \"*8*\"",
            "product_class LIKE \"HG??45\"",
            "product_class LIKE \"*\"",
            "Device.DeviceInfo.SoftwareVersion LIKE \"2.0*\"",
            "Device.DeviceInfo.SoftwareVersion = \"2.0*\"",
            "product_class LIKE \"HG*\" AND software_version = \"2.0\"",
            "serial = \"S01\" OR serial = \"S07\" OR product_class = \"Archer\"",
            "(product_class = \"HG\" OR product_class = \"Archer\") AND Device.DeviceInfo.SoftwareVersion LIKE \"1*\"",
            "product_class = \"HG\" AND online = true",
            "NOT product_class = \"HG\"",
        ] {
            let expr = query::parse(text).unwrap();
            let matching: TwinSet = state
                .twins
                .resident_twins()
                .filter(|t| query::matches(&expr, t, &state.dict, &ctx))
                .map(|t| state.twins.number(&t.key).unwrap())
                .collect();
            if let Some(exact) = state.index.exact(&expr) {
                exact_shapes += 1;
                assert_eq!(*exact, matching, "{text}");
            }
            if let Some(candidates) = state.index.candidates(&expr) {
                assert!(candidates.is_superset(&matching), "{text}");
            }
        }
        assert_eq!(
            exact_shapes, 11,
            "every shape of indexed terms is decided by the index"
        );
    }

    /// A field added while commands keep applying: the builder visits every twin (some after
    /// `apply` changed them, some before), and the finished field answers exactly; until then
    /// queries do not use it.
    #[test]
    fn a_field_built_online_answers_exactly() {
        let mut state = ShardState::default();
        state.index = FieldIndex::build(&[], &state).unwrap();
        for i in 0..40 {
            apply(
                &mut state,
                &inform(&format!("S{i:02}"), "HG", &format!("{}.0", i % 4)),
            )
            .unwrap();
        }
        let field = "Device.DeviceInfo.SoftwareVersion";
        let expr = query::parse(&format!("{field} = \"2.0\"")).unwrap();
        assert!(state.index.exact(&expr).is_none());
        assert!(state.index.add_field(field));
        assert!(!state.index.add_field(field), "added once");
        let keys: Vec<DeviceKey> = state.twins.keys().cloned().collect();
        for (step, key) in keys.iter().enumerate() {
            // Upgrades land on twins the builder has passed and on twins it has yet to meet.
            if step % 5 == 0 {
                let serial = format!("S{:02}", (step * 7) % 40);
                apply(&mut state, &inform(&serial, "HG", "2.0")).unwrap();
            }
            let ShardState {
                twins, index, dict, ..
            } = &mut state;
            let number = twins.number(key).unwrap();
            let twin = twins.get(key).unwrap().unwrap();
            index.add_twin_value(field, number, &twin, dict);
            assert!(index.exact(&expr).is_none(), "not used while building");
        }
        state.index.mark_ready(field);
        let ctx = EvalContext {
            now: Timestamp(10),
            online_window: Duration::from_secs(1),
            overdue_grace: Duration::ZERO,
        };
        let matching: TwinSet = state
            .twins
            .resident_twins()
            .filter(|t| query::matches(&expr, t, &state.dict, &ctx))
            .map(|t| state.twins.number(&t.key).unwrap())
            .collect();
        assert!(matching.len() > 10);
        assert_eq!(*state.index.exact(&expr).unwrap(), matching);
        let other = query::parse(&format!("{field} = \"1.0\"")).unwrap();
        let ones = state
            .twins
            .resident_twins()
            .filter(|t| query::matches(&other, t, &state.dict, &ctx))
            .count();
        assert_eq!(state.index.exact(&other).unwrap().len(), ones as u64);
    }
}
