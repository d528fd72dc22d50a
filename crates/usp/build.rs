//! Compiles the Broadband Forum USP 1.4 protobufs with protox (pure Rust: no `protoc` needed on
//! a fresh machine) and generates prost types.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["protos/usp-record-1-4.proto", "protos/usp-msg-1-4.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let descriptors = protox::compile(protos, ["protos"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
