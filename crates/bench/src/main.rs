//! Radar benchmarks. Each prints a table with the baseline measured in the same run.
//!
//! - `b1`: periodic-inform sessions per second on one core (Inform → InformResponse, empty POST
//!   → 204, the twin write flushed before the InformResponse), against a bare hyper server
//!   answering the same two POSTs with canned bodies.
//! - `b6`: bytes per parameter of twin storage, in memory and on disk, for N devices of the
//!   simulator's model, against the raw `path=value` bytes.
//! - `b7`: fleet query latency over N small twins in 3 shards, indexed and full scan, against
//!   a single-threaded column scan.
//! - `b8`: committed updates per second through a 3-replica shard, Raft log on sled and on
//!   redb, batch sizes 1…256, against raw write+fdatasync; disk space after N updates.
//! - `b9`: failover time, kill -9 of a shard leader's node to the first commit on the new
//!   leader, three `radar node` processes (`--radar` names the binary).
//! - `b10`: twins beyond memory: N cold twins in sled (`b10-load` writes them in a child
//!   process), RSS per cold twin, indexed counts, group-bys and first pages, and a scan from
//!   disk against raw sled iteration.
//! - `b10-scatter`: the same kind of queries end to end, through a node's API over three
//!   `radar node` processes (gRPC scatter), on gateway twins bootstrapped through the ACS.
//! - `decode`: SOAP decode throughput over the fixture corpus.
//! - `b5`: memory per idle connected USP agent (10k, 50k, 100k by default), against bare tokio
//!   TCP tasks. `b5-server` is its server-side child process.
//! - `b4`: USP ValueChange Notifies per second applied durably, server on one core, against a
//!   raw WebSocket echo of the same records.
//!
//! Usage: `cargo run --release -p radar-bench -- [b1|b6|decode|all] [--devices N] [--seconds S]`

mod b1;
mod b10;
mod b10_scatter;
mod b4;
mod b5;
mod b6;
mod b7;
mod b8;
mod b9;
mod decode;
mod nodes;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

/// mimalloc: glibc malloc's arena locks showed up as contention in the B1 profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("all");
    let seconds: f64 = arg(&args, "--seconds", 10.0);
    match which {
        "b1" => b1::run(
            arg(&args, "--devices", 500),
            arg(&args, "--concurrency", 64),
            seconds,
            args.windows(2)
                .find(|w| w[0] == "--memory-budget")
                .map(|w| w[1].parse::<radar_node::byte_size::ByteSize>())
                .transpose()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .map(|b| b.0),
        )?,
        "b6" => b6::run(arg(&args, "--devices", 10_000))?,
        "b8" => tokio::runtime::Runtime::new()?.block_on(b8::run(
            arg(&args, "--seconds", 3.0),
            arg(&args, "--updates", 1_000_000),
        ))?,
        "b9" => {
            let radar: String = arg(&args, "--radar", "target/release/radar".to_string());
            // `--raft-timing HEARTBEAT/MIN/MAX` in milliseconds (default 200/1000/2000).
            let timing: String = arg(&args, "--raft-timing", "200/1000/2000".to_string());
            let timing = b9::RaftTiming::parse(&timing)?;
            tokio::runtime::Runtime::new()?.block_on(b9::run(
                &radar,
                arg(&args, "--trials", 20),
                timing,
            ))?
        }
        "b7" => b7::run(
            arg(&args, "--devices", 1_000_000),
            arg(&args, "--rounds", 20),
        )?,
        "b10" => b10::run(
            arg(&args, "--devices", 1_000_000),
            arg(&args, "--extra", 0),
            arg(&args, "--rounds", 20),
        )?,
        "b10-scatter" => {
            let radar: String = arg(&args, "--radar", "target/release/radar".to_string());
            tokio::runtime::Runtime::new()?.block_on(b10_scatter::run(
                &radar,
                arg(&args, "--devices", 100_000),
                arg(&args, "--rounds", 200),
                &arg(&args, "--memory-budget", "64MiB".to_string()),
            ))?
        }
        "b10-load" => {
            let dir: String = arg(&args, "--dir", String::new());
            b10::load(
                arg(&args, "--devices", 1_000_000),
                arg(&args, "--extra", 0),
                std::path::Path::new(&dir),
            )?
        }
        "b5" => {
            let counts: String = arg(&args, "--counts", "10000,50000,100000".to_string());
            let counts: Vec<usize> = counts
                .split(',')
                .filter_map(|c| c.trim().parse().ok())
                .collect();
            b5::run(&counts)?
        }
        "b5-server" => b5::serve(&args[1..])?,
        "b4" => b4::run(
            arg(&args, "--agents", 512),
            arg(&args, "--window", 8),
            seconds,
        )?,
        "decode" => decode::run(seconds.min(5.0))?,
        "all" => {
            decode::run(3.0)?;
            b6::run(arg(&args, "--b6-devices", 10_000))?;
            b1::run(
                arg(&args, "--devices", 500),
                arg(&args, "--concurrency", 64),
                seconds,
                None,
            )?;
        }
        other => {
            anyhow::bail!("unknown benchmark {other:?}: expected b1, b4, b5, b6, b7, b8, b9, b10, decode or all")
        }
    }
    Ok(())
}
