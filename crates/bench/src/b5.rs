//! B5: memory per idle connected USP agent, against the same number of bare tokio TCP tasks.
//!
//! Each measurement runs the server in a child process (this binary, `b5-server`) and reads its
//! resident set from `/proc`. Radar is measured with the agents' twins already loaded: a first
//! run connects the agents so their twins exist, the server restarts on the same data, and the
//! second run's growth from "twins loaded, nobody connected" to "everyone connected and synced"
//! is the cost of the connections. The baseline server accepts TCP connections and parks one
//! task per connection on a read. Client sockets spread their source addresses over 127.0.0.x.

use radar_sim::usp_agent::AgentCore;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

const CONTROLLER: &str = "self::radar";

fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}

/// The server side, in its own process: `b5-server radar DIR` or `b5-server bare`.
pub fn serve(args: &[String]) -> anyhow::Result<()> {
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match args.first().map(String::as_str) {
            Some("bare") => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                println!("ready addr={} api=-", listener.local_addr()?);
                loop {
                    let Ok((mut stream, _)) = listener.accept().await else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    tokio::spawn(async move {
                        use tokio::io::AsyncReadExt;
                        let mut buf = [0u8; 64];
                        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                    });
                }
            }
            Some("radar") => {
                let dir = args
                    .get(1)
                    .ok_or_else(|| anyhow::anyhow!("b5-server radar DIR"))?;
                let usp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let api = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let cwmp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let (usp_addr, api_addr) = (usp.local_addr()?, api.local_addr()?);
                let mut config = radar_node::config::NodeConfig {
                    data_dir: dir.into(),
                    ..Default::default()
                };
                config.usp.ping_interval = Duration::from_secs(3600);
                // Every simulated agent connects from the one loopback address.
                config.usp.max_connections_per_address = 0;
                // A small page cache, so storage warming up is not counted as connection memory.
                config.twin.storage_cache_bytes = 4 * 1024 * 1024;
                let (_tx, shutdown) = tokio::sync::watch::channel(false);
                let node = radar_node::start(
                    config,
                    radar_node::Listeners {
                        cwmp,
                        api,
                        usp: Some(usp),
                        grpc: None,
                        stun: None,
                    },
                    shutdown,
                )
                .await?;
                println!("ready addr={usp_addr} api={api_addr}");
                for t in node.tasks {
                    let _ = t.await;
                }
                Ok(())
            }
            other => anyhow::bail!("b5-server: unknown kind {other:?}"),
        }
    })
}

struct Server {
    child: Child,
    addr: SocketAddr,
    api: Option<SocketAddr>,
}

impl Server {
    fn start(args: &[&str]) -> anyhow::Result<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("b5-server")
            .args(args)
            // Freed memory is returned with MADV_DONTNEED rather than MADV_FREE, so RSS shows
            // live memory instead of pages the kernel has not yet reclaimed.
            .env("MIMALLOC_PURGE_DECOMMITS", "1")
            .env("MIMALLOC_PURGE_DELAY", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line)?;
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
        };
        let addr = field("addr").ok_or_else(|| anyhow::anyhow!("server said {line:?}"))?;
        Ok(Server {
            child,
            addr,
            api: field("api"),
        })
    }

    fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }

    async fn usp_connections(&self) -> u64 {
        let Some(api) = self.api else { return 0 };
        let Ok(mut s) = tokio::net::TcpStream::connect(api).await else {
            return 0;
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = s
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await;
        let mut text = String::new();
        let _ = s.read_to_string(&mut text).await;
        text.lines()
            .find_map(|l| l.strip_prefix("radar_usp_connections "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn source(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 200) as u8)), 0)
}

async fn tcp(i: usize, server: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(source(i))?;
    socket.connect(server).await
}

/// A minimal agent that answers the controller and then idles on its connection. A `silent`
/// one completes the WebSocket handshake and says nothing (the connection's own cost).
async fn agent(
    i: usize,
    server: SocketAddr,
    silent: bool,
    answered: Arc<AtomicU64>,
    connected: Arc<AtomicUsize>,
) {
    use futures_util::{SinkExt, StreamExt};
    let eid = format!("os::B5-{i:06}");
    let mut core = AgentCore::minimal(&eid, CONTROLLER);
    let Ok(stream) = tcp(i, server).await else {
        return;
    };
    let mut request = radar_sim::usp_agent::ws::url(&server.to_string(), &eid)
        .into_client_request()
        .expect("url");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("v1.usp"));
    let Ok((mut ws, _)) = tokio_tungstenite::client_async(request, stream).await else {
        return;
    };
    connected.fetch_add(1, Ordering::Relaxed);
    if !silent {
        let _ = ws
            .send(Message::Binary(core.websocket_connect().into()))
            .await;
    }
    while let Some(Ok(frame)) = ws.next().await {
        if let Message::Binary(bytes) = frame {
            for r in core.handle_record(&bytes) {
                if ws.send(Message::Binary(r.into())).await.is_err() {
                    return;
                }
            }
            answered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn bare_client(i: usize, server: SocketAddr, connected: Arc<AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let Ok(mut stream) = tcp(i, server).await else {
        return;
    };
    connected.fetch_add(1, Ordering::Relaxed);
    let mut buf = [0u8; 16];
    let _ = stream.read(&mut buf).await;
}

#[derive(Clone, Copy, PartialEq)]
enum Clients {
    Bare,
    SilentAgents,
    Agents,
}

/// Connects `n` clients and waits until they are all connected and the server went quiet.
async fn connect_all(
    server: &Server,
    n: usize,
    kind: Clients,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let answered = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (addr, answered, connected) = (server.addr, answered.clone(), connected.clone());
        tasks.push(match kind {
            Clients::Bare => tokio::spawn(bare_client(i, addr, connected)),
            Clients::SilentAgents => tokio::spawn(agent(i, addr, true, answered, connected)),
            Clients::Agents => tokio::spawn(agent(i, addr, false, answered, connected)),
        });
        // Pace the handshakes a little, as a real reconnect storm would be by backoff.
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let start = Instant::now();
    while connected.load(Ordering::Relaxed) < n {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(300),
            "only {} of {n} connected",
            connected.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if kind == Clients::Agents {
        while server.usp_connections().await < n as u64 {
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(300),
                "server sees {} of {n}",
                server.usp_connections().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Idle means the connect-time work (reads, subscriptions) is over.
        let mut last = u64::MAX;
        loop {
            let now = answered.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(tasks)
}

async fn measure_bare(n: usize) -> anyhow::Result<f64> {
    let server = Server::start(&["bare"])?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_bytes();
    let tasks = connect_all(&server, n, Clients::Bare).await?;
    let after = server.rss_bytes();
    for t in tasks {
        t.abort();
    }
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

struct RadarMemory {
    /// Per connection whose agent has not spoken yet: transport, link and registry.
    silent: f64,
    /// Per connected agent after its connect-time sync, subscriptions and reads done.
    synced: f64,
    /// Per twin loaded at startup (not included above).
    twin: f64,
}

async fn measure_radar(n: usize) -> anyhow::Result<RadarMemory> {
    let dir = tempfile::tempdir_in(std::env::current_dir()?)?;
    let data = dir.path().to_string_lossy().into_owned();
    let empty_rss;
    {
        // First run: the agents' twins come to exist.
        let server = Server::start(&["radar", &data])?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        empty_rss = server.rss_bytes();
        for t in connect_all(&server, n, Clients::Agents).await? {
            t.abort();
        }
    }
    // Later runs on the same data: twins loaded, then everyone connects again.
    let grow = |kind| {
        let data = data.clone();
        async move {
            let server = Server::start(&["radar", &data])?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let loaded = server.rss_bytes();
            let tasks = connect_all(&server, n, kind).await?;
            let connected = server.rss_bytes();
            for t in tasks {
                t.abort();
            }
            anyhow::Ok((loaded, connected.saturating_sub(loaded) as f64 / n as f64))
        }
    };
    let (_, silent) = grow(Clients::SilentAgents).await?;
    let (loaded, synced) = grow(Clients::Agents).await?;
    Ok(RadarMemory {
        silent,
        synced,
        twin: loaded.saturating_sub(empty_rss) as f64 / n as f64,
    })
}

pub fn run(counts: &[usize]) -> anyhow::Result<()> {
    let limit = raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!("\n## B5: memory per idle connected USP agent (server RSS growth / connections; RLIMIT_NOFILE {limit})\n");
    println!("| connections | baseline: bare tokio TCP task | radar: connection before the agent speaks | radar: connected, synced agent | radar: twin loaded (not in the columns before) |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for &n in counts {
        // Each side of a connection needs a descriptor in its own process, plus a few spare.
        if n as u64 + 64 > limit {
            println!("| {n} | not run: this process may open only {limit} files (hard RLIMIT_NOFILE) | | | |");
            continue;
        }
        let bare = runtime.block_on(measure_bare(n))?;
        let radar = runtime.block_on(measure_radar(n))?;
        println!(
            "| {n} | {bare:.0} B | {:.0} B | {:.0} B | {:.0} B |",
            radar.silent, radar.synced, radar.twin
        );
    }
    Ok(())
}
