//! The USP WebSocket front door: the agent's endpoint id from the handshake (`?eid=` or the
//! `Sec-WebSocket-Extensions` header) is the twin key; the upgraded connection is proxied to the
//! node leading its shard. A handshake without an endpoint id goes to any node, which refuses
//! it with the proper HTTP error.

use crate::directory::Directory;
use crate::http_head::{usp_endpoint_id, FirstRequest};
use crate::proxy::{AsyncRouteFn, ChosenBy, Route};
use std::time::Duration;

pub struct UspRoute {
    pub patience: Duration,
}

impl AsyncRouteFn for UspRoute {
    async fn route(&self, request: &FirstRequest, directory: &Directory) -> Route {
        if let Some(eid) = usp_endpoint_id(request) {
            return match directory.wait_leader_for_key(&eid, self.patience).await {
                Some(node) => Route::To(node, ChosenBy::Leader),
                None => Route::Refuse(
                    503,
                    "no_leader",
                    format!("the shard of {eid} has no leader yet"),
                ),
            };
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
