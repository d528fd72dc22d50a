//! Mutual TLS on the cluster gRPC port (issue 13): nodes run Raft, the layout and the scatter
//! with certificates of the cluster's CA, a router follows the layout with its own, and a
//! caller without a certificate, or speaking plain HTTP/2, gets nothing.

mod common;

use common::cluster::*;
use common::Radar;
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_and_routers_speak_mutual_tls_and_a_caller_without_a_certificate_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Four members, and a fifth certificate that replaces node 1's in a reload.
    let (ca, issued) = common::signed_by_a_ca(&["127.0.0.1"; 5]);
    let write = |name: &str, text: &str| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_file = write("ca.pem", &ca);
    let tls_of = |i: usize| {
        format!(
            "tls = {{ ca = {ca_file:?}, cert = {:?}, key = {:?} }}\n",
            write(&format!("member{i}.pem"), &issued[i].0),
            write(&format!("member{i}.key"), &issued[i].1)
        )
    };
    let (ports, seeds) = cluster_ports();
    let nodes: Vec<Radar> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let toml = format!("{NODE_TOML}\n[cluster]\n{}", tls_of(i));
            start_node_configured(dir.path(), i as u64 + 1, p, &seeds, &toml, &[])
        })
        .collect();
    init_cluster(&format!("http://127.0.0.1:{}", ports[0].api), 3, 3);
    // Every shard led and every node reachable: Raft and status calls went over mutual TLS.
    settled_status(&nodes[1], 3).await;

    let router_dir = dir.path().join("router");
    std::fs::create_dir_all(&router_dir).unwrap();
    let router_toml = router_dir.join("router.toml");
    std::fs::write(&router_toml, tls_of(3)).unwrap();
    // Ready only once it has the layout, which it reads over mutual TLS.
    let _router = start_ready_router_with(
        &router_dir,
        &seeds,
        &[
            "--config".into(),
            router_toml.to_string_lossy().into_owned(),
        ],
    )
    .await;

    // A caller that trusts the CA but has no certificate of its own, and one in plain HTTP/2.
    use radar_proto::cluster::cluster_client::ClusterClient;
    use radar_proto::cluster::GetLayoutRequest;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let grpc = format!("127.0.0.1:{}", ports[0].grpc);
    let without_certificate = Endpoint::from_shared(format!("https://{grpc}"))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca)))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    let answer = ClusterClient::new(without_certificate)
        .get_layout(GetLayoutRequest { stale: true })
        .await;
    assert!(
        answer.is_err(),
        "a caller without a certificate got {answer:?}"
    );
    let plain = Endpoint::from_shared(format!("http://{grpc}"))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    let answer = ClusterClient::new(plain)
        .get_layout(GetLayoutRequest { stale: true })
        .await;
    assert!(answer.is_err(), "a plain caller got {answer:?}");

    // A renewed certificate in node 1's files, then SIGHUP: its gRPC port presents the new one
    // to new callers, and node 1 keeps working with its peers (its own calls present it too).
    let der = |pem: &str| {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    };
    assert_eq!(served(&ca, &issued[3], &grpc).await, der(&issued[0].0));
    write("member0.pem", &issued[4].0);
    write("member0.key", &issued[4].1);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &nodes[0].child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let renewed = der(&issued[4].0);
    common::eventually(
        "the renewed certificate served",
        Duration::from_secs(10),
        || async { (served(&ca, &issued[3], &grpc).await == renewed).then_some(()) },
    )
    .await;
    settled_status(&nodes[0], 3).await;
}

/// The certificate the gRPC port at `grpc` presents to a caller with `identity`.
async fn served(ca: &str, identity: &(String, String), grpc: &str) -> Vec<u8> {
    use rustls_pki_types::ServerName;
    let client = common::tls_client(ca, Some(identity));
    let tcp = tokio::net::TcpStream::connect(grpc).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// Cluster gRPC carries Raft: a node does not serve it beyond loopback in plaintext unless the
/// operator says so (`[cluster] allow_plaintext`), and then it warns.
#[test]
fn a_node_refuses_plaintext_cluster_grpc_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let grpc = format!("0.0.0.0:{}", common::free_port());
    let run = |config: &str| {
        let path = dir.path().join("node.toml");
        std::fs::write(&path, config).unwrap();
        let log = dir.path().join("out.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_radar"))
            .args(["up", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--grpc-listen", &grpc, "--config"])
            .arg(&path)
            .args([
                "--api-listen",
                &format!("127.0.0.1:{}", common::free_port()),
            ])
            .args([
                "--cwmp-listen",
                &format!("127.0.0.1:{}", common::free_port()),
            ])
            .args([
                "--usp-listen",
                &format!("127.0.0.1:{}", common::free_port()),
            ])
            .args([
                "--stun-listen",
                &format!("127.0.0.1:{}", common::free_port()),
            ])
            .env("RADAR_BOOTSTRAP_TOKEN", common::TEST_TOKEN)
            .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        // Until it exits, or serves.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let exited = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("listening") || std::time::Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (exited.is_some_and(|s| !s.success()), text)
    };
    let (refused, text) = run("");
    assert!(refused, "started without TLS on {grpc}: {text}");
    assert!(text.contains("allow_plaintext"), "{text}");
    let (refused, text) = run("[cluster]\nallow_plaintext = true\n");
    assert!(!refused, "{text}");
    assert!(
        text.contains("without TLS ([cluster] allow_plaintext)"),
        "{text}"
    );
}
