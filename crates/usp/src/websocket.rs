//! The WebSocket MTP handshake rules a controller applies (TR-369 §6.4, R-WS.*), as pure
//! functions over header values, so the node's driver only wires them to tokio-tungstenite.
//!
//! - The agent's endpoint id comes from the `eid` query parameter (R-WS.10b, percent-encoded), or
//!   from the older `Sec-WebSocket-Extensions: bbf-usp-protocol; eid="…"` header.
//! - The subprotocol is `v1.usp`: the controller echoes it (agents drop the connection
//!   otherwise) and refuses a handshake that does not offer it.

pub const SUBPROTOCOL: &str = "v1.usp";
pub const PATH: &str = "/usp";

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    #[error("websocket handshake does not offer the v1.usp subprotocol")]
    NoUspSubprotocol,
    #[error("websocket handshake names no agent endpoint id (eid)")]
    NoEndpointId,
    #[error("endpoint id is not valid percent-encoded UTF-8")]
    BadEndpointId,
    #[error("path {0:?} is not the USP endpoint")]
    WrongPath(String),
}

/// Checks `Sec-WebSocket-Protocol` values (comma-separated, possibly several headers).
pub fn offers_usp(protocol_headers: &[&str]) -> Result<(), HandshakeError> {
    protocol_headers
        .iter()
        .flat_map(|h| h.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL))
        .then_some(())
        .ok_or(HandshakeError::NoUspSubprotocol)
}

/// The agent endpoint id from the request target (`/usp?eid=…`) or the extension header.
pub fn endpoint_id(target: &str, extension_headers: &[&str]) -> Result<String, HandshakeError> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != PATH && path != "/" {
        return Err(HandshakeError::WrongPath(path.chars().take(64).collect()));
    }
    for pair in query.split('&') {
        if let Some(raw) = pair.strip_prefix("eid=") {
            let eid = percent_decode(raw)?;
            if !eid.is_empty() {
                return Ok(eid);
            }
        }
    }
    for header in extension_headers {
        for extension in header.split(',') {
            let mut parts = extension.split(';').map(str::trim);
            if parts.next() != Some("bbf-usp-protocol") {
                continue;
            }
            for param in parts {
                if let Some(value) = param.strip_prefix("eid=") {
                    let eid = value.trim_matches('"');
                    if !eid.is_empty() {
                        return Ok(eid.to_owned());
                    }
                }
            }
        }
    }
    Err(HandshakeError::NoEndpointId)
}

fn percent_decode(raw: &str) -> Result<String, HandshakeError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .ok_or(HandshakeError::BadEndpointId)?;
                let hex = std::str::from_utf8(hex).map_err(|_| HandshakeError::BadEndpointId)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| HandshakeError::BadEndpointId)?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| HandshakeError::BadEndpointId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eid_from_query_is_percent_decoded() {
        assert_eq!(
            endpoint_id("/usp?eid=os%3A%3A00D09E-SIM1", &[]).unwrap(),
            "os::00D09E-SIM1"
        );
        assert_eq!(
            endpoint_id("/usp?x=1&eid=proto::agent", &[]).unwrap(),
            "proto::agent"
        );
        assert_eq!(
            endpoint_id("/usp?eid=%zz", &[]),
            Err(HandshakeError::BadEndpointId)
        );
        assert_eq!(
            endpoint_id("/usp?eid=%e2%28", &[]),
            Err(HandshakeError::BadEndpointId)
        );
    }

    #[test]
    fn eid_from_the_older_extension_header() {
        let h = r#"permessage-deflate, bbf-usp-protocol; eid="os::00D09E-SIM2""#;
        assert_eq!(endpoint_id("/usp", &[h]).unwrap(), "os::00D09E-SIM2");
        assert_eq!(
            endpoint_id("/usp", &["permessage-deflate"]),
            Err(HandshakeError::NoEndpointId)
        );
        assert!(matches!(
            endpoint_id("/other?eid=x", &[]),
            Err(HandshakeError::WrongPath(_))
        ));
    }

    #[test]
    fn the_usp_subprotocol_must_be_offered() {
        assert!(offers_usp(&["v1.usp"]).is_ok());
        assert!(offers_usp(&["chat, v1.usp"]).is_ok());
        assert_eq!(offers_usp(&["chat"]), Err(HandshakeError::NoUspSubprotocol));
        assert_eq!(offers_usp(&[]), Err(HandshakeError::NoUspSubprotocol));
    }
}
