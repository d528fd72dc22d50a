//! The Helm chart (`helm/radar`, issue 14), rendered by a real helm (`tools/helm.sh` fetches one
//! when the machine has none): it lints strictly with the default and the HA values, and what
//! it renders agrees with itself and with the binary: probes hit ports the container listens
//! on, the replicas, the PodDisruptionBudget and the anti-affinity select the same pods, and
//! every config file it renders is one `radar print-config --check` accepts; every object
//! passes the Kubernetes schemas (`kubernetes-validate`, offline).

mod common;

use common::helm::{args, chart, helm, objects, of_kind, repo, string, template};
use serde_yaml::Value;
use std::path::Path;
use std::process::Command;

/// Rendered and validated: the objects.
fn render(helm: &Path, values: Option<&str>) -> Vec<Value> {
    let text = template(helm, values);
    validate_offline(&text);
    objects(&text)
}

/// Every rendered object against the Kubernetes schemas, offline (`kubernetes-validate`, PyPI;
/// `.ci/run` installs it). Custom resources (the ServiceMonitor) have no schema there and pass
/// with a warning.
fn validate_offline(manifests: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rendered.yaml");
    std::fs::write(&path, manifests).unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("kubernetes-validate: {e} (`python3 -m pip install kubernetes-validate`; .ci/run installs it)")
        });
    assert!(
        out.status.success(),
        "kubernetes-validate refused the rendered chart:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Each probe names a container port, and the container's args make radar listen there.
fn check_probes_and_listeners(workload: &Value) {
    let name = string(&workload["metadata"]["name"]);
    let container = &workload["spec"]["template"]["spec"]["containers"][0];
    let ports: Vec<(String, u64)> = container["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| (string(&p["name"]), p["containerPort"].as_u64().unwrap()))
        .collect();
    let args = args(workload);
    for (port_name, number) in &ports {
        let flag = format!("--{port_name}-listen=0.0.0.0:{number}");
        assert!(
            args.contains(&flag),
            "{name}: port {port_name} {number}, but args {args:?}"
        );
    }
    for probe in ["readinessProbe", "livenessProbe"] {
        let port = string(&container[probe]["httpGet"]["port"]);
        assert!(
            ports.iter().any(|(n, _)| *n == port),
            "{name}: {probe} on {port}, not a container port {ports:?}"
        );
    }
}

fn check_rendered(docs: &[Value], nodes: u64, shards: u64, replicas: u64) {
    let sets = of_kind(docs, "StatefulSet");
    assert_eq!(sets.len(), 1);
    let set = sets[0];
    assert_eq!(set["spec"]["replicas"].as_u64(), Some(nodes));
    check_probes_and_listeners(set);
    for deployment in of_kind(docs, "Deployment") {
        check_probes_and_listeners(deployment);
        assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2);
    }
    // The PDB, the anti-affinity and the Service select exactly the StatefulSet's pods.
    let selector = &set["spec"]["selector"]["matchLabels"];
    let pod_labels = set["spec"]["template"]["metadata"]["labels"]
        .as_mapping()
        .unwrap();
    for (k, v) in selector.as_mapping().unwrap() {
        assert_eq!(pod_labels.get(k), Some(v), "pods lack selector label {k:?}");
    }
    let pdb = of_kind(docs, "PodDisruptionBudget")[0];
    assert_eq!(pdb["spec"]["maxUnavailable"].as_u64(), Some(1));
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], selector);
    let anti = &set["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        ["preferredDuringSchedulingIgnoredDuringExecution"];
    for term in anti.as_sequence().unwrap() {
        assert_eq!(
            &term["podAffinityTerm"]["labelSelector"]["matchLabels"],
            selector
        );
    }
    // Seeds name every pod by its stable DNS name.
    let set_args = args(set);
    let seeds = set_args.iter().find(|a| a.starts_with("--seeds=")).unwrap();
    assert_eq!(seeds.split(',').count() as u64, nodes, "{seeds}");
    assert!(seeds.contains("r1-radar-node-0.r1-radar-node.carrier.svc.cluster.local:7560"));
    // The init job asks for what the nodes can hold.
    let job = of_kind(docs, "Job")[0];
    let job_args = args(job);
    assert!(
        job_args.contains(&format!("--shards={shards}")),
        "{job_args:?}"
    );
    assert!(
        job_args.contains(&format!("--replicas={replicas}")),
        "{job_args:?}"
    );
    assert!(replicas <= nodes);
    // Secrets come from Secrets: the bootstrap token and the cluster's TLS files.
    let secrets = of_kind(docs, "Secret");
    assert!(secrets.iter().any(|s| s["data"]["token"].is_string()));
    assert!(secrets.iter().any(|s| s["data"]["tls.crt"].is_string()));
    // Every rendered config file is one the binary accepts.
    let config = of_kind(docs, "ConfigMap")[0];
    let dir = tempfile::tempdir().unwrap();
    for (file, what) in [("node.toml", "node"), ("router.toml", "router")] {
        let path = dir.path().join(file);
        std::fs::write(&path, string(&config["data"][file])).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_radar"))
            .args(["print-config", what, "--check"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rendered {file} refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_chart_lints_and_renders_what_the_binary_accepts() {
    let helm = helm();
    for values in [None, Some("ha-values.yaml")] {
        let mut cmd = Command::new(&helm);
        cmd.args(["lint", "--strict"]).arg(chart());
        if let Some(values) = values {
            cmd.arg("-f").arg(chart().join("ci").join(values));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "helm lint --strict {values:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    check_rendered(&render(&helm, None), 3, 3, 3);
    check_rendered(&render(&helm, Some("ha-values.yaml")), 5, 10, 3);
}

/// The chart runs the image the repository's Dockerfile builds: its entrypoint is the radar
/// binary (the chart passes only subcommands and flags), it exposes every port a container of
/// the chart declares, and it runs as the user the chart's securityContext names.
#[test]
fn the_chart_matches_the_dockerfile() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let line = |instruction: &str| -> String {
        dockerfile
            .lines()
            .rev()
            .find(|l| l.starts_with(instruction))
            .unwrap_or_else(|| panic!("no {instruction} in the Dockerfile"))
            .trim_start_matches(instruction)
            .trim()
            .to_owned()
    };
    assert_eq!(line("ENTRYPOINT"), r#"["/usr/local/bin/radar"]"#);
    let exposed: Vec<u64> = line("EXPOSE")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let user: u64 = line("USER").split(':').next().unwrap().parse().unwrap();
    let docs = render(&helm(), None);
    for workload in of_kind(&docs, "StatefulSet")
        .into_iter()
        .chain(of_kind(&docs, "Deployment"))
    {
        let spec = &workload["spec"]["template"]["spec"];
        let container = &spec["containers"][0];
        for port in container["ports"].as_sequence().unwrap() {
            let number = port["containerPort"].as_u64().unwrap();
            assert!(exposed.contains(&number), "port {number} is not EXPOSEd");
        }
        assert!(
            container["command"].is_null(),
            "the chart must use the image's entrypoint"
        );
        let first = string(&container["args"][0]);
        assert!(["node", "router"].contains(&first.as_str()), "{first}");
        assert_eq!(
            container["securityContext"]["runAsUser"].as_u64(),
            Some(user)
        );
        assert_eq!(
            container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
            Some(true)
        );
    }
}

/// `print-config --check` itself: a good file passes, an unknown key fails and is named.
#[test]
fn print_config_check_names_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, "[cwmp]\nallow_anonymous = true\nmax_sesions = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_radar"))
        .args(["print-config", "node", "--check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_sesions"));
    std::fs::write(&path, "[cwmp]\nallow_anonymous = true\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_radar"))
        .args(["print-config", "node", "--check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
}
