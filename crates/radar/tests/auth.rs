//! API authentication and roles (issue 13): every route in the route → role table refuses a
//! missing token, a wrong token and a role too weak, with a JSON error; `radar up` makes the
//! first admin token once, keeps only its hash, and the CLI finds it without copying by hand.

mod common;

use common::{Radar, TEST_TOKEN};
use radar_node::auth::role::Role;
use radar_node::auth::routes::{Access, ROUTES};
use radar_node::auth::tokens::sha256_hex;
use reqwest::Method;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const VIEWER: &str = "radar-test-viewer-token-7a1e33b09c5d2f48";
const OPERATOR: &str = "radar-test-operator-token-0b9d4c6e2a8f1735";

fn config() -> String {
    format!(
        r#"
[cwmp]
allow_anonymous = true

[[auth.tokens]]
id = "noc"
role = "viewer"
sha256 = "{}"

[[auth.tokens]]
id = "field-ops"
role = "operator"
sha256 = "{}"
"#,
        sha256_hex(VIEWER),
        sha256_hex(OPERATOR)
    )
}

fn token_of(role: Role) -> &'static str {
    match role {
        Role::Viewer => VIEWER,
        Role::Operator => OPERATOR,
        Role::Admin => TEST_TOKEN,
    }
}

/// Sends `method route` (placeholders filled) with `token`, and a JSON body on writes.
async fn call(radar: &Radar, method: &str, route: &str, token: Option<&str>) -> (u16, Value) {
    let path = route
        .replace("{id}", "os::00D09E-AUTH1")
        .replace("{op}", "1");
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new().request(method.clone(), radar.api_url(&path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method != Method::GET && method != Method::DELETE {
        request = request.json(&serde_json::json!({}));
    }
    let r = request.send().await.expect("api reachable");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_a_missing_token_a_wrong_token_and_a_weak_role() {
    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(dir.path(), Some(&config()));
    let mut checked = 0;
    for (method, route, access) in ROUTES {
        let needed = match access {
            Access::Open => {
                let (status, v) = call(&radar, method, route, None).await;
                assert!(
                    status < 400,
                    "{method} {route} is open but answered {status}: {v}"
                );
                continue;
            }
            Access::Needs(role) => *role,
        };
        let (status, v) = call(&radar, method, route, None).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{method} {route} without a token: {v}"
        );
        let (status, v) = call(&radar, method, route, Some("radar_not-a-token")).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{method} {route} with a wrong token: {v}"
        );
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            let (status, v) = call(&radar, method, route, Some(token_of(role))).await;
            if role.allows(needed) {
                assert!(
                    status != 401 && status != 403,
                    "{method} {route} as {role} (needs {needed}) was refused: {status} {v}"
                );
            } else {
                assert_eq!(
                    (status, v["error"]["code"].as_str()),
                    (403, Some("forbidden")),
                    "{method} {route} as {role} (needs {needed}): {v}"
                );
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains(needed.as_str()),
                    "{v}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} routes need a role");
    // An unknown path is a 401 without a token (nothing is said about what exists), a 404 with.
    assert_eq!(call(&radar, "GET", "/api/v1/nope", None).await.0, 401);
    assert_eq!(
        call(&radar, "GET", "/api/v1/nope", Some(VIEWER)).await.0,
        404
    );
    // Bearer is case-insensitive (RFC 7235 §2.1); other schemes are not tokens.
    let r = reqwest::Client::new()
        .get(radar.api_url("/api/v1/query"))
        .header("authorization", format!("bearer {VIEWER}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::Client::new()
        .get(radar.api_url("/api/v1/query"))
        .basic_auth("admin", Some(TEST_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let metrics = radar.metrics().await;
    for reason in ["missing", "unknown", "role"] {
        assert!(
            metrics.contains(&format!(
                "radar_api_auth_denied_total{{reason=\"{reason}\"}}"
            )),
            "{reason} not counted:\n{metrics}"
        );
    }
}

/// `radar up` on `dir` with the API on `api`, given no token, with `xdg` as its config home.
fn up_without_a_token(
    dir: &std::path::Path,
    api: &str,
    xdg: &std::path::Path,
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_radar"))
        .args(["up", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--api-listen", api])
        .args([
            "--cwmp-listen",
            "127.0.0.1:0",
            "--usp-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--stun-listen",
            "127.0.0.1:0",
        ])
        .env_remove("RADAR_BOOTSTRAP_TOKEN")
        .env_remove("RADAR_TOKEN")
        .env("XDG_CONFIG_HOME", xdg)
        .env("RADAR_MEMORY_BUDGET", "16KiB")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts `radar up` with no token given and returns it with the token line it printed.
fn start_fresh(
    dir: &std::path::Path,
    xdg: &std::path::Path,
) -> (std::process::Child, String, String) {
    // A port outside the ephemeral range, so the restart below finds it free again.
    let api = format!("127.0.0.1:{}", common::free_port());
    let mut child = up_without_a_token(dir, &api, xdg);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.next().unwrap().unwrap();
    let api = listening
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("api="))
        .unwrap()
        .to_owned();
    let token_line = lines.next().unwrap().unwrap();
    (child, api, token_line)
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn cli(api: &str, xdg: &std::path::Path, token: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_radar"));
    cmd.args(["devices", "--api", &format!("http://{api}")])
        .env_remove("RADAR_TOKEN")
        .env("XDG_CONFIG_HOME", xdg);
    if let Some(token) = token {
        cmd.env("RADAR_TOKEN", token);
    }
    cmd.output().unwrap()
}

#[test]
fn radar_up_makes_one_admin_token_keeps_its_hash_and_the_cli_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg");
    let (child, api, line) = start_fresh(dir.path(), &xdg);
    let token = line
        .split_whitespace()
        .find(|w| w.starts_with("radar_"))
        .unwrap_or_else(|| panic!("no token in {line:?}"))
        .to_owned();
    assert!(line.starts_with("admin token"), "{line}");

    // Only the hash is on the server's disk; the client file is the user's, mode 0600.
    let stored = std::fs::read_to_string(dir.path().join("data/api-tokens.json")).unwrap();
    assert!(!stored.contains(&token));
    assert!(stored.contains(&sha256_hex(&token)));
    let credentials = xdg.join("radar/credentials");
    assert!(std::fs::read_to_string(&credentials)
        .unwrap()
        .contains(&token));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&credentials)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The CLI reads the credentials file; a wrong token or none gets one line saying what to do.
    let ok = cli(&api, &xdg, None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let wrong = cli(&api, &xdg, Some("radar_wrong"));
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("401") && err.contains("RADAR_TOKEN"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let elsewhere = cli(&api, &dir.path().join("empty-xdg"), None);
    let err = String::from_utf8_lossy(&elsewhere.stderr);
    assert!(
        !elsewhere.status.success() && err.contains("needs a token"),
        "{err}"
    );
    stop(child);

    // A restart on the same data dir makes no new token: the first one still works.
    let mut restarted = up_without_a_token(dir.path(), &api, &xdg);
    let mut lines = BufReader::new(restarted.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().starts_with("listening "));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/api-tokens.json")).unwrap(),
        stored
    );
    let again = cli(&api, &xdg, Some(&token));
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    stop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_radar_token_new_works_with_its_role_only() {
    let out = Command::new(env!("CARGO_BIN_EXE_radar"))
        .args(["token", "new", "--id", "field-ops", "--role", "operator"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .split_whitespace()
        .find(|w| w.starts_with("radar_"))
        .unwrap()
        .to_owned();
    // The config part, as printed, is the entry: it holds the hash, never the token.
    let entry: String = text
        .lines()
        .skip_while(|l| !l.starts_with("[[auth.tokens]]"))
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!entry.contains(&token), "{entry}");
    assert!(entry.contains(&sha256_hex(&token)), "{entry}");
    let hashed = Command::new(env!("CARGO_BIN_EXE_radar"))
        .args(["token", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            writeln!(child.stdin.take().unwrap(), "{token}")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        String::from_utf8(hashed.stdout).unwrap().trim(),
        sha256_hex(&token)
    );

    let dir = tempfile::tempdir().unwrap();
    let radar = Radar::start(
        dir.path(),
        Some(&format!("[cwmp]\nallow_anonymous = true\n\n{entry}")),
    );
    let send = |method: Method, path: &str| {
        reqwest::Client::new()
            .request(method, radar.api_url(path))
            .bearer_auth(&token)
            .json(&serde_json::json!({"field": "Device.DeviceInfo.HardwareVersion"}))
            .send()
    };
    assert_eq!(
        send(Method::GET, "/api/v1/query").await.unwrap().status(),
        200
    );
    assert_eq!(
        send(Method::POST, "/api/v1/indexes")
            .await
            .unwrap()
            .status(),
        403
    );
}
