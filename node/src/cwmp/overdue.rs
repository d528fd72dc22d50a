//! Overdue devices: CWMP devices that missed two periodic informs and a grace period. TR-069
//! §3.2.1.1 has a CPE retry a failed session with back-off, but some firmware never does (2,568
//! of 4,000 cwmp-sim devices stayed away after informing while Radar was down). Each node looks
//! among the shards it leads and wakes them with a connection request, paced across the fleet.

use crate::core::NodeCore;
use radar_core::DeviceKey;
use radar_twin::table::Columns;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::debug;

pub async fn run(core: Arc<NodeCore>, mut shutdown: watch::Receiver<bool>) {
    let config = core.config.connection_request.clone();
    if !config.enabled || !config.wake_overdue {
        return;
    }
    let mut woken: HashMap<DeviceKey, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(config.overdue_check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let pause = Duration::from_secs(1) / config.overdue_per_second.max(1);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let due = overdue_devices(&core);
        core.metrics.cwmp_overdue.set(due.len() as i64);
        woken.retain(|_, at| at.elapsed() < config.overdue_rewake_after);
        for device in due {
            if woken.contains_key(&device) {
                continue;
            }
            woken.insert(device.clone(), Instant::now());
            debug!(device = %device, "waking an overdue device");
            let result = core
                .requester
                .request(&device, || core.connection_request_target(&device))
                .await;
            core.record_connection_request(&device, &result).await;
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Overdue devices, with a ConnectionRequestURL, of the shards this node leads.
fn overdue_devices(core: &NodeCore) -> Vec<DeviceKey> {
    let ctx = core.fleet.context();
    let mut due = Vec::new();
    for shard in core.fleet.shards().into_iter().filter(|s| s.is_leader()) {
        let state = shard.read();
        // From the table's columns: no twin is read (most overdue devices are cold).
        due.extend(
            state
                .twins
                .columns()
                .filter(|(_, c)| {
                    c.has(Columns::CONNECTION_REQUEST_URL)
                        && c.is_overdue(ctx.now, ctx.overdue_grace)
                })
                .map(|(key, _)| key.clone()),
        );
    }
    due
}
