//! A device behind a NAT (TR-069 Annex G): no HTTP connection request reaches it, so it keeps a
//! UDP port open through its NAT by sending STUN Binding Requests to the ACS's STUN server from
//! that port, reports the mapped address as `UDPConnectionRequestAddress` (under active
//! notification when the ACS asked for it), and accepts signed UDP connection requests there.
//!
//! On loopback the mapping is the device's own address; `NATDetected` is still `true`,
//! since the device plays one that is behind a NAT.

use crate::connection_request::device_credentials;
use crate::device::{SimDevice, Trigger};
use radar_cwmp::{stun, udp_connection_request};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tracing::debug;

const MS: &str = "Device.ManagementServer.";
/// Message ids remembered to drop the repeats of one request (Annex G: the ACS sends copies).
const REMEMBERED_IDS: usize = 32;

/// Binds the device's UDP connection-request port and learns its mapping before the device's
/// first inform, so the ACS sees `UDPConnectionRequestAddress` from the start.
pub async fn open(
    device: &SimDevice,
    stun_server: SocketAddr,
) -> std::io::Result<(UdpSocket, Option<SocketAddr>)> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let mut mapped = None;
    for _ in 0..10 {
        send_binding_request(&socket, device, stun_server, false).await;
        let mut buf = [0u8; stun::MAX_MESSAGE];
        if let Ok(Ok((n, from))) =
            tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf)).await
        {
            if from == stun_server {
                if let Ok(response) = stun::decode(&buf[..n]) {
                    mapped = response.mapped;
                    break;
                }
            }
        }
    }
    if let Some(address) = mapped {
        record_mapping(device, address);
    }
    Ok((socket, mapped))
}

async fn send_binding_request(
    socket: &UdpSocket,
    device: &SimDevice,
    stun_server: SocketAddr,
    binding_change: bool,
) {
    let username = device
        .param(&format!("{MS}STUNUsername"))
        .filter(|u| !u.is_empty());
    let request = stun::binding_request(rand::random(), username.as_deref(), true, binding_change);
    let _ = socket.send_to(&request, stun_server).await;
}

fn record_mapping(device: &SimDevice, address: SocketAddr) {
    let value = address.to_string();
    if device.param(&format!("{MS}UDPConnectionRequestAddress")) != Some(value.clone()) {
        device.local_change(&format!("{MS}NATDetected"), "true");
        device.local_change(&format!("{MS}UDPConnectionRequestAddress"), &value);
    }
}

/// Serves the UDP port: keeps the binding alive, follows mapping changes, and turns each
/// validly signed, fresh connection request into a session.
pub async fn serve(
    device: Arc<SimDevice>,
    socket: UdpSocket,
    stun_server: SocketAddr,
    mut mapped: Option<SocketAddr>,
    factory_credentials: (String, String),
    keepalive: Duration,
) {
    let mut seen_ids: VecDeque<String> = VecDeque::new();
    let mut newest_timestamp = 0u64;
    let mut tick = tokio::time::interval(keepalive);
    tick.tick().await;
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = tokio::select! {
            _ = tick.tick() => {
                send_binding_request(&socket, &device, stun_server, false).await;
                continue;
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok(r) => r,
                Err(_) => continue,
            },
        };
        let datagram = &buf[..n];
        // Connection requests come from the STUN server's own address (so the NAT lets them
        // in) as well as from elsewhere: what the datagram is, not where it came from, decides.
        if let Ok(response) = stun::decode(datagram) {
            if from == stun_server && response.mapped.is_some() && response.mapped != mapped {
                mapped = response.mapped;
                if let Some(address) = mapped {
                    record_mapping(&device, address);
                }
            }
            continue;
        }
        let Ok(request) = udp_connection_request::decode(datagram) else {
            device.udp_requests_rejected.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        // TR-069 Annex G (CPE side): a repeat of a request already seen is ignored silently.
        if seen_ids.contains(&request.id) {
            continue;
        }
        let (username, password) = device_credentials(&device, &factory_credentials);
        let fresh = request.timestamp >= newest_timestamp;
        if request.username != username || !request.signed_with(&password) || !fresh {
            debug!(serial = %device.serial, fresh, "udp connection request refused");
            device.udp_requests_rejected.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        newest_timestamp = request.timestamp;
        seen_ids.push_back(request.id);
        if seen_ids.len() > REMEMBERED_IDS {
            seen_ids.pop_front();
        }
        device.udp_requests_accepted.fetch_add(1, Ordering::Relaxed);
        device.trigger(Trigger::ConnectionRequest);
    }
}
