//! The twin cache over real sled trees: a twin evicted and read back is the twin it was, and
//! the index stays exact whatever is resident. A random command sequence runs against an
//! everything-hot state and a state whose twins are written back and evicted at random points;
//! after every step the two must hold the same twins and give the same index answers.

use crate::format::encode_changes;
use crate::{Batch, ShardStore, SledDatabase, SledShardStore};
use proptest::prelude::*;
use radar_core::{DeviceKey, Timestamp};
use radar_twin::command::{Identity, Outcome};
use radar_twin::index::FieldIndex;
use radar_twin::query;
use radar_twin::table::{CacheStats, ColdTwins, TwinTable};
use radar_twin::{apply, OperationKind, ReportedParam, ShardState, Source, TwinCommand};
use std::collections::BTreeSet;
use std::sync::Arc;

const DEVICES: u8 = 5;

fn device(n: u8) -> DeviceKey {
    // "S1" is a prefix of "S10": their chunk keys sort apart from their header keys.
    let serial = ["S1", "S10", "S2", "S1-A", "S3"][usize::from(n % DEVICES)];
    DeviceKey::from_oui_serial("00D09E", serial).unwrap()
}

#[derive(Debug, Clone)]
enum Step {
    Inform {
        device: u8,
        version: u8,
        hosts: u8,
    },
    Report {
        device: u8,
        path: u8,
        value: u16,
    },
    Names {
        device: u8,
        keep_hosts: u8,
    },
    Set {
        device: u8,
        value: u16,
    },
    Finish {
        device: u8,
        operation: u8,
    },
    Connect {
        device: u8,
        connected: bool,
    },
    /// Write back what changed, then evict until at most `keep` twins are resident.
    Checkpoint {
        keep: u8,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..DEVICES, 0u8..3, 0u8..4).prop_map(|(device, version, hosts)| Step::Inform { device, version, hosts }),
        2 => (0..DEVICES, 0u8..6, any::<u16>()).prop_map(|(device, path, value)| Step::Report { device, path, value }),
        1 => (0..DEVICES, 0u8..3).prop_map(|(device, keep_hosts)| Step::Names { device, keep_hosts }),
        1 => (0..DEVICES, any::<u16>()).prop_map(|(device, value)| Step::Set { device, value }),
        1 => (0..DEVICES, 1u8..4).prop_map(|(device, operation)| Step::Finish { device, operation }),
        1 => (0..DEVICES, any::<bool>()).prop_map(|(device, connected)| Step::Connect { device, connected }),
        2 => (0u8..4).prop_map(|keep| Step::Checkpoint { keep }),
    ]
}

fn param(path: String, value: String) -> ReportedParam {
    ReportedParam {
        path,
        value,
        ty: None,
        writable: Some(true),
    }
}

fn command(step: &Step, at: u64) -> Option<TwinCommand> {
    let at = Timestamp(at);
    Some(match *step {
        Step::Inform {
            device: d,
            version,
            hosts,
        } => {
            let mut params = vec![param(
                "Device.DeviceInfo.SoftwareVersion".into(),
                format!("{version}.0"),
            )];
            for h in 1..=hosts {
                params.push(param(
                    format!("Device.Hosts.Host.{h}.IPAddress"),
                    format!("10.0.0.{h}"),
                ));
            }
            TwinCommand::Inform {
                device: device(d),
                at,
                identity: Identity {
                    oui: "00D09E".into(),
                    product_class: ["HG8245", "Archer"][usize::from(version % 2)].into(),
                    serial: device(d).as_str()[11..].into(),
                    manufacturer: "Acme".into(),
                },
                events: vec![("2 PERIODIC".into(), String::new())],
                params,
            }
        }
        Step::Report {
            device: d,
            path,
            value,
        } => TwinCommand::ReportValues {
            device: device(d),
            at,
            source: Source::Gpv,
            // Template ids past the first chunk too (B6's chunking).
            params: vec![param(
                format!("Device.X{path}.Y{}", path * 20),
                value.to_string(),
            )],
        },
        Step::Names {
            device: d,
            keep_hosts,
        } => TwinCommand::ReportNames {
            device: device(d),
            at,
            prefix: "Device.Hosts.".into(),
            names: (1..=keep_hosts)
                .map(|h| (format!("Device.Hosts.Host.{h}.IPAddress"), false))
                .collect(),
        },
        Step::Set { device: d, value } => TwinCommand::EnqueueOperation {
            device: device(d),
            at,
            kind: OperationKind::SetParams {
                params: [("Device.X1.Y20".to_string(), value.to_string())].into(),
            },
            requested_by: "test".into(),
            ttl_ms: Some(5),
        },
        Step::Finish {
            device: d,
            operation,
        } => TwinCommand::CompleteOperation {
            device: device(d),
            at,
            operation: u64::from(operation),
            outcome: Outcome::Done {
                detail: "ok".into(),
            },
        },
        Step::Connect {
            device: d,
            connected: true,
        } => TwinCommand::UspConnected {
            device: device(d),
            at,
            mtp: "websocket".into(),
            reply_to: String::new(),
        },
        Step::Connect {
            device: d,
            connected: false,
        } => TwinCommand::UspDisconnected {
            device: device(d),
            at,
            reason: "gone".into(),
        },
        Step::Checkpoint { .. } => return None,
    })
}

/// Writes back every changed twin, as the state machine's checkpoint does.
fn write_back(
    store: &SledShardStore,
    state: &mut ShardState,
    dirty: &mut BTreeSet<DeviceKey>,
    first_template: &mut u32,
) {
    let mut twins = Vec::new();
    for key in std::mem::take(dirty) {
        let twin = state
            .twins
            .get_resident_mut(&key)
            .expect("changed twins stay resident");
        twins.push(encode_changes(twin).unwrap());
    }
    let templates = state.dict.templates()[*first_template as usize..].to_vec();
    store
        .write(&Batch {
            first_template_id: *first_template,
            new_templates: &templates,
            twins,
            deleted: vec![],
        })
        .unwrap();
    *first_template = state.dict.len() as u32;
}

const QUERIES: &[&str] = &[
    "software_version = \"1.0\"",
    "product_class LIKE \"HG*\"",
    "Device.DeviceInfo.SoftwareVersion = \"2.0\" OR product_class = \"Archer\"",
    "serial = \"S10\"",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn evicted_twins_read_back_identical(steps in proptest::collection::vec(step(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let db = SledDatabase::open(dir.path()).unwrap();
        let store = Arc::new(db.shard(0).unwrap());
        let paths = vec!["Device.DeviceInfo.SoftwareVersion".to_string()];
        let mut hot = ShardState::default();
        hot.index = FieldIndex::build(&paths, &hot).unwrap();
        let cold_store: Arc<dyn ColdTwins> = store.clone();
        let stats = Arc::new(CacheStats::default());
        let mut cold = ShardState {
            twins: TwinTable::with_cold(cold_store, [], stats.clone()),
            ..Default::default()
        };
        cold.index = FieldIndex::build(&paths, &cold).unwrap();
        let mut dirty = BTreeSet::new();
        let mut first_template = 0;
        for (at, step) in steps.iter().enumerate() {
            match command(step, at as u64 * 3) {
                Some(cmd) => {
                    let expected = apply(&mut hot, &cmd);
                    let got = apply(&mut cold, &cmd);
                    prop_assert_eq!(got, expected, "{:?}", step);
                    if cold.twins.is_resident(cmd.device()) {
                        dirty.insert(cmd.device().clone());
                    }
                }
                None => {
                    let Step::Checkpoint { keep } = step else { unreachable!() };
                    write_back(&store, &mut cold, &mut dirty, &mut first_template);
                    cold.twins.evict(|| stats.loaded() > u64::from(*keep), |_| true);
                    prop_assert!(stats.loaded() <= u64::from(*keep), "{} resident", stats.loaded());
                }
            }
            // Equal twins, cold ones read from disk.
            prop_assert!(hot.twins == cold.twins, "after {:?}", step);
            for text in QUERIES {
                let expr = query::parse(text).unwrap();
                prop_assert_eq!(
                    hot.index.exact(&expr).map(|s| s.into_owned()),
                    cold.index.exact(&expr).map(|s| s.into_owned()),
                    "{}", text
                );
            }
        }
        // Everything evicted: every twin comes back from disk as it is in the hot state.
        write_back(&store, &mut cold, &mut dirty, &mut first_template);
        cold.twins.evict(|| true, |_| true);
        prop_assert_eq!(cold.twins.resident().0, 0);
        for key in hot.twins.keys() {
            let back = store.load(key).unwrap().unwrap();
            prop_assert_eq!(&back, &hot.twins[key]);
        }
    }
}
