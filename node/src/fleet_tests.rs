//! Tests of `fleet`: pages, counts and merges over hot and cold twins.

use super::*;
use radar_twin::{apply, ShardControl, TwinCommand};

const PARTITIONS: u32 = 64;

fn ring(shards: &[u32]) -> Ring {
    let ids: Vec<ShardId> = shards.iter().map(|s| ShardId(*s)).collect();
    Ring::new(PARTITIONS, &ids, 16).unwrap()
}

fn view(ring: Ring, version: u64) -> FleetView {
    FleetView {
        layout_version: version,
        ring: Some(ring),
        replicas: BTreeMap::new(),
    }
}

fn all() -> DeviceQuery {
    DeviceQuery {
        text: String::new(),
        expr: query::parse("").unwrap(),
        limit: 1000,
        cursor: None,
        fields: Vec::new(),
    }
}

fn ctx() -> EvalContext {
    EvalContext {
        now: Timestamp(0),
        online_window: Duration::from_secs(60),
        overdue_grace: Duration::ZERO,
    }
}

/// Between the layout that gives frozen partitions to the new shard and their release, the
/// source still holds their twins: it counts them only for an asker whose ring still gives
/// them to it, and a listing keeps each device at its owner by the asker's ring.
#[test]
fn a_source_shard_hands_frozen_twins_over_at_the_askers_layout_version() {
    let (old, new) = (ring(&[0, 1]), ring(&[0, 1, 2]));
    let moving: Vec<u32> = old
        .moves_to(&new)
        .into_iter()
        .filter(|(_, from, _)| *from == ShardId(0))
        .map(|(p, _, _)| p.0)
        .collect();
    assert!(!moving.is_empty());
    let mut state = ShardState::default();
    let mut owned = Vec::new();
    for i in 0..400 {
        let key = DeviceKey::parse(&format!("os::00D09E-F{i:04}")).unwrap();
        if old.shard_for_key(key.as_str()) != ShardId(0) {
            continue;
        }
        let command = TwinCommand::UspConnected {
            device: key.clone(),
            at: Timestamp(1),
            mtp: "websocket".into(),
            reply_to: String::new(),
        };
        apply(&mut state, &command).unwrap();
        owned.push(key);
    }
    radar_twin::moving::apply_control(
        &mut state,
        &ShardControl::Freeze {
            partition_count: PARTITIONS,
            partitions: moving.clone(),
        },
    );
    let staying = owned
        .iter()
        .filter(|k| new.shard_for_key(k.as_str()) == ShardId(0))
        .count();
    assert!(staying < owned.len());
    let count = |v: Option<&FleetView>| {
        count_owned(&state, ShardId(0), v, &all().expr, None, &ctx()).total as usize
    };
    assert_eq!(count(Some(&view(old.clone(), 5))), owned.len());
    assert_eq!(count(Some(&view(new.clone(), 6))), staying);
    assert_eq!(count(None), owned.len());

    // Listing: the source lists everything it holds; the asker keeps each device at its
    // owner by its own ring.
    let page = || ShardPage {
        devices: query_state(&state, &all(), &ctx(), None).devices,
        more: false,
        scanned: 0,
    };
    let mut pages = vec![(ShardId(0), Some(page()))];
    keep_owned(&mut pages, Some(&old));
    assert_eq!(pages[0].1.as_ref().unwrap().devices.len(), owned.len());
    let mut pages = vec![(ShardId(0), Some(page()))];
    keep_owned(&mut pages, Some(&new));
    assert_eq!(pages[0].1.as_ref().unwrap().devices.len(), staying);
}

fn summary(id: &str) -> DeviceSummary {
    DeviceSummary {
        id: id.into(),
        protocol: String::new(),
        mtp: String::new(),
        online: false,
        last_contact: String::new(),
        oui: String::new(),
        product_class: String::new(),
        serial: String::new(),
        software_version: String::new(),
        fields: BTreeMap::new(),
    }
}

/// A page that lost devices to `keep_owned` stops the merged page at its last device, so
/// the next page resumes there and no device of that shard is skipped.
#[test]
fn merged_pages_stop_where_a_filtered_shard_page_stopped() {
    let page = |ids: &[&str], more| ShardPage {
        devices: ids.iter().map(|i| summary(i)).collect(),
        more,
        scanned: 0,
    };
    // Shard 0 returned a..c (limit 3, more) but lost b and c to the filter; shard 1 has x, y.
    let pages = vec![
        (ShardId(0), Some(page(&["a"], true))),
        (ShardId(1), Some(page(&["d", "e"], false))),
    ];
    let answer = merge_pages(pages, 3, Some("c".into()));
    let ids: Vec<&str> = answer.devices.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, vec!["a"]);
    assert_eq!(answer.next_cursor.as_deref(), Some("a"));
    // Everything shard 0 returned was dropped: the cursor still moves past it.
    let pages = vec![
        (ShardId(0), Some(page(&[], true))),
        (ShardId(1), Some(page(&["d"], false))),
    ];
    let answer = merge_pages(pages, 3, Some("c".into()));
    assert!(answer.devices.is_empty());
    assert_eq!(answer.next_cursor.as_deref(), Some("c"));
}

fn ninety_devices() -> ShardState {
    use radar_twin::command::{Identity, ReportedParam};
    use radar_twin::index::{FieldIndex, DEFAULT_INDEXED_PATHS};
    let mut state = ShardState::default();
    let paths: Vec<String> = DEFAULT_INDEXED_PATHS
        .iter()
        .map(|p| p.to_string())
        .collect();
    state.index = FieldIndex::build(&paths, &state).unwrap();
    let classes = ["HG8245", "HG8546", "Archer"];
    for i in 0..90u32 {
        let serial = format!("C{i:03}");
        let mut params = vec![ReportedParam {
            path: "Device.DeviceInfo.SoftwareVersion".into(),
            value: format!("{}.{}", i % 4, i % 3),
            ty: None,
            writable: Some(false),
        }];
        // A third of the devices never report a model name: they group as `(none)`.
        if i % 3 != 0 {
            params.push(ReportedParam {
                path: "Device.DeviceInfo.ModelName".into(),
                value: format!("M{}", i % 5),
                ty: None,
                writable: Some(false),
            });
        }
        let command = TwinCommand::Inform {
            device: DeviceKey::from_oui_serial("00D09E", &serial).unwrap(),
            at: Timestamp(1),
            identity: Identity {
                oui: "00D09E".into(),
                product_class: classes[i as usize % 3].into(),
                serial,
                manufacturer: "Acme".into(),
            },
            events: vec![],
            params,
        };
        apply(&mut state, &command).unwrap();
    }
    state
}

const QUERIES: &[&str] = &[
    "",
    "product_class = \"Archer\"",
    "product_class LIKE \"HG*\" AND Device.DeviceInfo.SoftwareVersion LIKE \"1.*\"",
    "Device.DeviceInfo.ModelName = \"M2\" OR product_class = \"HG8546\"",
    "product_class = \"Archer\" AND online = true",
    "Device.DeviceInfo.ModelName LIKE \"M*\" AND serial LIKE \"*7\"",
];

/// A store whose twins are all on disk and none in memory answers every query (indexed,
/// narrowed, scanned; counted, grouped, paged) as the everything-hot state does.
#[test]
fn answers_are_the_same_from_hot_and_from_cold_twins() {
    use radar_store::{Batch, ShardStore, SledDatabase};
    use radar_twin::table::{CacheStats, ColdTwins, TwinTable};
    let hot = ninety_devices();
    let dir = tempfile::tempdir().unwrap();
    let db = SledDatabase::open(dir.path()).unwrap();
    let store = Arc::new(db.shard(0).unwrap());
    let writes = hot
        .twins
        .resident_twins()
        .map(|t| radar_store::encode_full(t).unwrap())
        .collect();
    store
        .write(&Batch {
            first_template_id: 0,
            new_templates: hot.dict.templates(),
            twins: writes,
            deleted: vec![],
        })
        .unwrap();
    let loaded = store.load_keys().unwrap();
    let cold_store: Arc<dyn ColdTwins> = store.clone();
    let stats = Arc::new(CacheStats::default());
    let mut cold = ShardState {
        dict: PathDict::from_templates(loaded.templates),
        twins: TwinTable::with_cold(cold_store, loaded.keys, stats.clone()),
        ..Default::default()
    };
    radar_twin::index::FieldIndex::open(hot.index.fields(), &mut cold).unwrap();
    assert_eq!(stats.loaded(), 0);
    // Opening filled the columns the background passes read, as the twins would.
    let hot_columns: Vec<_> = hot.twins.columns().collect();
    let cold_columns: Vec<_> = cold.twins.columns().collect();
    assert_eq!(hot_columns, cold_columns);
    assert!(cold_columns
        .iter()
        .all(|(_, c)| c.has(radar_twin::table::Columns::CWMP)));
    for text in QUERIES {
        let expr = query::parse(text).unwrap();
        for group_by in [None, Some("Device.DeviceInfo.ModelName"), Some("online")] {
            assert_eq!(
                count_state(&cold, &expr, group_by, &ctx(), None),
                count_state(&hot, &expr, group_by, &ctx(), None),
                "{text:?} by {group_by:?}"
            );
        }
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let q = DeviceQuery {
                text: text.to_string(),
                expr: expr.clone(),
                limit: 7,
                cursor: cursor.clone(),
                fields: vec!["Device.DeviceInfo.ModelName".into()],
            };
            let (a, b) = (
                query_state(&hot, &q, &ctx(), None),
                query_state(&cold, &q, &ctx(), None),
            );
            assert_eq!(a.devices, b.devices, "{text:?} after {cursor:?}");
            assert_eq!(a.more, b.more);
            pages += 1;
            match a.devices.last() {
                Some(last) if a.more => cursor = Some(DeviceKey::parse(&last.id).unwrap()),
                _ => break,
            }
        }
        assert!(pages >= 1);
    }
    assert_eq!(stats.loaded(), 0, "reads do not make twins resident");
    assert!(stats.misses.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// Counts the index answers alone are the counts of evaluating every twin: totals and
/// group-bys (with `(none)`), with and without excluded twins.
#[test]
fn counts_from_the_index_equal_counts_from_the_twins() {
    let state = ninety_devices();
    let scan =
        |expr: &Expr, group_by: Option<&str>, exclude: Option<&dyn Fn(&DeviceKey) -> bool>| {
            let mut total = 0;
            let mut groups = BTreeMap::new();
            for twin in state.twins.resident_twins() {
                if exclude.is_some_and(|f| f(&twin.key))
                    || !query::matches(expr, twin, &state.dict, &ctx())
                {
                    continue;
                }
                total += 1;
                if let Some(f) = group_by {
                    let key = query::field(twin, &state.dict, &ctx(), f)
                        .map(|v| v.to_text())
                        .unwrap_or_else(|| "(none)".into());
                    *groups.entry(key).or_insert(0u64) += 1;
                }
            }
            (total, groups)
        };
    let odd = |k: &DeviceKey| k.as_str().ends_with(['1', '3', '5', '7', '9']);
    let mut from_index = 0;
    for text in &QUERIES[..5] {
        let expr = query::parse(text).unwrap();
        for group_by in [None, Some("Device.DeviceInfo.ModelName"), Some("online")] {
            for exclude in [None, Some(&odd as &dyn Fn(&DeviceKey) -> bool)] {
                let indexed = count_from_index(&state, &expr, group_by, exclude).is_some();
                if indexed {
                    from_index += 1;
                }
                let count = count_state(&state, &expr, group_by, &ctx(), exclude);
                assert_eq!(
                    (count.total, count.groups),
                    scan(&expr, group_by, exclude),
                    "{text:?} grouped by {group_by:?}, excluding: {}",
                    exclude.is_some()
                );
                // The answer says whether it read twins, and how many.
                assert_eq!(count.scanned == 0, indexed, "{text:?} by {group_by:?}");
            }
        }
    }
    assert_eq!(from_index, 16, "indexed queries and groups read no twin");
}
