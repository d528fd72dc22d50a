//! STUN (RFC 5389, and the older RFC 3489 that TR-111 CPEs may still speak) as TR-069 Annex G
//! uses it, sans-IO: a CPE behind a NAT sends Binding Requests to the ACS's STUN server to learn
//! and keep open its public UDP mapping, marking them with CONNECTION-REQUEST-BINDING (and
//! BINDING-CHANGE when the mapping moved); the server answers with the address it saw. The
//! CPE then reports that address as `UDPConnectionRequestAddress`, where the ACS sends UDP
//! connection requests.
//!
//! Decoding device input is bounded and never panics; what is not understood is an error the
//! server drops (STUN has no error answer for garbage).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_LEN: usize = 20;
/// Largest STUN message accepted; Binding Requests are tens of bytes.
pub const MAX_MESSAGE: usize = 1024;

const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;

const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// TR-069 G.2.1.1: marks a Binding Request as keeping a connection-request binding open.
pub const ATTR_CONNECTION_REQUEST_BINDING: u16 = 0xC001;
/// TR-069 G.2.1.1: the binding changed since the CPE's last request.
pub const ATTR_BINDING_CHANGE: u16 = 0xC002;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StunError {
    #[error("stun message shorter than its header or declared length")]
    Truncated,
    #[error("stun message of {0} bytes exceeds the cap")]
    TooLarge(usize),
    #[error("not a stun message (first two bits set)")]
    NotStun,
    #[error("stun attribute {0:#06x} is malformed")]
    BadAttribute(u16),
}

/// The transaction id: 96 bits after the magic cookie (RFC 5389), or 128 bits with no cookie
/// (RFC 3489).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    Rfc5389([u8; 12]),
    Rfc3489([u8; 16]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub message_type: u16,
    pub transaction: Transaction,
    /// USERNAME (TR-069 G.2.1.1: the CPE's `STUNUsername`), if present.
    pub username: Option<String>,
    pub connection_request_binding: bool,
    pub binding_change: bool,
    pub has_integrity: bool,
    /// The address a response reports (MAPPED-ADDRESS or XOR-MAPPED-ADDRESS).
    pub mapped: Option<SocketAddr>,
}

impl Message {
    pub fn is_binding_request(&self) -> bool {
        self.message_type == BINDING_REQUEST
    }
}

pub fn decode(bytes: &[u8]) -> Result<Message, StunError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(StunError::TooLarge(bytes.len()));
    }
    if bytes.len() < HEADER_LEN {
        return Err(StunError::Truncated);
    }
    if bytes[0] & 0xC0 != 0 {
        return Err(StunError::NotStun);
    }
    let message_type = u16::from_be_bytes([bytes[0], bytes[1]]);
    let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    let body = bytes
        .get(HEADER_LEN..HEADER_LEN + length)
        .ok_or(StunError::Truncated)?;
    let cookie = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let transaction = if cookie == MAGIC_COOKIE {
        let mut id = [0u8; 12];
        id.copy_from_slice(&bytes[8..20]);
        Transaction::Rfc5389(id)
    } else {
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[4..20]);
        Transaction::Rfc3489(id)
    };
    let mut message = Message {
        message_type,
        transaction,
        username: None,
        connection_request_binding: false,
        binding_change: false,
        has_integrity: false,
        mapped: None,
    };
    let mut at = 0;
    while at + 4 <= body.len() {
        let ty = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body
            .get(at + 4..at + 4 + len)
            .ok_or(StunError::BadAttribute(ty))?;
        match ty {
            ATTR_USERNAME => {
                message.username = Some(String::from_utf8_lossy(value).into_owned());
            }
            ATTR_CONNECTION_REQUEST_BINDING => message.connection_request_binding = true,
            ATTR_BINDING_CHANGE => message.binding_change = true,
            ATTR_MESSAGE_INTEGRITY => message.has_integrity = true,
            ATTR_MAPPED_ADDRESS => {
                message.mapped = Some(address(value, None).ok_or(StunError::BadAttribute(ty))?)
            }
            ATTR_XOR_MAPPED_ADDRESS => {
                message.mapped = Some(
                    address(value, Some(&message.transaction))
                        .ok_or(StunError::BadAttribute(ty))?,
                )
            }
            // Unknown comprehension-optional attributes (and ones a server need not read) are
            // skipped (RFC 5389 §7.3.1).
            _ => {}
        }
        // Values are padded to 4 bytes.
        at += 4 + len.div_ceil(4) * 4;
    }
    Ok(message)
}

/// (X)MAPPED-ADDRESS value: reserved, family, port, address; XORed with the cookie (and the
/// transaction id for IPv6) when `xor` names the transaction.
fn address(value: &[u8], xor: Option<&Transaction>) -> Option<SocketAddr> {
    let family = *value.get(1)?;
    let mut port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]);
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    if let Some(Transaction::Rfc5389(id)) = xor {
        key[4..].copy_from_slice(id);
    }
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match family {
        0x01 => {
            let mut a: [u8; 4] = value.get(4..8)?.try_into().ok()?;
            if xor.is_some() {
                a.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        0x02 => {
            let mut a: [u8; 16] = value.get(4..20)?.try_into().ok()?;
            if xor.is_some() {
                a.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn push_address(out: &mut Vec<u8>, ty: u16, addr: SocketAddr, xor: Option<&Transaction>) {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    if let Some(Transaction::Rfc5389(id)) = xor {
        key[4..].copy_from_slice(id);
    }
    let port = if xor.is_some() {
        addr.port() ^ (MAGIC_COOKIE >> 16) as u16
    } else {
        addr.port()
    };
    let (family, mut bytes): (u8, Vec<u8>) = match addr.ip() {
        IpAddr::V4(a) => (0x01, a.octets().to_vec()),
        IpAddr::V6(a) => (0x02, a.octets().to_vec()),
    };
    if xor.is_some() {
        bytes.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
    }
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&((4 + bytes.len()) as u16).to_be_bytes());
    out.extend_from_slice(&[0, family]);
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&bytes);
}

fn message_bytes(message_type: u16, transaction: &Transaction, attributes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + attributes.len());
    out.extend_from_slice(&message_type.to_be_bytes());
    out.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    match transaction {
        Transaction::Rfc5389(id) => {
            out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
            out.extend_from_slice(id);
        }
        Transaction::Rfc3489(id) => out.extend_from_slice(id),
    }
    out.extend_from_slice(attributes);
    out
}

/// The server's Binding Success Response to `request`, reporting `from` (the address the
/// request came from, i.e. the CPE's public mapping): MAPPED-ADDRESS for every client, and
/// XOR-MAPPED-ADDRESS as well for RFC 5389 ones.
pub fn binding_response(request: &Message, from: SocketAddr) -> Vec<u8> {
    let mut attributes = Vec::new();
    push_address(&mut attributes, ATTR_MAPPED_ADDRESS, from, None);
    if let Transaction::Rfc5389(_) = request.transaction {
        push_address(
            &mut attributes,
            ATTR_XOR_MAPPED_ADDRESS,
            from,
            Some(&request.transaction),
        );
    }
    message_bytes(BINDING_SUCCESS, &request.transaction, &attributes)
}

/// A CPE's Binding Request (the simulator's, and tests'): optionally with USERNAME,
/// CONNECTION-REQUEST-BINDING and BINDING-CHANGE (TR-069 G.2.1.1).
pub fn binding_request(
    transaction: [u8; 12],
    username: Option<&str>,
    connection_request_binding: bool,
    binding_change: bool,
) -> Vec<u8> {
    let mut attributes = Vec::new();
    let mut push = |ty: u16, value: &[u8]| {
        attributes.extend_from_slice(&ty.to_be_bytes());
        attributes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        attributes.extend_from_slice(value);
        attributes.resize(attributes.len().div_ceil(4) * 4, 0);
    };
    if let Some(u) = username {
        push(ATTR_USERNAME, u.as_bytes());
    }
    if connection_request_binding {
        // TR-069 G.2.1.1: the value is the string "dslforum.org/TR-111 " (20 bytes).
        push(ATTR_CONNECTION_REQUEST_BINDING, b"dslforum.org/TR-111 ");
    }
    if binding_change {
        push(ATTR_BINDING_CHANGE, b"");
    }
    message_bytes(
        BINDING_REQUEST,
        &Transaction::Rfc5389(transaction),
        &attributes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tr111_binding_request_is_answered_with_the_address_it_came_from() {
        let request = binding_request([7; 12], Some("cpe-0001"), true, true);
        let decoded = decode(&request).unwrap();
        assert!(decoded.is_binding_request());
        assert_eq!(decoded.username.as_deref(), Some("cpe-0001"));
        assert!(decoded.connection_request_binding && decoded.binding_change);
        for from in [
            "203.0.113.9:40123".parse().unwrap(),
            "[2001:db8::7]:5060".parse().unwrap(),
        ] {
            let response = decode(&binding_response(&decoded, from)).unwrap();
            assert_eq!(response.message_type, BINDING_SUCCESS);
            assert_eq!(response.transaction, decoded.transaction);
            assert_eq!(response.mapped, Some(from));
        }
    }

    #[test]
    fn an_rfc3489_client_gets_a_classic_answer() {
        // No magic cookie: a 16-byte transaction id, MAPPED-ADDRESS only.
        let mut request = vec![0x00, 0x01, 0x00, 0x00];
        request.extend_from_slice(&[0xAB; 16]);
        let decoded = decode(&request).unwrap();
        assert_eq!(decoded.transaction, Transaction::Rfc3489([0xAB; 16]));
        let wire = binding_response(&decoded, "198.51.100.1:1234".parse().unwrap());
        assert_eq!(&wire[4..20], &[0xAB; 16]);
        assert_eq!(
            decode(&wire).unwrap().mapped,
            Some("198.51.100.1:1234".parse().unwrap())
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(decode(&[0; 4]), Err(StunError::Truncated));
        assert_eq!(decode(&[0xC0; 20]), Err(StunError::NotStun));
        // Declared length beyond the datagram.
        let mut m = binding_request([1; 12], None, false, false);
        m[3] = 40;
        assert_eq!(decode(&m), Err(StunError::Truncated));
        // An attribute that claims more than the body holds.
        let mut m = binding_request([1; 12], Some("u"), false, false);
        m[23] = 200;
        assert!(matches!(decode(&m), Err(StunError::BadAttribute(_))));
        assert_eq!(decode(&vec![0; 2000]), Err(StunError::TooLarge(2000)));
    }
}
