//! radar-proto: the cluster's gRPC protocols, compiled from `protos/` with protox and
//! tonic-prost-build.
//!
//! - [`raft`]: the multi-raft transport (openraft RPCs addressed to a group).
//! - [`fleet`]: the shard half of scatter-gather fleet queries.
//! - [`cluster`]: membership, layout, status and cross-node forwarding.
//! - [`tls`]: mutual TLS for all of them.

pub mod tls;

pub mod cluster {
    tonic::include_proto!("radar.cluster.v1");
}

pub mod fleet {
    tonic::include_proto!("radar.fleet.v1");
}

pub mod raft {
    tonic::include_proto!("radar.raft.v1");
}
