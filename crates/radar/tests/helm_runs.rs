//! What the Helm chart renders, run (issue 14): the StatefulSet's container args and env for
//! pods 0, 1 and 2, the router Deployment's, and the init Job's, with each pod's DNS name
//! replaced by a loopback address of its own (127.0.0.11…, the router 127.0.0.21) and the
//! mounted files by local ones, run as real processes. They must form a working cluster that a
//! CPE informs through the rendered router. A chart whose commands do not start a cluster
//! fails here, long before a carrier finds out. The cluster certificate is made for those
//! addresses (the chart's is made for the pods' DNS names).

mod common;

use base64::Engine;
use common::helm::{args, helm, objects, of_kind, string, template};
use common::{device_path, eventually, Radar};
use radar_sim::{SimConfig, SimFleet};
use serde_yaml::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const NAMESPACE: &str = "carrier";

/// A pod's stand-in: its name, its address here, and its files.
struct Pod {
    name: String,
    ip: String,
}

/// The value of a rendered Secret's key.
fn secret(docs: &[Value], name: &str, key: &str) -> String {
    let secret = of_kind(docs, "Secret")
        .into_iter()
        .find(|s| s["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no Secret {name}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(string(&secret["data"][key]))
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// `text` as it would be here: Kubernetes' `$(VAR)` expanded, every pod's DNS name replaced
/// by its address, listeners on this pod's address, mounted paths by local ones.
fn localize(text: &str, pod: &Pod, pods: &[Pod], mounts: &[(&str, &Path)]) -> String {
    let mut text = text
        .replace("$(POD_NAME)", &pod.name)
        .replace("$(POD_NAMESPACE)", NAMESPACE);
    for other in pods {
        let dns = format!("{}.r1-radar-node.{NAMESPACE}.svc.cluster.local", other.name);
        text = text.replace(&dns, &other.ip);
    }
    text = text.replace("0.0.0.0:", &format!("{}:", pod.ip));
    for (mounted, local) in mounts {
        text = text.replace(mounted, &local.to_string_lossy());
    }
    text
}

/// The container's env as Kubernetes would set it: literals, the pod's fields, Secret keys.
fn env_of(workload: &Value, docs: &[Value], pod: &Pod) -> Vec<(String, String)> {
    let container = &workload["spec"]["template"]["spec"]["containers"][0];
    let mut env = vec![("HOSTNAME".to_owned(), pod.name.clone())];
    for var in container["env"].as_sequence().into_iter().flatten() {
        let name = string(&var["name"]);
        let from = &var["valueFrom"];
        let value = if !var["value"].is_null() {
            string(&var["value"])
        } else if from["fieldRef"]["fieldPath"] == "metadata.name" {
            pod.name.clone()
        } else if from["fieldRef"]["fieldPath"] == "metadata.namespace" {
            NAMESPACE.to_owned()
        } else if !from["secretKeyRef"].is_null() {
            let key = &from["secretKeyRef"];
            secret(docs, &string(&key["name"]), &string(&key["key"]))
        } else {
            panic!("env {name}: {var:?} is not something this test can provide");
        };
        env.push((name, value));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rendered_commands_form_a_cluster_that_serves_a_cpe() {
    let docs = objects(&template(&helm(), None));
    let dir = tempfile::tempdir().unwrap();
    let node_set = of_kind(&docs, "StatefulSet")[0];
    let router = of_kind(&docs, "Deployment")[0];
    let job = of_kind(&docs, "Job")[0];
    let config = of_kind(&docs, "ConfigMap")[0];
    let pods: Vec<Pod> = (0..3)
        .map(|i| Pod {
            name: format!("r1-radar-node-{i}"),
            ip: format!("127.0.0.{}", 11 + i),
        })
        .collect();
    let router_pod = Pod {
        name: "r1-radar-router-0".into(),
        ip: "127.0.0.21".into(),
    };
    // The cluster's TLS files, for the addresses the pods have here.
    let tls_dir = dir.path().join("cluster-tls");
    std::fs::create_dir_all(&tls_dir).unwrap();
    let names = "127.0.0.11|127.0.0.12|127.0.0.13|127.0.0.21";
    let (ca, issued) = common::signed_by_a_ca(&[names]);
    for (file, text) in [
        ("ca.crt", &ca),
        ("tls.crt", &issued[0].0),
        ("tls.key", &issued[0].1),
    ] {
        std::fs::write(tls_dir.join(file), text).unwrap();
    }
    let token = secret(&docs, "r1-radar-admin-token", "token");

    let mut nodes = Vec::new();
    for pod in &pods {
        let pod_dir = dir.path().join(&pod.name);
        let data = pod_dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let node_toml = pod_dir.join("node.toml");
        let mounts: [(&str, &Path); 3] = [
            ("/etc/radar/cluster-tls", &tls_dir),
            ("/etc/radar/node.toml", &node_toml),
            ("/data", &data),
        ];
        std::fs::write(
            &node_toml,
            localize(&string(&config["data"]["node.toml"]), pod, &pods, &mounts),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_radar"));
        cmd.args(
            args(node_set)
                .iter()
                .map(|a| localize(a, pod, &pods, &mounts)),
        );
        for (key, value) in env_of(node_set, &docs, pod) {
            cmd.env(key, localize(&value, pod, &pods, &mounts));
        }
        nodes.push(Radar::launch(cmd, &pod_dir, pod_dir.join("node.log")));
    }

    // The init Job, retried as Kubernetes would until it succeeds.
    let init_args: Vec<String> = args(job)
        .iter()
        .map(|a| localize(a, &pods[0], &pods, &[]))
        .collect();
    let init_env = env_of(job, &docs, &pods[0]);
    eventually("the init job", Duration::from_secs(60), || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_radar"));
        cmd.args(&init_args).envs(init_env.iter().cloned());
        async move { cmd.output().ok()?.status.success().then_some(()) }
    })
    .await;

    let router_dir = dir.path().join(&router_pod.name);
    std::fs::create_dir_all(&router_dir).unwrap();
    let router_toml = router_dir.join("router.toml");
    let mounts: [(&str, &Path); 2] = [
        ("/etc/radar/cluster-tls", &tls_dir),
        ("/etc/radar/router.toml", &router_toml),
    ];
    std::fs::write(
        &router_toml,
        localize(
            &string(&config["data"]["router.toml"]),
            &router_pod,
            &pods,
            &mounts,
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_radar"));
    cmd.args(
        args(router)
            .iter()
            .map(|a| localize(a, &router_pod, &pods, &mounts)),
    );
    let router = Radar::launch(cmd, &router_dir, router_dir.join("router.log"));

    // A CPE informs through the router; its twin is readable from every node.
    let credentials = (
        secret(&docs, "r1-radar-cpe-credentials", "username"),
        secret(&docs, "r1-radar-cpe-credentials", "password"),
    );
    let _fleet = SimFleet::start(SimConfig {
        acs_url: format!("http://{}/", router.cwmp),
        acs_credentials: Some(credentials),
        count: 2,
        periodic_interval: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    for node in &nodes {
        eventually(
            "the twin through the rendered router",
            Duration::from_secs(60),
            || async {
                let answer = reqwest::Client::new()
                    .get(node.api_url(&device_path("os::00D09E-SIM000001")))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .ok()?;
                (answer.status() == 200).then_some(())
            },
        )
        .await;
    }
}
