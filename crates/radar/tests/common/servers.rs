//! Third-party servers a test starts itself from Debian packages, on free loopback ports, and
//! stops by PID when dropped: prosody (XMPP) and RabbitMQ (STOMP).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(what: &str, port: u16, within: Duration, log: &Path) {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on {port}; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A real prosody (Debian `prosody`) with one virtual host, `localhost`, plaintext client
/// connections allowed (loopback only) and accounts registered with `prosodyctl`.
pub struct Prosody {
    child: Child,
    pub port: u16,
    config: PathBuf,
}

impl Prosody {
    pub fn start(dir: &Path) -> Prosody {
        let dir = dir.join("prosody");
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let port = free_port();
        let config = dir.join("prosody.cfg.lua");
        let log = dir.join("prosody.log");
        std::fs::write(
            &config,
            format!(
                r#"daemonize = false
run_as_root = true
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
c2s_ports = {{ {port} }}
s2s_ports = {{ }}
interfaces = {{ "127.0.0.1" }}
authentication = "internal_plain"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
log = {{ info = "{log}" }}
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping" }}
VirtualHost "localhost"
"#,
                dir = dir.display(),
                log = log.display()
            ),
        )
        .unwrap();
        let child = Command::new("prosody")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prosody must be installed (apt-get install prosody)");
        wait_listening("prosody", port, Duration::from_secs(20), &log);
        Prosody {
            child,
            port,
            config,
        }
    }

    pub fn register(&self, user: &str, password: &str) {
        let status = Command::new("prosodyctl")
            .arg("--config")
            .arg(&self.config)
            .args(["register", user, "localhost", password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "prosodyctl register {user}");
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
