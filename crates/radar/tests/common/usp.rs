//! Waiting on USP twins through the API.

use super::{device_path, eventually, Radar};
use serde_json::Value;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(20);

pub async fn wait_status(radar: &Radar, device: &str, op: u64, want: &str) -> Value {
    eventually(
        &format!("operation {op} of {device} to be {want}"),
        WAIT,
        || async {
            let v = radar
                .get(&format!("{}/operations/{op}", device_path(device)))
                .await
                .1;
            (v["status"] == want).then_some(v)
        },
    )
    .await
}

pub async fn param(radar: &Radar, device: &str, path: &str) -> Value {
    let (_, v) = radar
        .get(&format!("{}/params?prefix={path}", device_path(device)))
        .await;
    v["params"][path].clone()
}

pub async fn wait_param(radar: &Radar, device: &str, path: &str, value: &str) -> Value {
    eventually(&format!("{path} = {value:?} on {device}"), WAIT, || async {
        let p = param(radar, device, path).await;
        (p["value"] == value).then_some(p)
    })
    .await
}

pub async fn wait_online(radar: &Radar, device: &str, online: bool) -> Value {
    eventually(&format!("{device} online={online}"), WAIT, || async {
        let (status, v) = radar.get(&device_path(device)).await;
        (status == 200 && v["online"] == online && (!online || !v["discovered_at"].is_null()))
            .then_some(v)
    })
    .await
}
