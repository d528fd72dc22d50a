//! USP Records (TR-369 §5, usp-record-1-4.proto): decoding what an agent sends, with the checks a
//! controller must make, and encoding what the controller sends.
//!
//! - A Record addressed to another endpoint is not ours: agents ignore such Records (TR-369
//!   R-MTP.1 family), and so do we, with a typed error the driver logs.
//! - Only PLAINTEXT payloads are supported; TLS12 payload security (end-to-end) is refused.
//! - A SessionContext Record gets a Disconnect from a controller that does not support session
//!   context (TR-369 R-E2E.4 and §6.1); the driver sends it.
//! - Every size is capped before decoding, and decoding never panics.

use crate::proto::msg::Msg;
use crate::proto::record::{self, record::RecordType, Record};
use prost::Message;

/// The USP version this controller writes in its Records.
pub const PROTOCOL_VERSION: &str = "1.4";
/// Default cap on one Record (TR-369 leaves it to the MTP; 5 MiB is generous for a Get of
/// `Device.` on a large gateway).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 5 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttVersion {
    V3_1_1,
    V5,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecordKind {
    /// A USP Msg without session context (the common case).
    Message(Box<Msg>),
    WebSocketConnect,
    MqttConnect {
        version: MqttVersion,
        subscribed_topic: String,
    },
    StompConnect {
        subscribed_destination: String,
    },
    UdsConnect,
    Disconnect {
        reason: String,
        reason_code: u32,
    },
    /// Session context is not supported: answer with a Disconnect.
    SessionContext {
        session_id: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboundRecord {
    pub version: String,
    pub from_id: String,
    pub kind: RecordKind,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RecordError {
    #[error("record of {len} bytes exceeds the {max}-byte cap")]
    TooLarge { len: usize, max: usize },
    #[error("undecodable record: {0}")]
    Malformed(String),
    #[error("record is addressed to {to_id:?}, not to this controller")]
    WrongRecipient { to_id: String },
    #[error("record has no from_id")]
    MissingFromId,
    #[error("record has no record type")]
    MissingRecordType,
    #[error("payload security {0} is not supported; only PLAINTEXT")]
    UnsupportedPayloadSecurity(i32),
    #[error("record carries no payload")]
    EmptyPayload,
    #[error("undecodable msg in record payload: {0}")]
    MalformedMsg(String),
}

/// Decodes a Record sent to `our_id`.
pub fn decode(
    bytes: &[u8],
    our_id: &str,
    max_record_bytes: usize,
) -> Result<InboundRecord, RecordError> {
    if bytes.len() > max_record_bytes {
        return Err(RecordError::TooLarge {
            len: bytes.len(),
            max: max_record_bytes,
        });
    }
    let record = Record::decode(bytes).map_err(|e| RecordError::Malformed(e.to_string()))?;
    if record.to_id != our_id {
        return Err(RecordError::WrongRecipient {
            to_id: record.to_id.chars().take(256).collect(),
        });
    }
    if record.from_id.is_empty() {
        return Err(RecordError::MissingFromId);
    }
    if record.payload_security != record::record::PayloadSecurity::Plaintext as i32 {
        return Err(RecordError::UnsupportedPayloadSecurity(
            record.payload_security,
        ));
    }
    let kind = match record.record_type.ok_or(RecordError::MissingRecordType)? {
        RecordType::NoSessionContext(r) => {
            if r.payload.is_empty() {
                return Err(RecordError::EmptyPayload);
            }
            let msg = Msg::decode(r.payload.as_slice())
                .map_err(|e| RecordError::MalformedMsg(e.to_string()))?;
            RecordKind::Message(Box::new(msg))
        }
        RecordType::SessionContext(r) => RecordKind::SessionContext {
            session_id: r.session_id,
        },
        RecordType::WebsocketConnect(_) => RecordKind::WebSocketConnect,
        RecordType::MqttConnect(r) => RecordKind::MqttConnect {
            version: if r.version == record::mqtt_connect_record::MqttVersion::V5 as i32 {
                MqttVersion::V5
            } else {
                MqttVersion::V3_1_1
            },
            subscribed_topic: r.subscribed_topic,
        },
        RecordType::StompConnect(r) => RecordKind::StompConnect {
            subscribed_destination: r.subscribed_destination,
        },
        RecordType::UdsConnect(_) => RecordKind::UdsConnect,
        RecordType::Disconnect(r) => RecordKind::Disconnect {
            reason: r.reason,
            reason_code: r.reason_code,
        },
    };
    Ok(InboundRecord {
        version: record.version,
        from_id: record.from_id,
        kind,
    })
}

fn envelope(to_id: &str, from_id: &str, record_type: RecordType) -> Vec<u8> {
    Record {
        version: PROTOCOL_VERSION.into(),
        to_id: to_id.into(),
        from_id: from_id.into(),
        payload_security: record::record::PayloadSecurity::Plaintext as i32,
        mac_signature: Vec::new(),
        sender_cert: Vec::new(),
        record_type: Some(record_type),
    }
    .encode_to_vec()
}

/// A NoSessionContext Record carrying `msg`.
pub fn encode_message(to_id: &str, from_id: &str, msg: &Msg) -> Vec<u8> {
    let payload = msg.encode_to_vec();
    envelope(
        to_id,
        from_id,
        RecordType::NoSessionContext(record::NoSessionContextRecord { payload }),
    )
}

/// A Disconnect Record (TR-369 §6.1: e.g. refusing session context, with code 7100-range reasons).
pub fn encode_disconnect(to_id: &str, from_id: &str, reason: &str, reason_code: u32) -> Vec<u8> {
    envelope(
        to_id,
        from_id,
        RecordType::Disconnect(record::DisconnectRecord {
            reason: reason.into(),
            reason_code,
        }),
    )
}

/// The WebSocketConnect Record an agent sends first on a WebSocket MTP (agent role, simulator).
pub fn encode_websocket_connect(to_id: &str, from_id: &str) -> Vec<u8> {
    envelope(
        to_id,
        from_id,
        RecordType::WebsocketConnect(record::WebSocketConnectRecord {}),
    )
}

/// The MQTTConnect Record an agent sends first on an MQTT MTP (agent role, simulator).
pub fn encode_mqtt_connect(
    to_id: &str,
    from_id: &str,
    version: MqttVersion,
    subscribed_topic: &str,
) -> Vec<u8> {
    let version = match version {
        MqttVersion::V5 => record::mqtt_connect_record::MqttVersion::V5,
        MqttVersion::V3_1_1 => record::mqtt_connect_record::MqttVersion::V311,
    } as i32;
    envelope(
        to_id,
        from_id,
        RecordType::MqttConnect(record::MqttConnectRecord {
            version,
            subscribed_topic: subscribed_topic.into(),
        }),
    )
}

/// The STOMPConnect Record an agent sends first on a STOMP MTP (agent role, simulator).
pub fn encode_stomp_connect(to_id: &str, from_id: &str, subscribed_destination: &str) -> Vec<u8> {
    envelope(
        to_id,
        from_id,
        RecordType::StompConnect(record::StompConnectRecord {
            version: record::stomp_connect_record::StompVersion::V12 as i32,
            subscribed_destination: subscribed_destination.into(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::{body, header, request, Body, Get, Header, Request};

    const CONTROLLER: &str = "self::radar";
    const AGENT: &str = "os::00D09E-SIM000001";

    fn get_msg(id: &str) -> Msg {
        Msg {
            header: Some(Header {
                msg_id: id.into(),
                msg_type: header::MsgType::Get as i32,
            }),
            body: Some(Body {
                msg_body: Some(body::MsgBody::Request(Request {
                    req_type: Some(request::ReqType::Get(Get {
                        param_paths: vec!["Device.".into()],
                        max_depth: 0,
                    })),
                })),
            }),
        }
    }

    #[test]
    fn messages_round_trip() {
        let bytes = encode_message(CONTROLLER, AGENT, &get_msg("m1"));
        let record = decode(&bytes, CONTROLLER, DEFAULT_MAX_RECORD_BYTES).unwrap();
        assert_eq!(record.from_id, AGENT);
        assert_eq!(record.version, PROTOCOL_VERSION);
        assert_eq!(record.kind, RecordKind::Message(Box::new(get_msg("m1"))));
    }

    #[test]
    fn connect_and_disconnect_records() {
        let ws = decode(
            &encode_websocket_connect(CONTROLLER, AGENT),
            CONTROLLER,
            1024,
        )
        .unwrap();
        assert_eq!(ws.kind, RecordKind::WebSocketConnect);
        let mqtt = decode(
            &encode_mqtt_connect(CONTROLLER, AGENT, MqttVersion::V5, "usp/agent/x"),
            CONTROLLER,
            1024,
        )
        .unwrap();
        assert_eq!(
            mqtt.kind,
            RecordKind::MqttConnect {
                version: MqttVersion::V5,
                subscribed_topic: "usp/agent/x".into()
            }
        );
        let d = decode(
            &encode_disconnect(CONTROLLER, AGENT, "bye", 7003),
            CONTROLLER,
            1024,
        )
        .unwrap();
        assert_eq!(
            d.kind,
            RecordKind::Disconnect {
                reason: "bye".into(),
                reason_code: 7003
            }
        );
    }

    #[test]
    fn bad_records_get_typed_errors() {
        let bytes = encode_message("self::other", AGENT, &get_msg("m1"));
        assert!(matches!(
            decode(&bytes, CONTROLLER, 1 << 20),
            Err(RecordError::WrongRecipient { .. })
        ));
        let bytes = encode_message(CONTROLLER, AGENT, &get_msg("m1"));
        assert_eq!(
            decode(&bytes, CONTROLLER, 10),
            Err(RecordError::TooLarge {
                len: bytes.len(),
                max: 10
            })
        );
        assert!(matches!(
            decode(&bytes[..bytes.len() - 3], CONTROLLER, 1 << 20),
            Err(RecordError::Malformed(_))
        ));
        assert!(matches!(
            decode(b"\xff\xff\xff\xff", CONTROLLER, 1 << 20),
            Err(RecordError::Malformed(_))
        ));
        let empty = Record {
            to_id: CONTROLLER.into(),
            from_id: AGENT.into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            decode(&empty, CONTROLLER, 1 << 20),
            Err(RecordError::MissingRecordType)
        );
        let tls = Record {
            to_id: CONTROLLER.into(),
            from_id: AGENT.into(),
            payload_security: record::record::PayloadSecurity::Tls12 as i32,
            record_type: Some(RecordType::WebsocketConnect(
                record::WebSocketConnectRecord {},
            )),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            decode(&tls, CONTROLLER, 1 << 20),
            Err(RecordError::UnsupportedPayloadSecurity(1))
        );
        let garbage_payload = envelope(
            CONTROLLER,
            AGENT,
            RecordType::NoSessionContext(record::NoSessionContextRecord {
                payload: vec![0xff, 0x01],
            }),
        );
        assert!(matches!(
            decode(&garbage_payload, CONTROLLER, 1 << 20),
            Err(RecordError::MalformedMsg(_))
        ));
    }

    #[test]
    fn session_context_is_reported_for_a_disconnect_answer() {
        let bytes = envelope(
            CONTROLLER,
            AGENT,
            RecordType::SessionContext(record::SessionContextRecord {
                session_id: 9,
                ..Default::default()
            }),
        );
        assert_eq!(
            decode(&bytes, CONTROLLER, 1 << 20).unwrap().kind,
            RecordKind::SessionContext { session_id: 9 }
        );
    }
}
