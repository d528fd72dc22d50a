//! The Helm chart as tests see it: a real helm (`tools/helm.sh`), and what it renders.

use serde::Deserialize;
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn chart() -> PathBuf {
    repo().join("helm/radar")
}

/// A helm binary: the machine's, or one `tools/helm.sh` fetches once into `target/tools/`.
pub fn helm() -> PathBuf {
    let out = Command::new("bash")
        .arg(repo().join("tools/helm.sh"))
        .output()
        .expect("run tools/helm.sh");
    assert!(
        out.status.success(),
        "tools/helm.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// `helm template r1 --namespace carrier` with `values` (a file of the chart's `ci/`): the
/// rendered text.
pub fn template(helm: &Path, values: Option<&str>) -> String {
    let mut cmd = Command::new(helm);
    cmd.args(["template", "r1", "--namespace", "carrier"])
        .arg(chart());
    if let Some(values) = values {
        cmd.arg("-f").arg(chart().join("ci").join(values));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The rendered objects, one per document.
pub fn objects(rendered: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(rendered)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

pub fn string(v: &Value) -> String {
    v.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{v:?}"))
}

/// The first container's args of a workload.
pub fn args(workload: &Value) -> Vec<String> {
    workload["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(string)
        .collect()
}
