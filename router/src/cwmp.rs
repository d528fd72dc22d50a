//! The CWMP front door. A connection whose first request carries a session cookie goes to the
//! node the cookie names (the session lives there); one whose first request is an Inform goes
//! to the node leading the device's shard; anything else (an empty POST without a cookie) goes
//! to any node, which answers it as a CWMP ACS would.

use crate::directory::Directory;
use crate::http_head::FirstRequest;
use crate::identify::device_key_from_first_post;
use crate::proxy::{AsyncRouteFn, ChosenBy, Route};
use std::time::Duration;

pub struct CwmpRoute {
    /// How long to wait for a leader of the device's shard (an election in progress).
    pub patience: Duration,
}

impl AsyncRouteFn for CwmpRoute {
    async fn route(&self, request: &FirstRequest, directory: &Directory) -> Route {
        let cookie = radar_cwmp::cookie::session_cookie(request.header("cookie"));
        if let Some(node) = cookie
            .as_deref()
            .and_then(radar_cwmp::cookie::node_of_session)
            .and_then(|id| directory.node(id))
        {
            return Route::To(node, ChosenBy::Cookie);
        }
        if !request.body.is_empty() {
            if let Ok(key) = device_key_from_first_post(&request.body) {
                return match directory
                    .wait_leader_for_key(key.as_str(), self.patience)
                    .await
                {
                    Some(node) => Route::To(node, ChosenBy::Leader),
                    None => Route::Refuse(
                        503,
                        "no_leader",
                        format!("the shard of {key} has no leader yet"),
                    ),
                };
            }
        }
        match directory.any_node() {
            Some(node) => Route::To(node, ChosenBy::Any),
            None => Route::Refuse(
                503,
                "no_layout",
                "the cluster layout is not known yet".into(),
            ),
        }
    }
}
