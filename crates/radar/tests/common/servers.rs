//! Third-party servers a test starts itself from Debian packages, on free loopback ports, and
//! stops by PID when dropped: prosody (XMPP) and RabbitMQ (STOMP).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

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

/// A real prosody (Debian `prosody`) with one virtual host, `localhost`, and accounts registered
/// with `prosodyctl`.
pub struct Prosody {
    child: Child,
    pub port: u16,
    config: PathBuf,
}

impl Prosody {
    /// Plaintext client connections allowed (loopback only).
    pub fn start(dir: &Path) -> Prosody {
        Self::start_with(dir, None)
    }

    /// Client connections must be encrypted (STARTTLS) with this PEM certificate and key.
    pub fn start_tls(dir: &Path, cert_pem: &str, key_pem: &str) -> Prosody {
        Self::start_with(dir, Some((cert_pem, key_pem)))
    }

    fn start_with(dir: &Path, tls: Option<(&str, &str)>) -> Prosody {
        let dir = dir.join("prosody");
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let port = free_port();
        let config = dir.join("prosody.cfg.lua");
        let log = dir.join("prosody.log");
        let encryption = match tls {
            Some((cert, key)) => {
                std::fs::write(dir.join("xmpp.crt"), cert).unwrap();
                std::fs::write(dir.join("xmpp.key"), key).unwrap();
                format!(
                    "c2s_require_encryption = true\nallow_unencrypted_plain_auth = false\nssl = {{ certificate = \"{0}/xmpp.crt\"; key = \"{0}/xmpp.key\" }}",
                    dir.display()
                )
            }
            None => "c2s_require_encryption = false\nallow_unencrypted_plain_auth = true".into(),
        };
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
{encryption}
log = {{ info = "{log}" }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping" }}
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

/// The uid and gid of a system user, from /etc/passwd.
fn system_user(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name) && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .unwrap_or_else(|| panic!("no {name} user: apt-get install rabbitmq-server"))
}

/// A real RabbitMQ (Debian `rabbitmq-server`) with its STOMP plugin, on free loopback ports,
/// with an Erlang port mapper of its own (so stopping it touches no other broker). It runs as
/// the `rabbitmq` user, so its directory belongs to that user. Guest/guest
/// may log in from loopback.
pub struct RabbitMq {
    /// The wrapper script, leader of the process group that holds the broker.
    wrapper: Option<Child>,
    pub stomp_port: u16,
    amqp_port: u16,
    dist_port: u16,
    epmd_port: u16,
    dir: PathBuf,
}

impl RabbitMq {
    pub fn start(dir: &Path) -> RabbitMq {
        let dir = dir.join("rabbitmq");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[rabbitmq_stomp].\n").unwrap();
        let mut broker = RabbitMq {
            wrapper: None,
            stomp_port: free_port(),
            amqp_port: free_port(),
            dist_port: free_port(),
            epmd_port: free_port(),
            dir,
        };
        broker.launch();
        broker
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.stomp_port)
    }

    fn launch(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        // The rabbitmq user must reach its directory through the test's temporary folders.
        let mut up = self.dir.parent();
        while let Some(p) = up {
            if p == Path::new("/") {
                break;
            }
            let mode = std::fs::metadata(p).unwrap().permissions().mode();
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o711));
            up = p.parent();
        }
        let status = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success(), "chown for rabbitmq");
        let log = self.dir.join("startup.log");
        // The broker's own start script as the rabbitmq user, in a process group of ours (the
        // Debian wrapper's `su -c` would start a new session that a stop could not reach).
        let (uid, gid) = system_user("rabbitmq");
        let child = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server")
            .current_dir(&self.dir)
            .uid(uid)
            .gid(gid)
            .env("HOME", &self.dir)
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", self.dir.join("enabled_plugins"))
            .env("RABBITMQ_NODENAME", format!("radar-test-{}@localhost", self.stomp_port))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env(
                "RABBITMQ_SERVER_START_ARGS",
                format!(
                    "-rabbitmq_stomp tcp_listeners [{{\"127.0.0.1\",{}}}] -kernel inet_dist_use_interface {{127,0,0,1}}",
                    self.stomp_port
                ),
            )
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("rabbitmq-server must be installed (apt-get install rabbitmq-server)");
        self.wrapper = Some(child);
        wait_listening(
            "rabbitmq stomp",
            self.stomp_port,
            Duration::from_secs(60),
            &log,
        );
    }

    /// Stops the broker (its whole process group) and waits until the port is closed.
    pub fn stop(&mut self) {
        let Some(mut wrapper) = self.wrapper.take() else {
            return;
        };
        let group = wrapper.id();
        let signal = |sig: &str| {
            let _ = Command::new("kill")
                .args([sig, "--", &format!("-{group}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.stomp_port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        signal("-KILL");
        let _ = wrapper.wait();
    }

    /// Stops and starts the broker on the same ports and data (a broker restart).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.stop();
        // The port mapper this broker started, on its own port.
        let _ = Command::new("epmd")
            .args(["-port", &self.epmd_port.to_string(), "-kill"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
