//! What an audit record keeps of a call's parameters: its query string and JSON body, with
//! every secret value replaced (issue 13: "never secret values"). A value is secret when its
//! key, or the parameter path it is set for, names a password, secret, token or private key;
//! a URL keeps its host but not its user information. Bodies that are not JSON are described,
//! not kept.

use serde_json::Value;

const HIDDEN: &str = "<redacted>";

fn names_a_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "privatekey",
        "private_key",
        "psk",
        "passphrase",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// `scheme://user:pass@host/…` → `scheme://<redacted>@host/…`.
fn without_userinfo(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some(format!("{scheme}://{HIDDEN}{}", &rest[at..]))
}

fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // `{path: "…Password", value: "…"}` sets a secret parameter.
            let sets_secret = ["path", "name", "param"].iter().any(|k| {
                map.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(names_a_secret)
            });
            for (key, inner) in map.iter_mut() {
                if names_a_secret(key) || (sets_secret && key == "value") {
                    *inner = Value::String(HIDDEN.into());
                } else {
                    scrub(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::String(text) => {
            if let Some(clean) = without_userinfo(text) {
                *text = clean;
            }
        }
        _ => {}
    }
}

fn scrub_query(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            if names_a_secret(&k) {
                format!("{k}={HIDDEN}")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The record's `detail` for a call with `body` and `query`, at most `max` bytes.
pub fn detail(body: &[u8], query: Option<&str>, max: usize) -> String {
    let mut out = String::new();
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(&scrub_query(query));
        out.push(' ');
    }
    if !body.is_empty() {
        match serde_json::from_slice::<Value>(body) {
            Ok(mut value) => {
                scrub(&mut value);
                out.push_str(&value.to_string());
            }
            Err(_) => out.push_str(&format!("({} bytes, not JSON)", body.len())),
        }
    }
    let mut out = out.trim_end().to_owned();
    if out.len() > max {
        let mut cut = max;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_a_record() {
        let body = br#"{"Device.ManagementServer.Password":"hunter2","Device.WiFi.SSID.1.SSID":"home",
            "kind":"download","url":"ftp://u:pw@files.example/fw.bin","username":"u","password":"pw2",
            "params":[{"path":"Device.WiFi.AccessPoint.1.Security.KeyPassphrase","value":"wifi-secret"}]}"#;
        let d = detail(body, Some("token=abc&dry_run=true"), 4096);
        for secret in ["hunter2", "pw2", "wifi-secret", ":pw@", "abc"] {
            assert!(!d.contains(secret), "{secret} in {d}");
        }
        for kept in [
            "home",
            "files.example/fw.bin",
            "dry_run=true",
            "\"username\":\"u\"",
        ] {
            assert!(d.contains(kept), "{kept} missing from {d}");
        }
    }

    #[test]
    fn details_are_bounded_and_other_bodies_described() {
        let long = format!("{{\"a\":\"{}\"}}", "é".repeat(5000));
        let d = detail(long.as_bytes(), None, 101);
        assert!(d.len() <= 101 + '…'.len_utf8());
        assert_eq!(detail(b"\x00\x01", None, 100), "(2 bytes, not JSON)");
        assert_eq!(detail(b"", None, 100), "");
    }
}
