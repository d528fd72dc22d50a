//! MQTT MTP topic conventions (TR-369 §6.5), as pure functions.
//!
//! - A controller listens on `usp/controller/<controller id>`; agents on their own topic.
//! - MQTT 5: the sender names where to answer in the PUBLISH's Response Topic property.
//! - MQTT 3.1.1 has no properties: the sender appends `/reply-to=<its topic>` to the topic it
//!   publishes to, with each `/` of its topic written `%2F` (R-MQTT.24), so receivers subscribe
//!   with a trailing `/#`.

pub const REPLY_TO: &str = "/reply-to=";

pub fn controller_topic(controller_id: &str) -> String {
    format!("usp/controller/{controller_id}")
}

pub fn agent_topic(endpoint_id: &str) -> String {
    format!("usp/agent/{endpoint_id}")
}

/// `topic/reply-to=<escaped reply topic>` for MQTT 3.1.1.
pub fn with_reply_to(topic: &str, reply_topic: &str) -> String {
    let escaped = reply_topic.replace('%', "%25").replace('/', "%2F");
    format!("{topic}{REPLY_TO}{escaped}")
}

/// Splits a received topic into its base and the sender's reply topic, if it carries one.
pub fn split_reply_to(topic: &str) -> (&str, Option<String>) {
    match topic.find(REPLY_TO) {
        Some(i) => {
            let escaped = &topic[i + REPLY_TO.len()..];
            let reply = escaped
                .replace("%2F", "/")
                .replace("%2f", "/")
                .replace("%25", "%");
            (&topic[..i], (!reply.is_empty()).then_some(reply))
        }
        None => (topic, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_to_suffix_round_trips_with_escaped_slashes() {
        let t = with_reply_to(&controller_topic("self::radar"), "usp/agent/os::00D09E-1");
        assert_eq!(
            t,
            "usp/controller/self::radar/reply-to=usp%2Fagent%2Fos::00D09E-1"
        );
        assert_eq!(
            split_reply_to(&t),
            (
                "usp/controller/self::radar",
                Some("usp/agent/os::00D09E-1".to_string())
            )
        );
        assert_eq!(
            split_reply_to("usp/controller/x"),
            ("usp/controller/x", None)
        );
        // Lower-case escapes from other implementations are accepted too.
        assert_eq!(split_reply_to("a/reply-to=b%2fc").1.as_deref(), Some("b/c"));
    }
}
