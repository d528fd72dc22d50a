//! Devices that fell silent (issue: field interop §3): devices that behave like cwmp-sim give up
//! after an inform fails while Radar is down, and never inform again on their own. Radar shows
//! them as overdue and wakes them with a connection request.

mod common;

use common::{device_path, eventually, Radar};
use radar_sim::{SimConfig, SimFleet};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const CONFIG: &str = "[cwmp]\nallow_anonymous = true\noverdue_grace = \"1s\"\n[connection_request]\noverdue_check_interval = \"1s\"\nper_device_interval = \"1s\"\n";

fn id(n: usize) -> String {
    format!("os::00D09E-SIM{n:06}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_that_stopped_informing_are_shown_overdue_and_woken() {
    let dir = tempfile::tempdir().unwrap();
    let mut radar = Radar::start(dir.path(), Some(CONFIG));
    let fleet = SimFleet::start(SimConfig {
        acs_url: radar.acs_url(),
        count: 3,
        periodic_interval: Duration::from_secs(3600),
        gives_up_after_failed_inform: true,
        echo_cookies: false,
        ..Default::default()
    })
    .await
    .unwrap();
    // Every device informs every 2 s from now on.
    for n in 1..=3 {
        eventually(&format!("{} bootstrapped", id(n)), WAIT, || async {
            let v = radar.get(&device_path(&id(n))).await.1;
            (v["connection_request"]["credentials_source"] == "radar").then_some(())
        })
        .await;
        let (status, op) = radar
            .send(
                Method::PATCH,
                &format!("{}/params", device_path(&id(n))),
                json!({"Device.ManagementServer.PeriodicInformInterval": "2"}),
            )
            .await;
        assert_eq!(status, 202, "{op}");
        eventually("interval delivered", WAIT, || async {
            let v = radar
                .get(&format!("{}/operations/{}", device_path(&id(n)), op["id"]))
                .await
                .1;
            (v["status"] == "done").then_some(())
        })
        .await;
    }
    // Radar goes away long enough for every device's next inform to fail; they give up.
    let cwmp = radar.cwmp.to_string();
    let mut before = Vec::new();
    for n in 1..=2 {
        before.push(radar.get(&device_path(&id(n))).await.1["last_contact"].clone());
    }
    radar.terminate();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let third = fleet.device("SIM000003").unwrap().clone();
    third.set_online(false); // unreachable: stays overdue
    let radar = Radar::start_with(dir.path(), Some(CONFIG), &["--cwmp-listen", &cwmp]);

    for n in 1..=2 {
        let v = eventually(&format!("{} woken", id(n)), WAIT, || async {
            let v = radar.get(&device_path(&id(n))).await.1;
            let informed_since = v["last_contact"] != before[n - 1];
            (informed_since
                && v["last_inform_events"] == json!(["6 CONNECTION REQUEST"])
                && v["overdue"] == false)
                .then_some(v)
        })
        .await;
        assert_eq!(v["connection_request"]["last"]["outcome"], "sent", "{v}");
    }
    let third_twin = eventually("the unreachable one shown overdue", WAIT, || async {
        let v = radar.get(&device_path(&id(3))).await.1;
        let tried = !v["connection_request"]["last"].is_null()
            && v["connection_request"]["last"]["outcome"] != "sent";
        (v["overdue"] == true && tried).then_some(v)
    })
    .await;
    assert_eq!(
        third_twin["connection_request"]["last"]["outcome"], "failed",
        "{third_twin}"
    );
    let (_, count) = radar.get("/api/v1/query?q=overdue%20%3D%20true").await;
    let (_, list) = radar
        .get("/api/v1/devices?q=overdue%20%3D%20true&fields=Device.ManagementServer.PeriodicInformInterval")
        .await;
    assert_eq!(count["total"], 1, "{count} {list}");
    // The gauge follows at the next check.
    eventually("the overdue gauge", WAIT, || async {
        let metrics = radar.metrics().await;
        metrics
            .contains("radar_cwmp_overdue_devices 1")
            .then_some(())
    })
    .await;
    fleet.stop();
}
