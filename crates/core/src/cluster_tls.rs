//! Where a cluster member's mutual-TLS files are (issue 13): nodes and routers talk gRPC to
//! each other only with a certificate signed by the cluster's CA.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTls {
    /// PEM file of the cluster's CA: peers must present a certificate it signed.
    pub ca: PathBuf,
    /// This member's certificate chain (PEM), naming the host peers reach it by.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}
