//! What the benches that run real `radar node` processes (B9, B10 end to end) share: free
//! loopback ports and a node's command line.

use std::path::Path;

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A node's four listeners: gRPC, API, CWMP, USP.
pub fn free_ports() -> anyhow::Result<[u16; 4]> {
    Ok([free_port()?, free_port()?, free_port()?, free_port()?])
}

/// The seeds of a cluster of nodes listening on `ports`: their gRPC addresses.
pub fn seeds(ports: &[[u16; 4]]) -> String {
    ports
        .iter()
        .map(|p| format!("127.0.0.1:{}", p[0]))
        .collect::<Vec<_>>()
        .join(",")
}

/// `radar node` with id `id`, its data in `data_dir`, listening on loopback `ports`.
pub fn node_args(
    id: u64,
    data_dir: &Path,
    ports: &[u16; 4],
    seeds: &str,
    config: &Path,
) -> Vec<String> {
    let addr = |port: u16| format!("127.0.0.1:{port}");
    vec![
        "node".into(),
        "--node-id".into(),
        id.to_string(),
        "--data-dir".into(),
        data_dir.to_string_lossy().into_owned(),
        "--grpc-listen".into(),
        addr(ports[0]),
        "--api-listen".into(),
        addr(ports[1]),
        "--cwmp-listen".into(),
        addr(ports[2]),
        "--usp-listen".into(),
        addr(ports[3]),
        "--seeds".into(),
        seeds.into(),
        "--config".into(),
        config.to_string_lossy().into_owned(),
    ]
}

/// Ports, seeds and a config file (devices without credentials) for three nodes in `dir`.
pub fn three_nodes(dir: &Path) -> anyhow::Result<(Vec<[u16; 4]>, String, std::path::PathBuf)> {
    let ports: Vec<[u16; 4]> = (0..3)
        .map(|_| free_ports())
        .collect::<anyhow::Result<_>>()?;
    let seeds = seeds(&ports);
    let config = dir.join("node.toml");
    // Every simulated device connects from the one loopback address.
    std::fs::write(
        &config,
        "[cwmp]\nallow_anonymous = true\nmax_connections_per_address = 0\n\n[usp]\nmax_connections_per_address = 0\n",
    )?;
    Ok((ports, seeds, config))
}

/// The admin token the benches' nodes are started with (`RADAR_BOOTSTRAP_TOKEN`) and send.
pub const BENCH_TOKEN: &str = "radar-bench-admin-token-5d2c7e91a04b8f36";

/// An API client that sends [`BENCH_TOKEN`] with every request.
pub fn api_client() -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {BENCH_TOKEN}"))?,
    );
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}
