//! A device's XMPP connection (TR-069 Annex K): it stays logged in to the operator's XMPP
//! server, reports its full JID as `ManagementServer.ConnReqJabberID`, and answers
//! `connectionRequest` IQs: from an allowed JID with its current credentials it answers
//! `result` and opens a session; otherwise `not-authorized` (or `service-unavailable` for a
//! sender it does not allow).

use crate::connection_request::device_credentials;
use crate::device::{SimDevice, Trigger};
use crate::SimXmpp;
use radar_cwmp::xmpp::{connection_request, ClientConfig, Event, IqType, XmppClient};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

const MS: &str = "Device.ManagementServer.";

pub async fn run(device: Arc<SimDevice>, config: SimXmpp, factory_credentials: (String, String)) {
    loop {
        if let Err(e) = session(&device, &config, &factory_credentials).await {
            debug!(serial = %device.serial, error = %e, "xmpp session ended");
        }
        device.local_change("Device.XMPP.Connection.1.Status", "Error");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn session(
    device: &SimDevice,
    config: &SimXmpp,
    factory_credentials: &(String, String),
) -> Result<(), String> {
    let mut tcp = TcpStream::connect(&config.server)
        .await
        .map_err(|e| e.to_string())?;
    let tls = match &config.tls_ca_pem {
        Some(pem) => Some(crate::http::client_config(pem).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut client = XmppClient::new(ClientConfig {
        local: device.serial.to_ascii_lowercase(),
        domain: config.domain.clone(),
        password: config.password.clone(),
        resource: "cwmp".into(),
        tls_available: tls.is_some(),
        // A CPE that has a CA for its XMPP server never sends its password in clear.
        allow_plaintext_auth: tls.is_none(),
    });
    drive(&mut tcp, &mut client, device, factory_credentials).await?;
    // STARTTLS: the same session goes on inside TLS.
    let Some(tls) = tls else {
        return Err("server asked for STARTTLS without TLS settings".into());
    };
    let name =
        rustls_pki_types::ServerName::try_from(config.domain.clone()).map_err(|e| e.to_string())?;
    let mut stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    client.tls_established();
    drive(&mut stream, &mut client, device, factory_credentials).await?;
    Err("unexpected second STARTTLS".into())
}

/// Runs the session over `stream` until it fails (`Err`) or asks for TLS (`Ok`).
async fn drive<S>(
    stream: &mut S,
    client: &mut XmppClient,
    device: &SimDevice,
    factory_credentials: &(String, String),
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let out = client.take_transmit();
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(|e| e.to_string())?;
        }
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("server closed the connection".into());
        }
        client.feed(&buf[..n]).map_err(|e| e.to_string())?;
        while let Some(event) = client.poll_event() {
            match event {
                Event::StartTls => return Ok(()),
                Event::Ready { jid } => {
                    device.local_change("Device.XMPP.Connection.1.JabberID", &jid);
                    device.local_change("Device.XMPP.Connection.1.Status", "Enabled");
                    device.local_change(&format!("{MS}ConnReqJabberID"), &jid);
                }
                Event::Iq(iq) if matches!(iq.kind, IqType::Get | IqType::Set) => {
                    answer(client, device, factory_credentials, &iq)
                }
                Event::Iq(_) => {}
            }
        }
    }
}

/// Answers an IQ request: a connection request from an allowed JID with the device's current
/// credentials opens a session.
fn answer(
    client: &mut XmppClient,
    device: &SimDevice,
    factory_credentials: &(String, String),
    iq: &radar_cwmp::xmpp::Iq,
) {
    let credentials = iq.payload.as_ref().and_then(connection_request::parse);
    let Some((username, password)) = credentials else {
        client.reply_error(iq, "cancel", "service-unavailable");
        return;
    };
    if !allowed(device, &iq.from) {
        device
            .xmpp_requests_rejected
            .fetch_add(1, Ordering::Relaxed);
        client.reply_error(iq, "cancel", "service-unavailable");
        return;
    }
    if (username, password) != device_credentials(device, factory_credentials) {
        device
            .xmpp_requests_rejected
            .fetch_add(1, Ordering::Relaxed);
        client.reply_error(iq, "auth", "not-authorized");
        return;
    }
    device
        .xmpp_requests_accepted
        .fetch_add(1, Ordering::Relaxed);
    client.reply_result(iq);
    device.trigger(Trigger::ConnectionRequest);
}

/// `ConnReqAllowedJabberIDs`: full JIDs match exactly, bare ones any resource; empty allows
/// anyone.
fn allowed(device: &SimDevice, from: &str) -> bool {
    let list = device
        .param(&format!("{MS}ConnReqAllowedJabberIDs"))
        .unwrap_or_default();
    let bare = from.split('/').next().unwrap_or(from);
    list.trim().is_empty()
        || list
            .split(',')
            .map(str::trim)
            .any(|entry| entry == from || entry == bare)
}
