//! The REST API against its own OpenAPI document (issue 13): schemathesis (PyPI; `.ci/run`
//! installs it) generates requests from `GET /api/v1/openapi.json` of a live `radar up` with
//! demo devices, and checks that no request gets a 5xx, every answer is documented and matches
//! its schema, a request the schema forbids is refused, and a request without the token is
//! refused. Not checked: that every schema-valid request is accepted, since the query language,
//! the data model and device keys have rules a JSON schema cannot state.

mod common;

use common::{Radar, TEST_TOKEN};
use std::process::Command;

/// The schemathesis command: `st` (its short name) or `schemathesis`.
fn schemathesis() -> Command {
    for name in ["st", "schemathesis"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Command::new(name);
        }
    }
    panic!("schemathesis is not installed: `python3 -m pip install schemathesis` (.ci/run does)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_conforms_to_its_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start_with(
        dir.path(),
        Some("[cwmp]\nallow_anonymous = true\n"),
        &["--demo", "2"],
    );
    let (status, doc) = radar.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let url = radar.api_url("/api/v1/openapi.json");
    let run = tokio::task::spawn_blocking(move || {
        schemathesis()
            .args(["run", &url, "--checks", "all"])
            .args(["--exclude-checks", "positive_data_acceptance"])
            .args(["-H", &format!("Authorization: Bearer {TEST_TOKEN}")])
            .args(["--max-examples", "25", "--seed", "13", "--workers", "2"])
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .env("NO_COLOR", "1")
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    // Schemathesis leaves out the operation that serves the document itself.
    assert!(
        report.contains(&format!("Tested: {}", operations - 1)),
        "not every operation was tested:\n{report}"
    );
    // The node answered everything and still does.
    assert_eq!(radar.get("/api/v1/query").await.0, 200);
}
