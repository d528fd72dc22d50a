//! Helpers for process-level tests: start `radar up` as a real process on free ports, talk to
//! its API, and stop it by PID.

#![allow(dead_code)]

pub mod cluster;
pub mod helm;
pub mod servers;
pub mod usp;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port free for a test to hand to a process it starts. Picked below the kernel's
/// ephemeral range (32768–60999 here): a port the kernel hands out (`bind(0)`, or any outgoing
/// connection) can be taken again by someone's outgoing connection before the process binds it,
/// which failed a cluster test once with "Address already in use". Ports here are only ever
/// taken by an explicit bind; a counter keeps one test binary's picks apart, and each pick is
/// checked free (TCP and UDP) before it is handed out.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    loop {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

/// A CA and a certificate it signs for each name: (CA PEM, [(certificate PEM, key PEM)]). A
/// name may list several subjectAltNames separated by `|` (the first is also the common
/// name); `urn:…` ones are URIs (a USP Endpoint ID), the others IP addresses or DNS names.
pub fn signed_by_a_ca(names: &[&str]) -> (String, Vec<(String, String)>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "radar test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let issued = names
        .iter()
        .map(|name| {
            let sans: Vec<&str> = name.split('|').collect();
            let dns_or_ip: Vec<String> = sans
                .iter()
                .filter(|s| !s.starts_with("urn:"))
                .map(|s| s.to_string())
                .collect();
            let mut params = CertificateParams::new(dns_or_ip).unwrap();
            for uri in sans.iter().filter(|s| s.starts_with("urn:")) {
                params
                    .subject_alt_names
                    .push(rcgen::SanType::URI((*uri).try_into().unwrap()));
            }
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, sans[0]);
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem())
        })
        .collect();
    (ca.pem(), issued)
}

/// The admin token every process a test starts is given (`RADAR_BOOTSTRAP_TOKEN`), and that
/// every helper sends: the suites run with authentication on (issue 13).
pub const TEST_TOKEN: &str = "radar-test-admin-token-4f0c2a7d9e1b3c5a";

/// A request to a test's node with the test's admin token.
pub fn authed(method: reqwest::Method, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, url)
        .bearer_auth(TEST_TOKEN)
}

pub struct Radar {
    pub child: Child,
    pub cwmp: SocketAddr,
    pub usp: SocketAddr,
    pub api: SocketAddr,
    /// The STUN server's UDP address, when it runs.
    pub stun: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Radar {
    /// Starts `radar up` and waits for its `listening …` line.
    pub fn start(data_dir: &Path, config: Option<&str>) -> Radar {
        Self::start_with(data_dir, config, &[])
    }

    pub fn start_with(data_dir: &Path, config: Option<&str>, extra: &[&str]) -> Radar {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = data_dir.join(format!(
            "radar-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_radar"));
        cmd.arg("up").arg("--data-dir").arg(data_dir.join("data"));
        // Free ports unless the caller pins a listener (e.g. to restart on the same address).
        for flag in [
            "--cwmp-listen",
            "--api-listen",
            "--usp-listen",
            "--grpc-listen",
            "--stun-listen",
        ] {
            if !extra.contains(&flag) {
                cmd.args([flag, "127.0.0.1:0"]);
            }
        }
        if let Some(text) = config {
            let path = data_dir.join("radar.toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        cmd.args(extra);
        Self::launch(cmd, data_dir, log)
    }

    /// Starts `radar router` with `args` (seeds, listeners) and waits for its listening line.
    pub fn start_router(data_dir: &Path, args: &[String]) -> Radar {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = data_dir.join("router.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_radar"));
        cmd.arg("router").args(args);
        Self::launch(cmd, data_dir, log)
    }

    /// Starts `radar node` with `args` (ids, listeners, seeds) and waits for its listening line.
    pub fn start_node(data_dir: &Path, args: &[String]) -> Radar {
        Self::start_node_in(None, data_dir, args)
    }

    /// `start_node` inside network namespace `netns` (`ip netns exec`, which execs the node, so
    /// the child's pid is the node's).
    pub fn start_node_in(netns: Option<&str>, data_dir: &Path, args: &[String]) -> Radar {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = data_dir.join(format!(
            "node-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut cmd = match netns {
            Some(netns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", netns, env!("CARGO_BIN_EXE_radar")]);
                cmd
            }
            None => Command::new(env!("CARGO_BIN_EXE_radar")),
        };
        cmd.arg("node").arg("--data-dir").arg(data_dir.join("data"));
        cmd.args(args);
        Self::launch(cmd, data_dir, log)
    }

    pub fn launch(mut cmd: Command, data_dir: &Path, log: PathBuf) -> Radar {
        cmd.env("RADAR_LOG", "info,radar_node=debug,radar_router=debug");
        // A caller may start a node without a given token (to see one generated).
        if !cmd.get_envs().any(|(k, _)| k == "RADAR_BOOTSTRAP_TOKEN") {
            cmd.env("RADAR_BOOTSTRAP_TOKEN", TEST_TOKEN);
        }
        // Never the user's own credentials file.
        cmd.env("XDG_CONFIG_HOME", data_dir.join("xdg-config"));
        // Every suite runs with a budget smaller than one gateway's twin, so twins are evicted
        // at nearly every checkpoint and read back from disk at their next use (issue 12);
        // RADAR_TEST_MEMORY_BUDGET overrides it, and a caller's --memory-budget wins.
        cmd.env(
            "RADAR_MEMORY_BUDGET",
            std::env::var("RADAR_TEST_MEMORY_BUDGET").unwrap_or_else(|_| "16KiB".into()),
        );
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
        let mut child = cmd.spawn().expect("spawn radar");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        assert!(
            line.starts_with("listening "),
            "unexpected first line {line:?}; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let field = |name: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
                .parse()
                .unwrap()
        };
        Radar {
            cwmp: field("cwmp"),
            usp: field("usp"),
            api: field("api"),
            stun: line
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("stun="))
                .and_then(|v| v.parse().ok()),
            child,
            data_dir: data_dir.to_owned(),
            log,
        }
    }

    pub fn acs_url(&self) -> String {
        format!("http://{}/", self.cwmp)
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    pub fn kill9(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
    }

    /// A request to this node's API with the test's admin token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        authed(method, self.api_url(path))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("api reachable");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .request(method, path)
            .json(&body)
            .send()
            .await
            .expect("api reachable");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the MQTT MTP has subscribed to the controller topic (records published
    /// before that, with no subscriber, are dropped by the broker).
    pub async fn wait_mqtt_subscribed(&self) {
        eventually(
            "radar subscribed on the mqtt broker",
            Duration::from_secs(20),
            || async {
                let text = reqwest::get(self.api_url("/metrics"))
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                text.lines()
                    .any(|l| l.trim() == "radar_usp_mqtt_connected 1")
                    .then_some(())
            },
        )
        .await
    }

    /// The Prometheus text of `/metrics` (empty if it cannot be read).
    pub async fn metrics(&self) -> String {
        match reqwest::get(self.api_url("/metrics")).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Radar {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// Polls `check` until it returns Some or the timeout passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn device_path(id: &str) -> String {
    format!("/api/v1/devices/{id}")
}

/// A tiny HTTP file server for firmware downloads: answers every GET with `body`.
pub async fn file_server(body: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
            });
        }
    });
    addr
}

/// A real mosquitto broker on a free loopback port, stopped (by PID) when dropped.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
}

impl Mosquitto {
    pub fn start(dir: &Path) -> Mosquitto {
        Self::start_on(dir, free_port())
    }

    /// A broker on a given port (to restart one where its clients expect it).
    pub fn start_on(dir: &Path, port: u16) -> Mosquitto {
        Self::start_configured(dir, port, "")
    }

    /// A broker that speaks TLS only and requires a client certificate signed by `ca`.
    pub fn start_tls(dir: &Path, ca: &Path, cert: &Path, key: &Path) -> Mosquitto {
        let tls = format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            ca.display(),
            cert.display(),
            key.display()
        );
        Self::start_configured(dir, free_port(), &tls)
    }

    fn start_configured(dir: &Path, port: u16, listener: &str) -> Mosquitto {
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n{listener}allow_anonymous true\npersistence false\n"
            ),
        )
        .unwrap();
        let binary = [
            "/usr/sbin/mosquitto",
            "/usr/local/sbin/mosquitto",
            "mosquitto",
        ]
        .into_iter()
        .find(|b| !b.starts_with('/') || Path::new(b).exists())
        .unwrap();
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (apt-get install mosquitto)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Mosquitto { child, port }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A rustls client trusting `ca_pem` (a CA or a self-signed certificate), presenting
/// `identity` (certificate PEM, key PEM) when given.
pub fn tls_client(ca_pem: &str, identity: Option<&(String, String)>) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

/// A USP WebSocket handshake request (`v1.usp`) for agent `eid` at `usp`.
pub fn usp_ws_request(
    scheme: &str,
    usp: SocketAddr,
    eid: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("{scheme}://127.0.0.1:{}/usp?eid={eid}", usp.port())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "v1.usp".parse().unwrap());
    request
}
