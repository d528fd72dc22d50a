//! Mutual TLS for cluster gRPC (issue 13): the server asks every caller for a certificate
//! signed by the cluster's CA, and callers present theirs and check the server's against the
//! same CA. A node, a router or anyone else without one is refused at the handshake.

use std::path::Path;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn identity(cert: &Path, key: &Path) -> Result<Identity, String> {
    Ok(Identity::from_pem(read(cert)?, read(key)?))
}

pub fn server(ca: &Path, cert: &Path, key: &Path) -> Result<ServerTlsConfig, String> {
    Ok(ServerTlsConfig::new()
        .identity(identity(cert, key)?)
        .client_ca_root(Certificate::from_pem(read(ca)?)))
}

pub fn client(ca: &Path, cert: &Path, key: &Path) -> Result<ClientTlsConfig, String> {
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)?))
        .identity(identity(cert, key)?))
}
