//! The ACS session cookie. Its value names the node that runs the session (`n<node>-<random>`),
//! so any router can send a CPE's later connections of a session to that node without shared
//! state. Cookies are read tolerantly: RFC 2109 `$Version="0"; …; $Path=/` forms, several
//! cookies joined with `;` or `, `, quotes, and several Cookie headers.

pub const SESSION_COOKIE: &str = "radar_session";

/// A new session id for a session run by `node`.
pub fn new_session_id(node: u64, random: [u8; 16]) -> String {
    let mut id = format!("n{node}-");
    for b in random {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The node a session id names, if it is one of ours.
pub fn node_of_session(id: &str) -> Option<u64> {
    id.strip_prefix('n')?.split_once('-')?.0.parse().ok()
}

/// Our session id among the values of a request's Cookie headers.
pub fn session_cookie<'a>(header_values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    header_values
        .into_iter()
        .flat_map(|v| v.split([';', ',']))
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim() == SESSION_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_name_their_node() {
        let id = new_session_id(42, [0xab; 16]);
        assert!(id.starts_with("n42-abab"));
        assert_eq!(node_of_session(&id), Some(42));
        assert_eq!(node_of_session("0123abcd"), None);
        assert_eq!(node_of_session("nx-1"), None);
    }

    #[test]
    fn cookies_in_the_forms_real_cpes_send() {
        assert_eq!(
            session_cookie(["radar_session=n1-ab"]),
            Some("n1-ab".into())
        );
        assert_eq!(
            session_cookie(["$Version=\"0\"; radar_session=\"n2-cd\"; $Path=/"]),
            Some("n2-cd".into())
        );
        assert_eq!(
            session_cookie(["other=1, radar_session=n3-ef"]),
            Some("n3-ef".into())
        );
        assert_eq!(session_cookie(["a=1", "radar_session=x"]), Some("x".into()));
        assert_eq!(session_cookie(["a=1"]), None);
    }
}
