//! API callers authenticated by an OpenID Connect provider (issue 13): JWTs signed by a key of
//! the provider's JWKS (served here by a real HTTP server), for Radar's audience, unexpired; the
//! role comes from a claim through `role_map`, and the audit log names the subject. Forged,
//! expired, misdirected and role-less tokens are refused; a rotated key is fetched.

mod common;

use base64::Engine;
use common::{device_path, Radar, TEST_TOKEN};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://idp.carrier.example/realms/noc";

/// An ES256 key: its encoding key and its JWK.
fn key(kid: &str) -> (EncodingKey, Value) {
    let pair = rcgen::KeyPair::generate().unwrap();
    let raw = pair.public_key_raw();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
    });
    (
        EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        jwk,
    )
}

/// A JWKS endpoint whose document the test can change.
async fn jwks_server(document: Arc<Mutex<String>>) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = document.lock().unwrap().clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    });
    addr
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt(key: &EncodingKey, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn claims(sub: &str, roles: Value) -> Value {
    json!({"iss": ISSUER, "aud": "radar", "sub": sub, "exp": now() + 300, "groups": roles})
}

async fn call(radar: &Radar, method: reqwest::Method, path: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, radar.api_url(path))
        .bearer_auth(token)
        .json(&json!({"Device.WiFi.SSID.1.SSID": "x"}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_of_the_provider_authenticate_with_their_role_and_subject() {
    let (k1, jwk1) = key("k1");
    let (k2, jwk2) = key("k2");
    let (stranger, _) = key("k1");
    let document = Arc::new(Mutex::new(json!({"keys": [jwk1]}).to_string()));
    let jwks = jwks_server(document.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[auth.oidc]
issuer = "{ISSUER}"
audience = "radar"
jwks_url = "http://{jwks}/protocol/openid-connect/certs"
role_claim = "groups"
role_map = {{ noc = "viewer", field-ops = "operator", radar-admins = "admin" }}
"#
    );
    let radar = Radar::start(dir.path(), Some(&config));
    use reqwest::Method;
    let patch = format!("{}/params", device_path("os::00D09E-OIDC1"));

    let operator = jwt(
        &k1,
        "k1",
        claims("alice@carrier", json!(["noc", "field-ops"])),
    );
    assert_eq!(
        call(&radar, Method::GET, "/api/v1/query", &operator)
            .await
            .0,
        200
    );
    let (status, v) = call(&radar, Method::PATCH, &patch, &operator).await;
    assert_eq!(
        status, 404,
        "authenticated and allowed, the device is unknown: {v}"
    );
    let (status, v) = call(&radar, Method::POST, "/api/v1/cluster/shards", &operator).await;
    assert_eq!(status, 403, "an admin route for an operator: {v}");
    let viewer = jwt(&k1, "k1", claims("bob@carrier", json!("noc")));
    assert_eq!(call(&radar, Method::PATCH, &patch, &viewer).await.0, 403);
    // Static tokens keep working beside the provider.
    assert_eq!(
        call(&radar, Method::GET, "/api/v1/query", TEST_TOKEN)
            .await
            .0,
        200
    );

    // Refused: no role, expired, another audience or issuer, a forged signature, no signature.
    let mut refused = vec![
        (jwt(&k1, "k1", claims("carol", json!(["guests"]))), 403),
        (
            jwt(
                &k1,
                "k1",
                json!({"iss": ISSUER, "aud": "radar", "sub": "d", "exp": now() - 600, "groups": "noc"}),
            ),
            401,
        ),
        (
            jwt(
                &k1,
                "k1",
                json!({"iss": ISSUER, "aud": "billing", "sub": "e", "exp": now() + 300, "groups": "noc"}),
            ),
            401,
        ),
        (
            jwt(
                &k1,
                "k1",
                json!({"iss": "https://evil.example", "aud": "radar", "sub": "f", "exp": now() + 300, "groups": "noc"}),
            ),
            401,
        ),
        (
            jwt(&stranger, "k1", claims("mallory", json!("radar-admins"))),
            401,
        ),
    ];
    let unsigned = {
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
            b64(&claims("mallory", json!("radar-admins")))
        )
    };
    refused.push((unsigned, 401));
    for (token, expected) in &refused {
        let (status, v) = call(&radar, Method::GET, "/api/v1/query", token).await;
        assert_eq!(status, *expected, "{v}");
    }

    // The provider rotates to a new key: Radar fetches it when a token names it.
    *document.lock().unwrap() = json!({"keys": [jwk2]}).to_string();
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let rotated = jwt(&k2, "k2", claims("alice@carrier", json!("radar-admins")));
    let (status, v) = call(&radar, Method::POST, "/api/v1/cluster/shards", &rotated).await;
    assert!(status != 401 && status != 403, "{status} {v}");

    // The audit log names the subject and the role the provider's groups gave.
    let records = common::eventually("the audit records", Duration::from_secs(10), || async {
        let (_, v) = radar.get("/api/v1/audit?actor=alice%40carrier").await;
        let records = v["records"].as_array()?.clone();
        (records.len() >= 2).then_some(records)
    })
    .await;
    assert!(
        records
            .iter()
            .any(|r| r["method"] == "PATCH" && r["role"] == "operator" && r["status"] == 404),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["route"] == "/api/v1/cluster/shards" && r["role"] == "admin"),
        "{records:?}"
    );
}
