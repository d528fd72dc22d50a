//! The STUN server of TR-069 Annex G: CPEs behind a NAT send Binding Requests here from their
//! UDP connection-request port, learn the public address and port their NAT maps it to, keep
//! that mapping open by repeating them, and report it as `UDPConnectionRequestAddress`. The
//! same socket sends the UDP connection requests (see `connection_request::udp`), so NATs that
//! only let in what comes from where the CPE sent (RFC 4787 §5) let them through.
//!
//! The codec is sans-IO in `radar_cwmp::stun`; this is only the socket loop. Garbage gets no
//! answer (STUN has no error reply for what is not STUN) and is counted.

use crate::metrics::Metrics;
use radar_cwmp::stun;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::debug;

pub async fn serve(
    socket: Arc<UdpSocket>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; stun::MAX_MESSAGE + 1];
    loop {
        let (n, from) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(r) => r,
                // ICMP port-unreachable from an earlier send surfaces here on some systems.
                Err(e) => {
                    debug!(error = %e, "stun socket receive");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let kind = match stun::decode(&buf[..n]) {
            Ok(message) if message.is_binding_request() => {
                if let Err(e) = socket
                    .send_to(&stun::binding_response(&message, from), from)
                    .await
                {
                    debug!(error = %e, %from, "stun response not sent");
                }
                if message.binding_change {
                    // TR-069 Annex G: the CPE's mapping moved; it reports the new
                    // UDPConnectionRequestAddress with a value-change Inform.
                    debug!(%from, username = message.username.as_deref().unwrap_or(""), "stun binding changed");
                    "binding_change"
                } else if message.connection_request_binding {
                    "connection_request_binding"
                } else {
                    "binding"
                }
            }
            Ok(_) => "not_a_binding_request",
            Err(_) => "invalid",
        };
        metrics.stun_messages.with_label_values(&[kind]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_binding_requests_with_the_address_they_came_from() {
        let server = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let server_addr = server.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new());
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(serve(server, metrics.clone(), shutdown));
        let cpe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        cpe.send_to(
            b"not stun at all, and long enough to pass the header",
            server_addr,
        )
        .await
        .unwrap();
        cpe.send_to(
            &stun::binding_request([7; 12], Some("cpe"), true, false),
            server_addr,
        )
        .await
        .unwrap();
        let mut buf = [0u8; 1024];
        let (n, _) = cpe.recv_from(&mut buf).await.unwrap();
        let response = stun::decode(&buf[..n]).unwrap();
        assert_eq!(response.mapped, Some(cpe.local_addr().unwrap()));
        assert_eq!(response.transaction, stun::Transaction::Rfc5389([7; 12]));
        assert_eq!(
            metrics
                .stun_messages
                .with_label_values(&["connection_request_binding"])
                .get(),
            1
        );
        assert_eq!(
            metrics.stun_messages.with_label_values(&["invalid"]).get(),
            1
        );
    }
}
