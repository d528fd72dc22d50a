//! Node configuration: one serde struct, unknown keys refused, human-readable durations, a doc
//! comment on every field, and defaults that run a single node out of the box
//! (`radar print-config node` prints them).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// This node's id in the cluster.
    pub node_id: u64,
    /// Where twins, the Raft log and snapshots live.
    pub data_dir: PathBuf,
    /// Shards hosted by this node in the embedded (single-node) mode.
    pub shards: u32,
    /// Fixed partition count; device → partition never changes after cluster creation.
    pub partitions: u32,
    pub listen: ListenConfig,
    /// The STUN server for connection requests to CPEs behind a NAT (TR-069 Annex G).
    pub stun: StunConfig,
    pub cwmp: CwmpConfig,
    pub connection_request: ConnectionRequestConfig,
    pub planner: PlannerConfig,
    pub twin: TwinConfig,
    /// Twin storage: what stays in memory.
    pub store: StoreConfig,
    pub usp: UspConfig,
    /// Raft timing and log compaction, the same for every group this node hosts.
    pub raft: crate::raft::RaftSettings,
    /// Cluster membership; without seeds the node runs embedded (single node).
    pub cluster: crate::cluster::ClusterConfig,
    /// API tokens and roles.
    pub auth: crate::auth::AuthConfig,
    /// Limits on what the REST API accepts.
    pub api: ApiConfig,
    /// The API's audit log.
    pub audit: crate::audit::AuditConfig,
}

impl NodeConfig {
    /// A device listener's limit of connections per source address: `configured`, except in
    /// a cluster, where devices arrive through routers (one address for many devices) and the
    /// routers enforce it with the devices' own addresses.
    pub fn connections_per_address(
        &self,
        configured: usize,
    ) -> std::sync::Arc<radar_core::source_limit::PerAddress> {
        let limit = if self.cluster.enabled() {
            0
        } else {
            configured
        };
        radar_core::source_limit::PerAddress::new(limit)
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            data_dir: PathBuf::from("./radar-data"),
            shards: 4,
            partitions: 4096,
            listen: ListenConfig::default(),
            stun: StunConfig::default(),
            cwmp: CwmpConfig::default(),
            connection_request: ConnectionRequestConfig::default(),
            planner: PlannerConfig::default(),
            twin: TwinConfig::default(),
            store: StoreConfig::default(),
            usp: UspConfig::default(),
            raft: crate::raft::RaftSettings::default(),
            cluster: crate::cluster::ClusterConfig::default(),
            auth: crate::auth::AuthConfig::default(),
            audit: crate::audit::AuditConfig::default(),
            api: ApiConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Largest request body; larger ones get 413 before a handler runs.
    pub max_body_bytes: usize,
    /// Deepest nesting of parentheses and NOTs in a fleet query (at most 256: evaluation
    /// recurses over the query on a worker's stack).
    pub max_query_nesting: usize,
    /// Most comparisons in a fleet query (at most 4096, for the same reason).
    pub max_query_terms: usize,
    /// Serve the API over HTTPS with these PEM files (reloaded on SIGHUP).
    pub tls: Option<TlsFiles>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_query_nesting: radar_twin::query::MAX_NESTING,
            max_query_terms: radar_twin::query::MAX_TERMS,
            tls: None,
        }
    }
}

impl ApiConfig {
    pub fn query_limits(&self) -> radar_twin::query::Limits {
        radar_twin::query::Limits {
            nesting: self.max_query_nesting.min(256),
            terms: self.max_query_terms.min(4096),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// CWMP ACS endpoint (HTTP).
    pub cwmp: SocketAddr,
    /// USP WebSocket MTP.
    pub usp: SocketAddr,
    /// REST API, `/metrics`, `/healthz`, `/readyz`.
    pub api: SocketAddr,
    /// Cluster gRPC. Loopback by default: a node reachable by other hosts needs `[cluster] tls`.
    pub grpc: SocketAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            cwmp: "0.0.0.0:7547".parse().expect("valid literal"),
            usp: "0.0.0.0:7548".parse().expect("valid literal"),
            api: "127.0.0.1:7557".parse().expect("valid literal"),
            grpc: "127.0.0.1:7560".parse().expect("valid literal"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StunConfig {
    /// Serve STUN. Unset: on in `radar up`, off in `radar node` (where a cluster's nodes
    /// usually share one host in tests and each would want UDP 3478).
    pub enabled: Option<bool>,
    /// UDP address; 3478 is STUN's registered port (RFC 5389 §18.4).
    pub listen: SocketAddr,
}

impl Default for StunConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            listen: "0.0.0.0:3478".parse().expect("valid literal"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

/// Credentials that belong to one device.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeviceCredential {
    pub username: String,
    pub password: String,
    /// The device key (e.g. `os::00E0FC-48575443A1B2C3D4`) when the username does not name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CwmpConfig {
    /// Largest request body accepted; larger ones get 413 before the body is read.
    pub max_body_bytes: usize,
    /// How long a session may wait for the CPE's next POST.
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// Sessions in flight before new ones are shed with 503 + Retry-After.
    pub max_sessions: usize,
    /// Connections one source address may hold open at once (0: no limit); more get 503.
    /// Generous: many CPEs share an address behind a carrier-grade NAT.
    pub max_connections_per_address: usize,
    /// Seconds a shed CPE is told to wait.
    pub retry_after_seconds: u32,
    /// Parameters per GetParameterValues during discovery.
    pub gpv_batch_size: usize,
    /// Accept CPEs without credentials. Off by default; `radar up` turns it on and warns.
    pub allow_anonymous: bool,
    /// HTTP authentication realm.
    pub realm: String,
    /// Credentials any CPE may use.
    pub shared_credentials: Option<Credential>,
    /// Per-device credentials. A CPE that authenticates with one may inform only as its own
    /// device: the one `device` names, or else the one the username names (its serial number,
    /// `OUI-SerialNumber`, `OUI-ProductClass-SerialNumber` or device key).
    pub device_credentials: Vec<DeviceCredential>,
    /// A device seen within this window counts as online.
    #[serde(with = "humantime_serde")]
    pub online_window: Duration,
    /// A device silent for twice its PeriodicInformInterval plus this is overdue (a query
    /// field, and woken with a connection request when `connection_request.wake_overdue`).
    #[serde(with = "humantime_serde")]
    pub overdue_grace: Duration,
    /// Serve the ACS over HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Require every client to present a certificate signed by one of these CAs (PEM): mutual
    /// TLS. On the USP listener the certificate also says which agent the client is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

impl Default for CwmpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            session_idle_timeout: Duration::from_secs(30),
            max_sessions: 10_000,
            max_connections_per_address: 1024,
            retry_after_seconds: 30,
            gpv_batch_size: 100,
            allow_anonymous: false,
            realm: "radar".into(),
            shared_credentials: None,
            device_credentials: Vec::new(),
            online_window: Duration::from_secs(3600),
            overdue_grace: Duration::from_secs(600),
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionRequestConfig {
    /// Send connection requests when an operation is queued for a recently seen device.
    pub enabled: bool,
    /// Only devices seen within this window are woken; others wait for their next inform.
    #[serde(with = "humantime_serde")]
    pub recently_seen: Duration,
    /// Minimum spacing of connection requests to one device.
    #[serde(with = "humantime_serde")]
    pub per_device_interval: Duration,
    /// Connection requests per second across all devices.
    pub global_per_second: u32,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Credentials used when the twin holds none.
    pub default_credentials: Option<Credential>,
    /// For `https://` ConnectionRequestURLs: a PEM file of the CA certificates that sign CPE
    /// certificates. Without it, only `tls_accept_self_signed` lets such requests through.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Accept any certificate a CPE presents on an `https://` ConnectionRequestURL (many CPEs
    /// carry self-signed ones). The request still carries Digest authentication, but the CPE
    /// is not authenticated: prefer a CA bundle where the vendor provides one.
    pub tls_accept_self_signed: bool,
    /// Answer a device that offers only Basic authentication, which sends its connection-request
    /// password in clear (TR-069 §3.2.2 allows either; Digest is used whenever offered). Off by
    /// default (issue 13): such requests fail and say why.
    pub allow_basic: bool,
    /// Wake overdue devices (see `cwmp.overdue_grace`) with a connection request: TR-069
    /// §3.2.1.1 has a CPE retry a failed session, but some firmware never does.
    pub wake_overdue: bool,
    /// How often the node looks for overdue devices among the shards it leads.
    #[serde(with = "humantime_serde")]
    pub overdue_check_interval: Duration,
    /// Most wake-ups of overdue devices per second, so a fleet that went quiet together (an
    /// ACS outage) is woken gradually.
    pub overdue_per_second: u32,
    /// An overdue device is woken again at most this often.
    #[serde(with = "humantime_serde")]
    pub overdue_rewake_after: Duration,
    /// Copies of each UDP connection request (TR-069 Annex G: UDP may be lost, so the request
    /// is repeated; the CPE drops copies with an id it has seen).
    pub udp_copies: u32,
    /// Time between two copies of a UDP connection request.
    #[serde(with = "humantime_serde")]
    pub udp_copy_spacing: Duration,
    /// XMPP connection requests (TR-069 Annex K) through this server; off when absent.
    pub xmpp: Option<XmppConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XmppConfig {
    /// The XMPP server's client port, `host:port` (5222 by convention).
    pub server: String,
    /// Radar's account, a bare JID (`radar@xmpp.example.net`); devices should list it in
    /// `ManagementServer.ConnReqAllowedJabberIDs`.
    pub jid: String,
    pub password: String,
    /// The resource asked for at bind.
    pub resource: String,
    /// PEM CA certificates for STARTTLS. Without them Radar cannot upgrade, and a server
    /// that requires TLS is refused.
    pub tls_ca_file: Option<PathBuf>,
    /// Send the password (SASL PLAIN) over a connection that is not TLS: only for a server on
    /// loopback or a trusted segment.
    pub allow_plaintext_auth: bool,
    /// Whitespace keepalive period (RFC 6120 §4.6.1).
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
    /// Longest wait between reconnection attempts.
    #[serde(with = "humantime_serde")]
    pub max_reconnect_backoff: Duration,
}

impl Default for XmppConfig {
    fn default() -> Self {
        Self {
            server: "127.0.0.1:5222".into(),
            jid: String::new(),
            password: String::new(),
            resource: "radar".into(),
            tls_ca_file: None,
            allow_plaintext_auth: false,
            keepalive: Duration::from_secs(60),
            max_reconnect_backoff: Duration::from_secs(30),
        }
    }
}

impl Default for ConnectionRequestConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            recently_seen: Duration::from_secs(24 * 3600),
            per_device_interval: Duration::from_secs(10),
            global_per_second: 50,
            timeout: Duration::from_secs(5),
            default_credentials: None,
            tls_ca_file: None,
            tls_accept_self_signed: false,
            allow_basic: false,
            wake_overdue: true,
            overdue_check_interval: Duration::from_secs(60),
            overdue_per_second: 10,
            overdue_rewake_after: Duration::from_secs(3600),
            udp_copies: 3,
            udp_copy_spacing: Duration::from_millis(300),
            xmpp: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRule {
    /// Subtree relative to the data-model root, e.g. `DeviceInfo.`.
    pub prefix: String,
    /// Re-read when the oldest value under it is older than this.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlannerConfig {
    pub refresh: Vec<RefreshRule>,
    /// Parameters (relative to the root) set to active notification at bootstrap.
    pub notify_active: Vec<String>,
    /// Parameters (relative to the root) set to passive notification at bootstrap.
    pub notify_passive: Vec<String>,
    /// Give each device its own random connection-request credentials at bootstrap.
    pub manage_connection_request_credentials: bool,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        let d = radar_twin::planner::PlanConfig::default();
        Self {
            refresh: d
                .refresh
                .into_iter()
                .map(|(prefix, max_age)| RefreshRule { prefix, max_age })
                .collect(),
            notify_active: d.notify_active,
            notify_passive: d.notify_passive,
            manage_connection_request_credentials: d.manage_connection_request_credentials,
        }
    }
}

impl PlannerConfig {
    pub fn to_plan_config(&self) -> radar_twin::planner::PlanConfig {
        radar_twin::planner::PlanConfig {
            refresh: self
                .refresh
                .iter()
                .map(|r| (r.prefix.clone(), r.max_age))
                .collect(),
            notify_active: self.notify_active.clone(),
            notify_passive: self.notify_passive.clone(),
            manage_connection_request_credentials: self.manage_connection_request_credentials,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwinConfig {
    /// Most commands in one group commit.
    pub max_batch: usize,
    /// Default time-to-live of an operation; none means it waits for the device forever.
    #[serde(with = "humantime_serde")]
    pub default_operation_ttl: Option<Duration>,
    /// How long a fleet query waits for each shard before answering `partial: true`.
    #[serde(with = "humantime_serde")]
    pub shard_query_deadline: Duration,
    /// Parameter paths each shard indexes (value → devices), besides the meta fields, so
    /// queries on them read the index instead of scanning twins.
    pub indexed_paths: Vec<String>,
    /// The storage engine's page cache (sled), in bytes.
    pub storage_cache_bytes: u64,
}

impl Default for TwinConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            default_operation_ttl: None,
            shard_query_deadline: Duration::from_secs(5),
            indexed_paths: radar_twin::index::DEFAULT_INDEXED_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            storage_cache_bytes: radar_store::DEFAULT_CACHE_BYTES,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Memory the node's resident twins may take (estimated; e.g. `4GiB`). Every twin is on
    /// disk; beyond this, twins not in use are evicted and read back on their next use.
    /// Default: a quarter of the memory available (the container's limit, else the machine's).
    pub memory_budget: Option<crate::byte_size::ByteSize>,
}

impl StoreConfig {
    /// The budget in bytes, with the default applied.
    pub fn memory_budget_bytes(&self) -> u64 {
        match self.memory_budget {
            Some(size) => size.0,
            None => crate::byte_size::available_memory()
                .map(|m| m / 4)
                .unwrap_or(1 << 30),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UspConfig {
    /// This controller's USP endpoint id (agents list it in `Device.LocalAgent.Controller.{i}.EndpointID`).
    pub controller_id: String,
    /// Largest Record accepted from an agent; larger frames close the connection (1009).
    pub max_record_bytes: usize,
    /// How long Radar waits for an agent's answer to one request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// WebSocket ping interval; a peer silent for two intervals is dropped.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// When requests to a WebSocket agent have gone unanswered this long, Radar pings it.
    /// obuspa with libwebsockets 4.3 holds its answers in its send queue until something wakes
    /// its connection (its own 30 s keepalive, or a frame from Radar), so without a nudge a twin
    /// takes 30 s to fill. Zero turns it off.
    #[serde(with = "humantime_serde")]
    pub ws_nudge_after: Duration,
    /// How long an agent has to answer a liveness probe before it counts as gone.
    #[serde(with = "humantime_serde")]
    pub liveness_timeout: Duration,
    /// WebSocket read buffer per connection (tokio-tungstenite's 128 KiB default is too much
    /// for 100k idle agents).
    pub ws_read_buffer_bytes: usize,
    /// Most agents connected over WebSocket at once; more are refused with 503.
    pub max_connections: usize,
    /// WebSocket connections one source address may hold open at once (0: no limit).
    pub max_connections_per_address: usize,
    /// Parameters and objects watched with ValueChange subscriptions (narrow paths: agents
    /// refuse `Device.` as a whole with 7005).
    pub value_change: Vec<String>,
    /// Multi-instance tables watched with ObjectCreation and ObjectDeletion subscriptions.
    pub object_tables: Vec<String>,
    /// Events subscribed to.
    pub events: Vec<String>,
    /// The MQTT MTP; off when absent.
    pub mqtt: Option<MqttConfig>,
    /// The STOMP MTP (TR-369, STOMP binding): off when absent.
    pub stomp: Option<StompConfig>,
    /// Serve the WebSocket MTP as `wss://` with these PEM files (reloaded on SIGHUP). TR-369
    /// has the controller's certificate name its endpoint id in a SAN.
    pub tls: Option<TlsFiles>,
}

impl Default for UspConfig {
    fn default() -> Self {
        use radar_usp::subscriptions::{default_desired, NotifType};
        let desired = default_desired();
        let of = |t: NotifType| {
            let mut v: Vec<String> = desired
                .iter()
                .filter(|d| d.notif_type == t)
                .map(|d| d.reference.clone())
                .collect();
            v.dedup();
            v
        };
        Self {
            controller_id: "self::radar".into(),
            max_record_bytes: radar_usp::record::DEFAULT_MAX_RECORD_BYTES,
            request_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(30),
            ws_nudge_after: Duration::from_millis(250),
            liveness_timeout: Duration::from_secs(10),
            ws_read_buffer_bytes: 1024,
            max_connections: 200_000,
            max_connections_per_address: 1024,
            value_change: of(NotifType::ValueChange),
            object_tables: of(NotifType::ObjectCreation),
            events: of(NotifType::Event),
            mqtt: None,
            stomp: None,
            tls: None,
        }
    }
}

impl UspConfig {
    /// The subscriptions Radar keeps on every agent.
    pub fn desired_subscriptions(&self) -> Vec<radar_usp::subscriptions::Desired> {
        use radar_usp::subscriptions::{Desired, NotifType};
        let mut out: Vec<Desired> = Vec::new();
        out.extend(
            self.value_change
                .iter()
                .map(|p| Desired::new(NotifType::ValueChange, p)),
        );
        for table in &self.object_tables {
            out.push(Desired::new(NotifType::ObjectCreation, table));
            out.push(Desired::new(NotifType::ObjectDeletion, table));
        }
        out.extend(
            self.events
                .iter()
                .map(|p| Desired::new(NotifType::Event, p)),
        );
        out.push(Desired::new(NotifType::OperationComplete, "Device."));
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MqttProtocol {
    #[serde(rename = "5")]
    V5,
    #[serde(rename = "3.1.1")]
    V311,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker, `mqtt://HOST:PORT`.
    pub url: String,
    /// `5` (default) or `3.1.1`.
    pub protocol: MqttProtocol,
    /// MQTT client id; empty means `radar-<node id>`.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Longest wait between reconnect attempts (backoff doubles up to it).
    #[serde(with = "humantime_serde")]
    pub max_reconnect_backoff: Duration,
    /// How long the broker keeps Radar's session (subscription and queued records) while Radar
    /// is away (MQTT 5 session expiry; 3.1.1 sessions persist until the broker forgets them).
    #[serde(with = "humantime_serde")]
    pub session_expiry: Duration,
    /// An agent quiet this long is probed (a Get of `Device.LocalAgent.EndpointID`): MQTT
    /// carries no presence, and agents such as obuspa set no Will and may leave without a USP
    /// Disconnect. Zero turns it off.
    #[serde(with = "humantime_serde")]
    pub liveness_interval: Duration,
    /// After a broker (re)connect or a restart every known MQTT agent without a link is probed,
    /// at most this many per second.
    pub probe_rate: u32,
    /// TLS to the broker (with an `mqtts://` url): the CA to trust, and a client certificate
    /// when the broker asks for one.
    pub tls: Option<MqttTls>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTls {
    /// PEM file of the CA that signs the broker's certificate.
    pub ca: PathBuf,
    /// PEM client certificate chain and key, for brokers that require one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            protocol: MqttProtocol::V5,
            client_id: String::new(),
            username: None,
            password: None,
            keep_alive: Duration::from_secs(30),
            max_reconnect_backoff: Duration::from_secs(30),
            session_expiry: Duration::from_secs(24 * 3600),
            liveness_interval: Duration::from_secs(60),
            probe_rate: 200,
            tls: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml_and_unknown_keys_are_refused() {
        let text = toml::to_string(&NodeConfig::default()).unwrap();
        let back: NodeConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.cwmp.session_idle_timeout, Duration::from_secs(30));
        assert!(toml::from_str::<NodeConfig>("bogus = 1").is_err());
        let partial: NodeConfig = toml::from_str("[cwmp]\nsession_idle_timeout = \"5s\"").unwrap();
        assert_eq!(partial.cwmp.session_idle_timeout, Duration::from_secs(5));
        assert_eq!(partial.partitions, 4096);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StompConfig {
    /// The broker's STOMP port, `host:port` (61613 by convention).
    pub server: String,
    /// The STOMP `host` header: the broker's virtual host (RabbitMQ: `/`).
    pub virtual_host: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Where agents send to Radar: the value of their
    /// `Device.LocalAgent.Controller.{i}.MTP.{i}.STOMP.Destination`. A broker that names one
    /// in CONNECTED (`subscribe-dest`) overrides it.
    pub destination: String,
    /// Heart-beats Radar sends (and asks the broker to send) this often; zero: none.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Longest wait between reconnect attempts (backoff doubles up to it).
    #[serde(with = "humantime_serde")]
    pub max_reconnect_backoff: Duration,
    /// An agent quiet this long is probed, as over MQTT (a broker carries no presence). Zero
    /// turns it off.
    #[serde(with = "humantime_serde")]
    pub liveness_interval: Duration,
    /// After a (re)connect every known STOMP agent without a link is probed, at most this
    /// many per second.
    pub probe_rate: u32,
}

impl Default for StompConfig {
    fn default() -> Self {
        Self {
            server: "127.0.0.1:61613".into(),
            virtual_host: "/".into(),
            username: None,
            password: None,
            destination: "/queue/usp.controller".into(),
            heartbeat: Duration::from_secs(30),
            max_reconnect_backoff: Duration::from_secs(30),
            liveness_interval: Duration::from_secs(60),
            probe_rate: 200,
        }
    }
}
