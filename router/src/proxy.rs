//! What both front doors do with a connection: read the first request (bounded in size and
//! time), let the protocol choose a node, connect to it (once more after a refresh if it
//! refuses), replay the bytes read so far and then copy both ways until either side closes. The
//! connection stays pinned to that node for its whole life.

use crate::directory::Directory;
use crate::http_head::{parse_first_request, FirstRequest, HeadError};
use crate::metrics::RouterMetrics;
use radar_core::NodeInfo;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

/// How a node was chosen, for metrics.
#[derive(Clone, Copy)]
pub enum ChosenBy {
    Leader,
    Cookie,
    Any,
}

impl ChosenBy {
    fn label(self) -> &'static str {
        match self {
            ChosenBy::Leader => "leader",
            ChosenBy::Cookie => "cookie",
            ChosenBy::Any => "any",
        }
    }
}

pub enum Route {
    To(NodeInfo, ChosenBy),
    /// Answer the client with this status and message, then close.
    Refuse(u16, &'static str, String),
}

pub struct ProxySettings {
    pub max_first_request_bytes: usize,
    /// Connections per source address, over both front doors.
    pub per_address: Arc<radar_core::source_limit::PerAddress>,
    pub first_request_timeout: Duration,
    pub connect_timeout: Duration,
}

/// Reads the first request of `client`: the bytes read and the parsed request.
async fn read_first(
    client: &mut TcpStream,
    settings: &ProxySettings,
) -> Result<(Vec<u8>, FirstRequest), (u16, String)> {
    let mut buf = Vec::with_capacity(4096);
    let read = async {
        loop {
            let mut chunk = [0u8; 8192];
            let n = client
                .read(&mut chunk)
                .await
                .map_err(|e| (0, e.to_string()))?;
            if n == 0 {
                return Err((0, "closed before a whole request".to_owned()));
            }
            buf.extend_from_slice(&chunk[..n]);
            match parse_first_request(&buf, settings.max_first_request_bytes) {
                Ok(Some(request)) => return Ok(request),
                Ok(None) => continue,
                Err(e @ HeadError::TooLarge(_)) => return Err((413, e.to_string())),
                Err(e @ HeadError::Malformed(_)) => return Err((400, e.to_string())),
            }
        }
    };
    match tokio::time::timeout(settings.first_request_timeout, read).await {
        Ok(Ok(request)) => Ok((buf, request)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err((408, "no complete request in time".into())),
    }
}

async fn answer(client: &mut TcpStream, status: u16, reason: &str, message: &str) {
    let body = format!("{{\"error\":{{\"code\":\"{reason}\",\"message\":{message:?}}}}}\n");
    let text = match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {status} {text}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// A connection over `max_connections_per_address`: its first request gets 503 with
/// Retry-After, and the connection closes.
pub async fn refuse_over_address_limit(
    mut client: TcpStream,
    protocol: &'static str,
    metrics: &RouterMetrics,
    settings: &ProxySettings,
) {
    metrics
        .refused
        .with_label_values(&[protocol, "per_address"])
        .inc();
    // Read the request first, so closing does not reset the connection under the answer.
    let _ = read_first(&mut client, settings).await;
    answer(
        &mut client,
        503,
        "per_address",
        "too many connections from this address",
    )
    .await;
}

/// Serves one client connection of `protocol`, routing it with `route`.
pub async fn serve_connection<F>(
    mut client: TcpStream,
    protocol: &'static str,
    directory: Arc<Directory>,
    metrics: Arc<RouterMetrics>,
    settings: Arc<ProxySettings>,
    route: Arc<F>,
) where
    F: AsyncRouteFn,
{
    metrics.connections.with_label_values(&[protocol]).inc();
    let _ = client.set_nodelay(true);
    let (buf, request) = match read_first(&mut client, &settings).await {
        Ok(read) => read,
        Err((0, _)) => return,
        Err((status, message)) => {
            metrics
                .refused
                .with_label_values(&[protocol, "bad_request"])
                .inc();
            answer(&mut client, status, "bad_request", &message).await;
            return;
        }
    };
    let mut attempt = 0;
    let mut upstream = loop {
        attempt += 1;
        let (node, by) = match route.route(&request, &directory).await {
            Route::To(node, by) => (node, by),
            Route::Refuse(status, reason, message) => {
                metrics.refused.with_label_values(&[protocol, reason]).inc();
                answer(&mut client, status, reason, &message).await;
                return;
            }
        };
        let addr = if protocol == "cwmp" {
            &node.cwmp
        } else {
            &node.usp
        };
        let connect =
            tokio::time::timeout(settings.connect_timeout, TcpStream::connect(addr)).await;
        match connect {
            Ok(Ok(stream)) => {
                metrics
                    .forwarded
                    .with_label_values(&[protocol, by.label()])
                    .inc();
                break stream;
            }
            _ if attempt < 3 => {
                debug!(node = node.id, addr, "node refused; refreshing leaders");
                metrics.redirects.with_label_values(&[protocol]).inc();
                directory.forget_leader_on(node.id);
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            _ => {
                metrics
                    .refused
                    .with_label_values(&[protocol, "node_unreachable"])
                    .inc();
                answer(&mut client, 503, "unavailable", "no node reachable").await;
                return;
            }
        }
    };
    let _ = upstream.set_nodelay(true);
    if upstream.write_all(&buf).await.is_err() {
        return;
    }
    let active = metrics.active.with_label_values(&[protocol]);
    active.inc();
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    active.dec();
}

/// A protocol's routing decision (async: it may wait briefly for a leader).
pub trait AsyncRouteFn {
    fn route(
        &self,
        request: &FirstRequest,
        directory: &Directory,
    ) -> impl std::future::Future<Output = Route> + Send;
}
