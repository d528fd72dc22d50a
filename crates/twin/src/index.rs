//! A shard's secondary index: for each indexed field (meta fields and configured parameter
//! paths), value → devices. `apply` keeps it current for every device a command touches, so
//! an indexed query reads the candidate devices from the index instead of scanning twins.
//!
//! Where every term of a query is indexed, [`FieldIndex::exact`] decides the answer from the
//! postings alone: counts, group-bys over indexed fields and the ids of a page read no twin.
//! Otherwise [`FieldIndex::candidates`] narrows: a superset of the matching devices, which the
//! caller evaluates against their twins.

use crate::model::{ShardState, Twin};
use crate::paths::PathDict;
use crate::query::{self, CmpOp, EvalContext, Expr, FieldValue, Literal};
use radar_core::{DeviceKey, Timestamp};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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

#[derive(Debug, Default, Clone)]
pub struct FieldIndex {
    fields: Vec<String>,
    /// field → value → devices.
    postings: HashMap<String, BTreeMap<String, BTreeSet<DeviceKey>>>,
    /// device → its indexed values, in `fields` order.
    values: HashMap<DeviceKey, Vec<Option<String>>>,
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

impl FieldIndex {
    /// An index over the meta fields and `paths`, built from the state's twins.
    pub fn build(
        paths: &[String],
        state: &ShardState,
    ) -> Result<Self, crate::table::ColdReadError> {
        let mut fields: Vec<String> = INDEXED_META_FIELDS.iter().map(|f| f.to_string()).collect();
        fields.extend(
            paths
                .iter()
                .filter(|p| !fields.contains(p))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let mut index = Self::empty(&fields);
        index.rebuild(state)?;
        Ok(index)
    }

    /// An index over exactly `fields` (e.g. another index's [`FieldIndex::fields`]), holding no
    /// device yet.
    pub fn empty(fields: &[String]) -> Self {
        Self {
            fields: fields.to_vec(),
            ..Default::default()
        }
    }

    /// Re-reads every twin's indexed values (one pass over the shard, cold twins from disk).
    fn rebuild(&mut self, state: &ShardState) -> Result<(), crate::table::ColdReadError> {
        self.postings.clear();
        self.values.clear();
        for twin in state.twins.iter() {
            self.update(&*twin?, &state.dict);
        }
        Ok(())
    }

    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    pub fn is_enabled(&self) -> bool {
        !self.fields.is_empty()
    }

    /// Re-reads `twin`'s indexed values and moves it between postings where they changed.
    pub fn update(&mut self, twin: &Twin, dict: &PathDict) {
        if self.fields.is_empty() {
            return;
        }
        let now: Vec<Option<String>> = self.fields.iter().map(|f| text_of(twin, dict, f)).collect();
        let before = self.values.get(&twin.key);
        if before == Some(&now) {
            return;
        }
        for (i, field) in self.fields.iter().enumerate() {
            let old = before.and_then(|b| b[i].as_ref());
            if old == now[i].as_ref() {
                continue;
            }
            let postings = self.postings.entry(field.clone()).or_default();
            if let Some(old) = old {
                if let Some(set) = postings.get_mut(old) {
                    set.remove(&twin.key);
                    if set.is_empty() {
                        postings.remove(old);
                    }
                }
            }
            if let Some(new) = &now[i] {
                postings
                    .entry(new.clone())
                    .or_default()
                    .insert(twin.key.clone());
            }
        }
        self.values.insert(twin.key.clone(), now);
    }

    /// Drops a device that no longer has a twin here.
    pub fn remove(&mut self, key: &DeviceKey) {
        let Some(values) = self.values.remove(key) else {
            return;
        };
        for (field, value) in self.fields.iter().zip(values) {
            let (Some(value), Some(postings)) = (value, self.postings.get_mut(field)) else {
                continue;
            };
            if let Some(set) = postings.get_mut(&value) {
                set.remove(key);
                if set.is_empty() {
                    postings.remove(&value);
                }
            }
        }
    }

    fn indexed(&self, field: &str) -> Option<&BTreeMap<String, BTreeSet<DeviceKey>>> {
        if !self.fields.iter().any(|f| f == field) {
            return None;
        }
        static EMPTY: BTreeMap<String, BTreeSet<DeviceKey>> = BTreeMap::new();
        Some(self.postings.get(field).unwrap_or(&EMPTY))
    }

    /// The devices that can match `expr`, or `None` when the index cannot narrow it: a
    /// superset, which the caller evaluates (an `AND` with one indexed side narrows by it).
    pub fn candidates(&self, expr: &Expr) -> Option<Cow<'_, BTreeSet<DeviceKey>>> {
        if let Some(exact) = self.exact(expr) {
            return Some(exact);
        }
        match expr {
            Expr::And(a, b) => match (self.candidates(a), self.candidates(b)) {
                (Some(a), Some(b)) => Some(Cow::Owned(intersect(&a, &b))),
                (Some(one), None) | (None, Some(one)) => Some(one),
                (None, None) => None,
            },
            Expr::Or(a, b) => {
                let (a, b) = (self.candidates(a)?, self.candidates(b)?);
                Some(Cow::Owned(a.union(&b).cloned().collect()))
            }
            _ => None,
        }
    }

    /// The devices that match `expr`, decided by the index alone (no twin is read), or `None`
    /// when a term is not indexed. Exact shapes: `field = "text"` and `field LIKE "pattern"` on
    /// an indexed field (whose values are text, compared as `query::matches` compares them),
    /// and `AND`/`OR` of exact shapes.
    pub fn exact(&self, expr: &Expr) -> Option<Cow<'_, BTreeSet<DeviceKey>>> {
        static EMPTY: BTreeSet<DeviceKey> = BTreeSet::new();
        match expr {
            Expr::Cmp {
                field,
                op: CmpOp::Eq,
                value: Literal::Str(value),
            } => Some(Cow::Borrowed(
                self.indexed(field)?.get(value).unwrap_or(&EMPTY),
            )),
            Expr::Like { field, pattern } => {
                let postings = self.indexed(field)?;
                let prefix: String = pattern
                    .chars()
                    .take_while(|c| *c != '*' && *c != '?')
                    .collect();
                // Distinct values are few next to devices: glob each value once.
                let mut matching = postings
                    .range::<String, _>((Bound::Included(&prefix), Bound::Unbounded))
                    .take_while(|(value, _)| value.starts_with(&prefix))
                    .filter(|(value, _)| query::glob(pattern.as_bytes(), value.as_bytes()))
                    .map(|(_, devices)| devices);
                let Some(first) = matching.next() else {
                    return Some(Cow::Borrowed(&EMPTY));
                };
                match matching.next() {
                    None => Some(Cow::Borrowed(first)),
                    Some(second) => {
                        let mut out = first.clone();
                        out.extend(second.iter().cloned());
                        for devices in matching {
                            out.extend(devices.iter().cloned());
                        }
                        Some(Cow::Owned(out))
                    }
                }
            }
            Expr::And(a, b) => {
                let (a, b) = (self.exact(a)?, self.exact(b)?);
                Some(Cow::Owned(intersect(&a, &b)))
            }
            Expr::Or(a, b) => {
                let (a, b) = (self.exact(a)?, self.exact(b)?);
                if a.is_empty() {
                    return Some(b);
                }
                if b.is_empty() {
                    return Some(a);
                }
                Some(Cow::Owned(a.union(&b).cloned().collect()))
            }
            _ => None,
        }
    }

    /// The indexed text of `field` for `device`: `None` when the field is not indexed,
    /// `Some(None)` when the device has no text value for it.
    pub fn value(&self, device: &DeviceKey, field: &str) -> Option<Option<&str>> {
        let i = self.fields.iter().position(|f| f == field)?;
        Some(self.values.get(device).and_then(|v| v[i].as_deref()))
    }

    /// How many devices hold each value of an indexed `field` (no entry for devices without
    /// one), or `None` when the field is not indexed.
    pub fn value_counts(&self, field: &str) -> Option<BTreeMap<String, u64>> {
        Some(
            self.indexed(field)?
                .iter()
                .map(|(value, devices)| (value.clone(), devices.len() as u64))
                .collect(),
        )
    }
}

/// `a ∩ b`, walking the smaller set and probing the larger.
fn intersect(a: &BTreeSet<DeviceKey>, b: &BTreeSet<DeviceKey>) -> BTreeSet<DeviceKey> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    small
        .iter()
        .filter(|k| large.contains(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{apply, Identity, ReportedParam, TwinCommand};

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

    fn keys(set: &BTreeSet<DeviceKey>) -> Vec<&str> {
        set.iter().map(|k| k.as_str()).collect()
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
            keys(&q(&state, "software_version = \"2.0\"").unwrap()),
            ["os::00D09E-B", "os::00D09E-C"]
        );
        assert_eq!(
            keys(
                &q(
                    &state,
                    "product_class LIKE \"HG8*\" AND Device.DeviceInfo.SoftwareVersion = \"2.0\""
                )
                .unwrap()
            ),
            ["os::00D09E-B"]
        );
        assert_eq!(
            keys(&q(&state, "serial = \"A\" OR serial = \"C\"").unwrap()).len(),
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
            keys(&q(&state, "software_version = \"2.0\"").unwrap()).len(),
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
                        candidates.contains(&twin.key),
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
            let matching: BTreeSet<DeviceKey> = state
                .twins
                .resident_twins()
                .filter(|t| query::matches(&expr, t, &state.dict, &ctx))
                .map(|t| t.key.clone())
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
}
