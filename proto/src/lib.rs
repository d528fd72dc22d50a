//! radar-proto: the cluster's gRPC protocols (Raft transport, scatter-gather fleet queries,
//! admin), compiled with protox and tonic-prost-build. The protos arrive with the cluster work;
//! the crate exists now so the workspace layout of DESIGN §3 is in place.
