//! Mutual TLS for cluster gRPC (issue 13), the callers' side: present this member's
//! certificate and check the server's against the cluster's CA. The nodes' server side is
//! `node/src/tls.rs` (`ReloadableTls::load_for_grpc`), which asks every caller for a
//! certificate of the same CA and reloads on SIGHUP.

use std::path::Path;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn identity(cert: &Path, key: &Path) -> Result<Identity, String> {
    Ok(Identity::from_pem(read(cert)?, read(key)?))
}

pub fn client(ca: &Path, cert: &Path, key: &Path) -> Result<ClientTlsConfig, String> {
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)?))
        .identity(identity(cert, key)?))
}
