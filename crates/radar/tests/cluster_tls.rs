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
    let (ca, issued) = common::signed_by_a_ca(&["127.0.0.1"; 4]);
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
}
