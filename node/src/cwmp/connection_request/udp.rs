//! The UDP connection request of TR-069 Annex G for CPEs behind a NAT: a signed HTTP GET in
//! one datagram to the `UDPConnectionRequestAddress` the CPE learnt from Radar's STUN server.
//! UDP is unacknowledged, so the datagram is repeated (same `id`, which the CPE uses to drop
//! repeats); "sent" means sent, and the session that follows is the proof.

use super::{Mechanism, RequestResult, Target};
use crate::config::ConnectionRequestConfig;
use radar_cwmp::udp_connection_request::UdpConnectionRequest;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// The port a `UDPConnectionRequestAddress` without one means: the address is the authority of
/// an `http://` URI (TR-181 ManagementServer), whose default port is 80.
const DEFAULT_PORT: u16 = 80;

pub struct UdpMechanism {
    stun_socket: Option<Arc<UdpSocket>>,
    copies: u32,
    spacing: Duration,
}

impl UdpMechanism {
    pub fn new(config: &ConnectionRequestConfig, stun_socket: Option<Arc<UdpSocket>>) -> Self {
        Self {
            stun_socket,
            copies: config.udp_copies.max(1),
            spacing: config.udp_copy_spacing,
        }
    }

    async fn resolve(address: &str) -> Result<SocketAddr, String> {
        let with_port = if address.parse::<SocketAddr>().is_ok() {
            address.to_owned()
        } else if address.starts_with('[') {
            if address.ends_with(']') {
                format!("{address}:{DEFAULT_PORT}")
            } else {
                address.to_owned()
            }
        } else if address.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{address}]:{DEFAULT_PORT}")
        } else if address
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        {
            address.to_owned()
        } else {
            format!("{address}:{DEFAULT_PORT}")
        };
        let mut found = tokio::net::lookup_host(with_port.as_str())
            .await
            .map_err(|e| format!("resolving {address:?}: {e}"))?;
        found
            .next()
            .ok_or_else(|| format!("{address:?} resolves to nothing"))
    }

    /// The STUN server's socket when it can reach `to` (same address family), else a fresh one.
    async fn socket_for(&self, to: SocketAddr) -> Result<Arc<UdpSocket>, String> {
        if let Some(socket) = &self.stun_socket {
            if socket
                .local_addr()
                .is_ok_and(|local| local.is_ipv4() == to.is_ipv4())
            {
                return Ok(socket.clone());
            }
        }
        let any: SocketAddr = if to.is_ipv4() {
            "0.0.0.0:0".parse().expect("valid literal")
        } else {
            "[::]:0".parse().expect("valid literal")
        };
        UdpSocket::bind(any)
            .await
            .map(Arc::new)
            .map_err(|e| format!("binding a udp socket: {e}"))
    }

    async fn request(&self, target: &Target) -> RequestResult {
        let Some(credentials) = &target.credentials else {
            return RequestResult::Failed(
                "a UDP connection request is signed with the device's credentials, and none are known"
                    .into(),
            );
        };
        let to = match Self::resolve(&target.udp_address).await {
            Ok(to) => to,
            Err(e) => return RequestResult::Failed(e),
        };
        let socket = match self.socket_for(to).await {
            Ok(s) => s,
            Err(e) => return RequestResult::Failed(e),
        };
        let timestamp = radar_core::Timestamp::now().as_millis() / 1000;
        let id = rand::random::<u32>().to_string();
        let cnonce = hex::encode(rand::random::<[u8; 8]>());
        let datagram = UdpConnectionRequest::new(
            timestamp,
            &id,
            &credentials.username,
            &cnonce,
            &credentials.password,
        )
        .encode(&target.udp_address);
        for copy in 0..self.copies {
            if copy > 0 {
                tokio::time::sleep(self.spacing).await;
            }
            if let Err(e) = socket.send_to(&datagram, to).await {
                return RequestResult::Unreachable(format!("sending to {to}: {e}"));
            }
        }
        RequestResult::Sent("udp")
    }
}

impl Mechanism for UdpMechanism {
    fn name(&self) -> &'static str {
        "udp"
    }

    fn applies(&self, target: &Target) -> bool {
        !target.udp_address.is_empty()
    }

    fn send<'a>(
        &'a self,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = RequestResult> + Send + 'a>> {
        Box::pin(self.request(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Credential;
    use radar_cwmp::udp_connection_request as codec;

    #[tokio::test]
    async fn sends_signed_repeats_with_one_id_to_the_reported_address() {
        let cpe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let config = ConnectionRequestConfig {
            udp_copies: 3,
            udp_copy_spacing: Duration::from_millis(10),
            ..Default::default()
        };
        let mechanism = UdpMechanism::new(&config, None);
        let target = Target {
            udp_address: cpe.local_addr().unwrap().to_string(),
            credentials: Some(Credential {
                username: "cpe-user".into(),
                password: "cpe-pass".into(),
            }),
            ..Default::default()
        };
        assert_eq!(mechanism.request(&target).await, RequestResult::Sent("udp"));
        let mut ids = Vec::new();
        for _ in 0..3 {
            let mut buf = [0u8; 2048];
            let (n, _) = cpe.recv_from(&mut buf).await.unwrap();
            let request = codec::decode(&buf[..n]).unwrap();
            assert_eq!(request.username, "cpe-user");
            assert!(request.signed_with("cpe-pass"));
            ids.push(request.id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "repeats carry one id");
    }

    #[tokio::test]
    async fn without_credentials_nothing_is_sent() {
        let mechanism = UdpMechanism::new(&ConnectionRequestConfig::default(), None);
        let target = Target {
            udp_address: "127.0.0.1:9".into(),
            ..Default::default()
        };
        assert!(matches!(
            mechanism.request(&target).await,
            RequestResult::Failed(_)
        ));
    }

    #[tokio::test]
    async fn addresses_without_a_port_use_80() {
        assert_eq!(
            UdpMechanism::resolve("127.0.0.1").await.unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
        assert_eq!(
            UdpMechanism::resolve("127.0.0.1:7547").await.unwrap(),
            "127.0.0.1:7547".parse().unwrap()
        );
        assert_eq!(
            UdpMechanism::resolve("[::1]:7547").await.unwrap(),
            "[::1]:7547".parse().unwrap()
        );
        assert_eq!(
            UdpMechanism::resolve("[::1]").await.unwrap(),
            "[::1]:80".parse().unwrap()
        );
    }
}
