//! CPE simulator: many TR-181 home gateways in one process, speaking CWMP through the same codec
//! as the ACS (in the device role), with a shared connection-request listener that checks Digest
//! authentication like a real CPE.
//!
//! Modules:
//! - [`model`]: the simulated data model.
//! - [`cpe`]: sans-IO CPE-side RPC handling.
//! - [`device`]: one device's life: sessions, reboots, downloads, notifications.
//! - [`http`]: the device's HTTP client.
//! - [`connection_request`]: the connection-request listener.
//! - [`usp_agent`]: simulated USP agents (WebSocket and MQTT MTPs) that behave like obuspa.
//! - [`replay`]: a scripted USP agent that answers exactly as a recorded real agent did.

pub mod connection_request;
pub mod cpe;
pub mod device;
pub mod http;
pub mod model;
pub mod nat;
pub mod replay;
pub mod usp_agent;
pub mod xmpp;

use device::{DeviceSettings, SimDevice};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The ACS URL, e.g. `http://127.0.0.1:7547/`.
    pub acs_url: String,
    pub count: usize,
    pub first_serial: usize,
    pub serial_prefix: String,
    pub oui: String,
    pub product_class: String,
    pub software_version: String,
    pub periodic_interval: Duration,
    /// Where the shared connection-request listener binds.
    pub connection_request_listen: SocketAddr,
    /// Credentials the devices require on connection requests.
    pub connection_request_credentials: (String, String),
    /// Credentials the devices present to the ACS.
    pub acs_credentials: Option<(String, String)>,
    /// Echo session cookies (some real devices never do).
    pub echo_cookies: bool,
    /// Refuse active notification with fault 9009, as some real devices do.
    pub refuse_active_notification: bool,
    /// Behave like genieacs-sim: no echoed cookies is `echo_cookies`; this adds Fault 9000 for
    /// Reboot, FactoryReset and attributes, and a crash on object-path reads.
    pub genieacs_sim_quirks: bool,
    /// Behave like cwmp-sim: after a failed inform, no session until a connection request.
    pub gives_up_after_failed_inform: bool,
    /// Spread first informs over this window, so a large fleet does not arrive at once.
    pub start_spread: Duration,
    /// PEM CA certificates trusted for an `https` ACS URL.
    pub acs_ca_pem: Option<Vec<u8>>,
    /// Serve connection requests over TLS with this PEM certificate chain and key, and report
    /// an `https://` ConnectionRequestURL (many CPEs do, with self-signed certificates).
    pub connection_request_tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Play devices behind a NAT: the ConnectionRequestURL they report reaches nothing, and
    /// connection requests come only the ways the NAT settings allow.
    pub behind_nat: Option<NatConfig>,
}

#[derive(Debug, Clone)]
pub struct NatConfig {
    /// The ACS's STUN server: the devices learn and keep a UDP binding there and accept
    /// signed UDP connection requests (TR-069 Annex G).
    pub stun_server: Option<SocketAddr>,
    /// Binding Requests keep the NAT mapping open this often.
    pub stun_keepalive: Duration,
    /// An XMPP server the devices stay connected to, taking connection requests as IQs
    /// (TR-069 Annex K).
    pub xmpp: Option<SimXmpp>,
}

#[derive(Debug, Clone)]
pub struct SimXmpp {
    /// The server's client port.
    pub server: String,
    /// Each device logs in as `<serial in lower case>@<domain>` with `password`.
    pub domain: String,
    pub password: String,
    /// `ManagementServer.ConnReqAllowedJabberIDs`: who may send connection requests (empty:
    /// anyone).
    pub allowed: Vec<String>,
    /// PEM CA certificates of the server: the devices then upgrade with STARTTLS and never
    /// authenticate in clear.
    pub tls_ca_pem: Option<Vec<u8>>,
}

impl Default for NatConfig {
    fn default() -> Self {
        Self {
            stun_server: None,
            stun_keepalive: Duration::from_secs(30),
            xmpp: None,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            acs_url: "http://127.0.0.1:7547/".into(),
            count: 1,
            first_serial: 1,
            serial_prefix: "SIM".into(),
            oui: "00D09E".into(),
            product_class: "HG-SIM".into(),
            software_version: "1.0.0".into(),
            periodic_interval: Duration::from_secs(300),
            connection_request_listen: "127.0.0.1:0".parse().expect("valid literal"),
            connection_request_credentials: ("cr".into(), "cr-secret".into()),
            acs_credentials: None,
            echo_cookies: true,
            refuse_active_notification: false,
            genieacs_sim_quirks: false,
            gives_up_after_failed_inform: false,
            start_spread: Duration::ZERO,
            acs_ca_pem: None,
            connection_request_tls: None,
            behind_nat: None,
        }
    }
}

pub struct SimFleet {
    pub devices: BTreeMap<String, Arc<SimDevice>>,
    pub connection_request_addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SimFleet {
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let tls = match &config.acs_ca_pem {
            Some(pem) => Some(http::client_config(pem).map_err(std::io::Error::other)?),
            None => None,
        };
        let listener = TcpListener::bind(config.connection_request_listen).await?;
        let addr = listener.local_addr()?;
        // Behind a NAT the reported URL is the device's LAN side: here, a port where nothing
        // listens, so an HTTP connection request is refused as a NAT would drop it.
        let reported_addr = if config.behind_nat.is_some() {
            TcpListener::bind("127.0.0.1:0").await?.local_addr()?
        } else {
            addr
        };
        let mut devices = BTreeMap::new();
        let mut tasks = Vec::new();
        let mut receivers = Vec::new();
        for n in config.first_serial..config.first_serial + config.count {
            let serial = format!("{}{n:06}", config.serial_prefix);
            let identity = model::Identity {
                manufacturer: "Radar Simulated Devices".into(),
                oui: config.oui.clone(),
                product_class: config.product_class.clone(),
                serial: serial.clone(),
                software_version: config.software_version.clone(),
                connection_request_url: format!(
                    "{}://{reported_addr}/cr/{serial}",
                    if config.connection_request_tls.is_some() {
                        "https"
                    } else {
                        "http"
                    }
                ),
            };
            let mut model = model::SimModel::home_gateway(&identity);
            if let Some(server) = config.behind_nat.as_ref().and_then(|n| n.stun_server) {
                model.add_stun(server, &serial);
            }
            if let Some(x) = config.behind_nat.as_ref().and_then(|n| n.xmpp.as_ref()) {
                model.add_xmpp(&x.allowed.join(","));
            }
            let mut state = cpe::CpeState::new(model);
            state.refuse_active_notification = config.refuse_active_notification;
            state.genieacs_sim_quirks = config.genieacs_sim_quirks;
            let (device, rx) = SimDevice::new(
                serial.clone(),
                config.oui.clone(),
                config.product_class.clone(),
                state,
            );
            devices.insert(serial, device.clone());
            receivers.push((device, rx));
        }
        let cr = connection_request::Listener::new(
            devices.clone(),
            config.connection_request_credentials.clone(),
        );
        let cr_tls = match &config.connection_request_tls {
            Some((cert, key)) => {
                Some(connection_request::tls_acceptor(cert, key).map_err(std::io::Error::other)?)
            }
            None => None,
        };
        tasks.push(tokio::spawn(cr.serve(listener, cr_tls)));
        let count = receivers.len().max(1) as u32;
        for (i, (device, rx)) in receivers.into_iter().enumerate() {
            let settings = DeviceSettings {
                acs_url: config.acs_url.clone(),
                acs_credentials: config.acs_credentials.clone(),
                echo_cookies: config.echo_cookies,
                periodic_interval: config.periodic_interval,
                tls: tls.clone(),
                gives_up_after_failed_inform: config.gives_up_after_failed_inform,
            };
            let delay = config.start_spread * i as u32 / count;
            let stun = config
                .behind_nat
                .as_ref()
                .and_then(|n| n.stun_server.map(|s| (s, n.stun_keepalive)));
            let factory_credentials = config.connection_request_credentials.clone();
            if let Some(x) = config.behind_nat.as_ref().and_then(|n| n.xmpp.clone()) {
                tasks.push(tokio::spawn(xmpp::run(
                    device.clone(),
                    x,
                    factory_credentials.clone(),
                )));
            }
            let uses_xmpp = config.behind_nat.as_ref().is_some_and(|n| n.xmpp.is_some());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // Inform with the Jabber ID already known, as a CPE that logs in first.
                for _ in 0..50 {
                    if !uses_xmpp
                        || device
                            .param("Device.ManagementServer.ConnReqJabberID")
                            .is_some_and(|j| !j.is_empty())
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if let Some((server, keepalive)) = stun {
                    match nat::open(&device, server).await {
                        // One task for both, so stopping the fleet stops the UDP port too.
                        Ok((socket, mapped)) => {
                            let udp = nat::serve(
                                device.clone(),
                                socket,
                                server,
                                mapped,
                                factory_credentials,
                                keepalive,
                            );
                            tokio::join!(udp, device.run(settings, rx));
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(serial = %device.serial, error = %e, "no udp port")
                        }
                    }
                }
                device.run(settings, rx).await;
            }));
        }
        Ok(Self {
            devices,
            connection_request_addr: addr,
            tasks,
        })
    }

    pub fn device(&self, serial: &str) -> Option<&Arc<SimDevice>> {
        self.devices.get(serial)
    }

    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for SimFleet {
    fn drop(&mut self) {
        self.stop();
    }
}
