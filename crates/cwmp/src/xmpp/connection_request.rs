//! The TR-069 Annex K connection request: an IQ `get` carrying
//! `<connectionRequest xmlns="urn:broadband-forum-org:cwmp:xmppConnReq-1-0">` with the CPE's
//! ConnectionRequestUsername and Password. The CPE answers an empty `result` and opens a
//! session, or an `error`: `not-authorized` (wrong credentials) or `service-unavailable`.

use crate::xml::{escape, Element};

pub const NAMESPACE: &str = "urn:broadband-forum-org:cwmp:xmppConnReq-1-0";

/// The IQ payload for [`super::XmppClient::send_iq`].
pub fn payload(username: &str, password: &str) -> String {
    format!(
        "<connectionRequest xmlns=\"{NAMESPACE}\"><username>{}</username><password>{}</password></connectionRequest>",
        escape(username),
        escape(password)
    )
}

/// The credentials of a connection request payload, if it is one.
pub fn parse(payload: &Element) -> Option<(String, String)> {
    if payload.name != "connectionRequest" || payload.namespace.as_deref() != Some(NAMESPACE) {
        return None;
    }
    Some((
        payload.child_text("username")?.to_owned(),
        payload
            .child_text("password")
            .unwrap_or_default()
            .to_owned(),
    ))
}
