//! The UDP connection request of TR-069 Annex G, sans-IO: one HTTP/1.1 `GET` in one
//! datagram, sent to the address a CPE behind a NAT reported as `UDPConnectionRequestAddress`.
//! It carries no session: its authenticity is the signature
//! `sig = HMAC-SHA1(key = ConnectionRequestPassword, text = ts ‖ id ‖ un ‖ cn)` in hex, where
//! `ts` is the time in seconds since the epoch, `id` a message id (the same in every
//! repetition of one request, so the CPE can drop repeats), `un` the ConnectionRequestUsername
//! and `cn` a random cnonce.
//!
//! Decoding is for the CPE side (the simulator, and fuzzing): bounded, never panics.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Largest datagram a CPE needs to accept; real messages are ~200 bytes.
pub const MAX_MESSAGE: usize = 1024;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum UdpRequestError {
    #[error("udp connection request of {0} bytes exceeds the cap")]
    TooLarge(usize),
    #[error("udp connection request is not an HTTP GET request line")]
    NotGet,
    #[error("udp connection request lacks the {0} field")]
    MissingField(&'static str),
    #[error("udp connection request field {0} is malformed")]
    BadField(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpConnectionRequest {
    pub timestamp: u64,
    pub id: String,
    pub username: String,
    pub cnonce: String,
    /// The signature as sent (hex).
    pub signature: String,
}

fn signer(password: &str) -> Hmac<Sha1> {
    // HMAC accepts keys of any length, so this cannot fail.
    Hmac::<Sha1>::new_from_slice(password.as_bytes()).expect("hmac takes any key length")
}

fn signed_text(timestamp: u64, id: &str, username: &str, cnonce: &str) -> String {
    format!("{timestamp}{id}{username}{cnonce}")
}

impl UdpConnectionRequest {
    /// A request signed with `password`.
    pub fn new(timestamp: u64, id: &str, username: &str, cnonce: &str, password: &str) -> Self {
        let mut mac = signer(password);
        mac.update(signed_text(timestamp, id, username, cnonce).as_bytes());
        Self {
            timestamp,
            id: id.into(),
            username: username.into(),
            cnonce: cnonce.into(),
            signature: hex::encode(mac.finalize().into_bytes()),
        }
    }

    /// The datagram for a CPE at `address` (`host:port` as the CPE reported it).
    pub fn encode(&self, address: &str) -> Vec<u8> {
        format!(
            "GET http://{address}?ts={}&id={}&un={}&cn={}&sig={} HTTP/1.1\r\nHost: {address}\r\n\r\n",
            self.timestamp,
            percent_encode(&self.id),
            percent_encode(&self.username),
            percent_encode(&self.cnonce),
            self.signature
        )
        .into_bytes()
    }

    /// Whether the signature is `password`'s over this request's fields (constant time).
    pub fn signed_with(&self, password: &str) -> bool {
        let Ok(signature) = hex::decode(&self.signature) else {
            return false;
        };
        let mut mac = signer(password);
        mac.update(signed_text(self.timestamp, &self.id, &self.username, &self.cnonce).as_bytes());
        mac.verify_slice(&signature).is_ok()
    }
}

pub fn decode(datagram: &[u8]) -> Result<UdpConnectionRequest, UdpRequestError> {
    if datagram.len() > MAX_MESSAGE {
        return Err(UdpRequestError::TooLarge(datagram.len()));
    }
    let text = String::from_utf8_lossy(datagram);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(uri)) = (parts.next(), parts.next()) else {
        return Err(UdpRequestError::NotGet);
    };
    if !method.eq_ignore_ascii_case("GET") || !parts.next().is_some_and(|v| v.starts_with("HTTP/"))
    {
        return Err(UdpRequestError::NotGet);
    }
    let query = uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let field = |name: &'static str| -> Result<String, UdpRequestError> {
        let raw = query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .ok_or(UdpRequestError::MissingField(name))?;
        percent_decode(raw).ok_or(UdpRequestError::BadField(name))
    };
    let timestamp = field("ts")?
        .parse()
        .map_err(|_| UdpRequestError::BadField("ts"))?;
    Ok(UdpConnectionRequest {
        timestamp,
        id: field("id")?,
        username: field("un")?,
        cnonce: field("cn")?,
        signature: field("sig")?,
    })
}

/// RFC 3986 unreserved characters pass; everything else is `%XX`.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_like_the_annex_g_example_shape() {
        let request =
            UdpConnectionRequest::new(1_120_673_700, "1234", "CPE57689", "XTGRWIPC6D3IPXS3", "pw");
        let datagram = request.encode("10.1.1.1:8080");
        let text = String::from_utf8(datagram.clone()).unwrap();
        assert!(text.starts_with(
            "GET http://10.1.1.1:8080?ts=1120673700&id=1234&un=CPE57689&cn=XTGRWIPC6D3IPXS3&sig="
        ));
        assert!(text.ends_with(" HTTP/1.1\r\nHost: 10.1.1.1:8080\r\n\r\n"));
        let decoded = decode(&datagram).unwrap();
        assert_eq!(decoded, request);
        assert!(decoded.signed_with("pw"));
        assert!(!decoded.signed_with("other"));
    }

    #[test]
    fn the_signature_is_hmac_sha1_over_the_concatenated_fields() {
        // Computed independently: Python's hmac.new(b"pw", b"1120673700" b"1234" b"CPE57689"
        // b"XTGRWIPC6D3IPXS3", hashlib.sha1).hexdigest().
        let request =
            UdpConnectionRequest::new(1_120_673_700, "1234", "CPE57689", "XTGRWIPC6D3IPXS3", "pw");
        assert_eq!(
            request.signature,
            "715d51cae3d872cea6c45c1d8b9d25af830d7360"
        );
    }

    #[test]
    fn fields_with_reserved_characters_round_trip() {
        let request = UdpConnectionRequest::new(5, "7", "user name&x=1", "c/n", "p");
        let decoded = decode(&request.encode("[2001:db8::1]:7547")).unwrap();
        assert_eq!(decoded.username, "user name&x=1");
        assert!(decoded.signed_with("p"));
    }

    #[test]
    fn a_tampered_field_fails_the_signature() {
        let request = UdpConnectionRequest::new(5, "7", "cpe", "cn", "p");
        let text = String::from_utf8(request.encode("h:1"))
            .unwrap()
            .replace("ts=5", "ts=6");
        assert!(!decode(text.as_bytes()).unwrap().signed_with("p"));
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(decode(b""), Err(UdpRequestError::NotGet));
        assert_eq!(
            decode(b"POST / HTTP/1.1\r\n\r\n"),
            Err(UdpRequestError::NotGet)
        );
        assert_eq!(
            decode(b"GET http://h?ts=1&id=2 HTTP/1.1\r\n\r\n"),
            Err(UdpRequestError::MissingField("un"))
        );
        assert_eq!(
            decode(b"GET http://h?ts=x&id=2&un=u&cn=c&sig=s HTTP/1.1\r\n\r\n"),
            Err(UdpRequestError::BadField("ts"))
        );
        assert_eq!(
            decode(b"GET http://h?ts=1&id=%zz&un=u&cn=c&sig=s HTTP/1.1\r\n\r\n"),
            Err(UdpRequestError::BadField("id"))
        );
        assert!(matches!(
            decode(&[b'a'; 2000]),
            Err(UdpRequestError::TooLarge(2000))
        ));
    }
}
