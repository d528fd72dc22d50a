//! Msg-id correlation for the controller's requests, sans-IO: each request is registered with
//! its expected response type and a deadline; responses and Errors are matched by `msg_id`;
//! timeouts come out of `expire(now)`. Unsolicited and late responses are reported, never
//! fatal (TR-369 §4: Responses carry the msg_id of their Request).

use crate::proto::msg::{body, header, Msg};
use radar_core::Timestamp;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Correlation<T> {
    /// The awaited response.
    Response { tag: T, msg: Box<Msg> },
    /// The agent answered the request with an Error (TR-369 §7.7 error codes), kept whole:
    /// the per-parameter errors of a failed Set or Add say which parameter was refused.
    Error {
        tag: T,
        error: crate::proto::msg::Error,
    },
    /// A response of another type than the request calls for.
    Mismatched {
        tag: T,
        expected: header::MsgType,
        got: i32,
    },
    /// No request is waiting for this msg_id (unsolicited, or late after a timeout).
    Unknown { msg_id: String },
}

struct Pending<T> {
    expects: header::MsgType,
    deadline: Timestamp,
    tag: T,
}

pub struct Correlator<T> {
    prefix: String,
    next: u64,
    pending: HashMap<String, Pending<T>>,
}

impl<T> Correlator<T> {
    /// `prefix` keeps ids unique across controller restarts (e.g. a start timestamp).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            next: 1,
            pending: HashMap::new(),
        }
    }

    pub fn next_msg_id(&mut self) -> String {
        let id = format!("{}-{}", self.prefix, self.next);
        self.next += 1;
        id
    }

    pub fn register(
        &mut self,
        msg_id: String,
        expects: header::MsgType,
        deadline: Timestamp,
        tag: T,
    ) {
        self.pending.insert(
            msg_id,
            Pending {
                expects,
                deadline,
                tag,
            },
        );
    }

    /// Drops the table's spare capacity when nothing is in flight.
    pub fn compact(&mut self) {
        if self.pending.is_empty() && self.pending.capacity() > 4 {
            self.pending = HashMap::new();
        }
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Matches an inbound response or Error.
    pub fn on_response(&mut self, msg: Msg) -> Correlation<T> {
        let msg_id = msg
            .header
            .as_ref()
            .map(|h| h.msg_id.clone())
            .unwrap_or_default();
        let Some(pending) = self.pending.remove(&msg_id) else {
            return Correlation::Unknown { msg_id };
        };
        let got = msg.header.as_ref().map(|h| h.msg_type).unwrap_or_default();
        if let Some(body::MsgBody::Error(e)) = msg.body.as_ref().and_then(|b| b.msg_body.as_ref()) {
            return Correlation::Error {
                tag: pending.tag,
                error: e.clone(),
            };
        }
        if got != pending.expects as i32 {
            return Correlation::Mismatched {
                tag: pending.tag,
                expected: pending.expects,
                got,
            };
        }
        Correlation::Response {
            tag: pending.tag,
            msg: Box::new(msg),
        }
    }

    /// The earliest deadline, for the driver's timer.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Removes and returns the requests whose deadline has passed.
    pub fn expire(&mut self, now: Timestamp) -> Vec<(String, T)> {
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|id| self.pending.remove(&id).map(|p| (id, p.tag)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::{response, Body, Error, GetResp, Header, Response};

    fn response(id: &str, ty: header::MsgType) -> Msg {
        Msg {
            header: Some(Header {
                msg_id: id.into(),
                msg_type: ty as i32,
            }),
            body: Some(Body {
                msg_body: Some(body::MsgBody::Response(Response {
                    resp_type: Some(response::RespType::GetResp(GetResp {
                        req_path_results: vec![],
                    })),
                })),
            }),
        }
    }

    fn error(id: &str, code: u32) -> Msg {
        Msg {
            header: Some(Header {
                msg_id: id.into(),
                msg_type: header::MsgType::Error as i32,
            }),
            body: Some(Body {
                msg_body: Some(body::MsgBody::Error(Error {
                    err_code: code,
                    err_msg: "no".into(),
                    param_errs: vec![],
                })),
            }),
        }
    }

    #[test]
    fn responses_errors_and_strangers_are_told_apart() {
        let mut c = Correlator::new("t");
        let a = c.next_msg_id();
        let b = c.next_msg_id();
        let d = c.next_msg_id();
        assert_ne!(a, b);
        c.register(a.clone(), header::MsgType::GetResp, Timestamp(100), "get");
        c.register(b.clone(), header::MsgType::SetResp, Timestamp(100), "set");
        c.register(d.clone(), header::MsgType::SetResp, Timestamp(100), "set2");
        assert!(matches!(
            c.on_response(response(&a, header::MsgType::GetResp)),
            Correlation::Response { tag: "get", .. }
        ));
        assert!(matches!(
            c.on_response(error(&b, 7002)),
            Correlation::Error {
                tag: "set",
                error: Error { err_code: 7002, .. }
            }
        ));
        assert!(matches!(
            c.on_response(response(&d, header::MsgType::GetResp)),
            Correlation::Mismatched { tag: "set2", .. }
        ));
        // A second answer to the same id, or an id we never sent, is reported, not fatal.
        assert_eq!(
            c.on_response(response(&a, header::MsgType::GetResp)),
            Correlation::Unknown { msg_id: a }
        );
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn deadlines_expire_on_a_virtual_clock() {
        let mut c = Correlator::new("t");
        c.register("x".into(), header::MsgType::GetResp, Timestamp(50), 1);
        c.register("y".into(), header::MsgType::GetResp, Timestamp(90), 2);
        assert_eq!(c.poll_timeout(), Some(Timestamp(50)));
        assert!(c.expire(Timestamp(49)).is_empty());
        assert_eq!(c.expire(Timestamp(50)), vec![("x".to_string(), 1)]);
        assert_eq!(c.poll_timeout(), Some(Timestamp(90)));
        assert_eq!(
            c.on_response(response("x", header::MsgType::GetResp)),
            Correlation::Unknown { msg_id: "x".into() }
        );
    }
}
