//! Moving partitions between shards (`radar cluster add-shard`): a twin travels in a form that
//! does not depend on the source shard's path dictionary ([`MovedTwin`]), and the source shard
//! freezes the partitions it hands over ([`ShardControl`]) so no write lands there once the
//! copy has been read.
//!
//! The order, run by the node that rebalances (node/src/cluster/rebalance.rs):
//! 1. `Freeze` the moving partitions in the source: commands for their devices are refused
//!    with [`ApplyError::Moving`](crate::ApplyError::Moving) from that entry on; proposers wait
//!    for the next layout and retry at the new owner.
//! 2. Read the frozen twins at the source leader and commit them in the target
//!    (`TwinCommand::ImportTwin`).
//! 3. Bump the layout: the target owns the partitions from that version on.
//! 4. `Release` them in the source: their twins are deleted there.
//!
//! Every step is idempotent, so an interrupted move is finished by running it again.

use crate::model::{Meta, Param, ShardState, Twin, TwinEvent};
use crate::operation::Operation;
use crate::paths::PathDict;
use radar_core::DeviceKey;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// A twin with its parameters keyed by path rather than by the shard's dictionary ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedTwin {
    pub key: DeviceKey,
    pub meta: Meta,
    pub params: Vec<(String, Param)>,
    pub operations: Vec<Operation>,
    pub next_operation_id: u64,
    pub events: VecDeque<TwinEvent>,
}

impl MovedTwin {
    pub fn export(twin: &Twin, dict: &PathDict) -> Self {
        Self {
            key: twin.key.clone(),
            meta: twin.meta.clone(),
            params: twin
                .params
                .iter()
                .map(|(id, p)| (dict.render(id), p.clone()))
                .collect(),
            operations: twin.operations.clone(),
            next_operation_id: twin.next_operation_id,
            events: twin.events.clone(),
        }
    }

    /// The twin in the receiving shard's dictionary, marked wholly changed for storage.
    pub fn into_twin(self, dict: &mut PathDict) -> Twin {
        let mut twin = Twin::new(self.key);
        twin.meta = self.meta;
        twin.params = self
            .params
            .into_iter()
            .map(|(path, p)| (dict.intern(&path), p))
            .collect();
        twin.params.sort_by_key(|p| p.0);
        twin.params.dedup_by(|a, b| a.0 == b.0);
        twin.operations = self.operations;
        twin.next_operation_id = self.next_operation_id;
        twin.events = self.events;
        twin.changes.put = twin.params.iter().map(|(id, _)| *id).collect();
        twin.changes.header = true;
        twin
    }
}

/// Shard-level commands of a partition move, carried in Raft entries beside twin commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardControl {
    /// Refuse commands for devices of `partitions` (out of `partition_count`) from now on.
    Freeze {
        partition_count: u32,
        partitions: Vec<u32>,
    },
    /// The partitions now belong to another shard: delete their twins. They stay frozen here,
    /// so a command routed by a node that has not seen the new layout yet is refused (and
    /// retried at the owner) instead of recreating a twin in a shard that no longer owns it.
    Release { partitions: Vec<u32> },
}

/// Partitions a shard is handing over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frozen {
    pub partition_count: u32,
    pub partitions: BTreeSet<u32>,
}

impl Frozen {
    pub fn contains(&self, device: &DeviceKey) -> bool {
        !self.partitions.is_empty() && self.partitions.contains(&self.partition_of(device))
    }

    fn partition_of(&self, device: &DeviceKey) -> u32 {
        radar_core::partition_of(device.as_str(), self.partition_count.max(1)).0
    }
}

/// Applies a control command; returns the devices whose twins it deleted.
pub fn apply_control(state: &mut ShardState, control: &ShardControl) -> Vec<DeviceKey> {
    match control {
        ShardControl::Freeze {
            partition_count,
            partitions,
        } => {
            state.frozen.partition_count = *partition_count;
            state.frozen.partitions.extend(partitions.iter().copied());
            Vec::new()
        }
        ShardControl::Release { partitions } => {
            let released: BTreeSet<u32> = partitions.iter().copied().collect();
            let frozen = &state.frozen;
            let gone: Vec<DeviceKey> = state
                .twins
                .keys()
                .filter(|k| {
                    frozen.partition_count > 0 && released.contains(&frozen.partition_of(k))
                })
                .cloned()
                .collect();
            for key in &gone {
                if let Some(number) = state.twins.number(key).filter(|_| state.index.is_enabled()) {
                    // Unindexing reads the twin's values; if disk cannot give them, every
                    // posting is searched instead (the number will be reused).
                    let before = match state.twins.get(key) {
                        Ok(Some(twin)) => Some(state.index.values_of(&twin, &state.dict)),
                        _ => None,
                    };
                    match before {
                        Some(before) => state.index.change(number, Some(&before), None),
                        None => state.index.forget(number),
                    }
                }
                state.twins.remove(key);
            }
            gone
        }
    }
}

/// The devices of `partitions`, exported for the receiving shard.
pub fn export_partitions(
    state: &ShardState,
    partition_count: u32,
    partitions: &BTreeSet<u32>,
) -> Result<Vec<MovedTwin>, crate::table::ColdReadError> {
    let moving = |k: &DeviceKey| {
        partitions.contains(&radar_core::partition_of(k.as_str(), partition_count).0)
    };
    let keys: Vec<DeviceKey> = state.twins.keys().filter(|k| moving(k)).cloned().collect();
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(twin) = state.twins.get(&key)? {
            out.push(MovedTwin::export(&twin, &state.dict));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{apply, ApplyError, Identity, ReportedParam, TwinCommand};
    use crate::operation::OperationKind;
    use radar_core::Timestamp;

    const PARTITIONS: u32 = 64;

    fn inform(device: &DeviceKey, at: u64, params: &[(&str, &str)]) -> TwinCommand {
        TwinCommand::Inform {
            device: device.clone(),
            at: Timestamp(at),
            identity: Identity {
                oui: "00D09E".into(),
                serial: device.as_str().into(),
                ..Default::default()
            },
            events: vec![("1 BOOT".into(), String::new())],
            params: params
                .iter()
                .map(|(p, v)| ReportedParam {
                    path: p.to_string(),
                    value: v.to_string(),
                    ty: None,
                    writable: None,
                })
                .collect(),
        }
    }

    fn devices(n: usize) -> Vec<DeviceKey> {
        (0..n)
            .map(|i| DeviceKey::parse(&format!("os::00D09E-MV{i:04}")).unwrap())
            .collect()
    }

    fn partition(d: &DeviceKey) -> u32 {
        radar_core::partition_of(d.as_str(), PARTITIONS).0
    }

    #[test]
    fn a_moved_twin_arrives_equal_in_a_shard_with_another_dictionary() {
        let device = devices(1).remove(0);
        let mut source = ShardState::default();
        let params = [
            ("Device.DeviceInfo.SoftwareVersion", "5.7"),
            ("Device.WiFi.SSID.2.SSID", "guest"),
        ];
        apply(&mut source, &inform(&device, 10, &params)).unwrap();
        apply(
            &mut source,
            &TwinCommand::EnqueueOperation {
                device: device.clone(),
                at: Timestamp(11),
                kind: OperationKind::Reboot,
                requested_by: "test".into(),
                ttl_ms: None,
            },
        )
        .unwrap();
        let mut target = ShardState::default();
        // The target's dictionary already numbers other paths, so ids differ from the source's.
        target.dict.intern("Device.Hosts.Host.1.IPAddress");
        let moved = export_partitions(&source, PARTITIONS, &[partition(&device)].into()).unwrap();
        assert_eq!(moved.len(), 1);
        apply(
            &mut target,
            &TwinCommand::ImportTwin {
                device: device.clone(),
                at: Timestamp(12),
                twin: Box::new(moved[0].clone()),
            },
        )
        .unwrap();
        let back = MovedTwin::export(&target.twins[&device], &target.dict);
        assert_eq!(back, moved[0]);
        assert_eq!(target.twins[&device].operations.len(), 1);
        assert_eq!(target.twins[&device].next_operation_id, 2);
    }

    #[test]
    fn frozen_partitions_refuse_commands_and_release_deletes_only_their_twins() {
        let mut state = ShardState::default();
        let all = devices(40);
        for d in &all {
            apply(
                &mut state,
                &inform(d, 1, &[("Device.DeviceInfo.ModelName", "X")]),
            )
            .unwrap();
        }
        let moving = partition(&all[0]);
        let (gone, kept): (Vec<_>, Vec<_>) = all.iter().partition(|d| partition(d) == moving);
        apply_control(
            &mut state,
            &ShardControl::Freeze {
                partition_count: PARTITIONS,
                partitions: vec![moving],
            },
        );
        assert_eq!(
            apply(&mut state, &inform(gone[0], 2, &[])),
            Err(ApplyError::Moving(gone[0].clone()))
        );
        if let Some(other) = kept.first() {
            apply(&mut state, &inform(other, 2, &[])).unwrap();
        }
        // A new device of a frozen partition is refused too: it would be created behind the copy.
        let newcomer = (0..10_000)
            .map(|i| DeviceKey::parse(&format!("os::00D09E-NEW{i}")).unwrap())
            .find(|d| partition(d) == moving)
            .unwrap();
        assert!(apply(&mut state, &inform(&newcomer, 3, &[])).is_err());
        let exported = export_partitions(&state, PARTITIONS, &[moving].into()).unwrap();
        assert_eq!(exported.len(), gone.len());
        let deleted = apply_control(
            &mut state,
            &ShardControl::Release {
                partitions: vec![moving],
            },
        );
        assert_eq!(deleted.len(), gone.len());
        assert_eq!(state.twins.len(), kept.len());
        // A late command for a moved device is still refused: it must not recreate the twin.
        assert_eq!(
            apply(&mut state, &inform(gone[0], 4, &[])),
            Err(ApplyError::Moving(gone[0].clone()))
        );
    }
}
