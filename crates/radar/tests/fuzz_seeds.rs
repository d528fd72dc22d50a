//! The fuzz targets' checks on stable (issue 13): every seed in `fuzz/seeds/` (deep and long
//! inputs, made by `fuzz/make_seeds.py`) and every real-device fixture goes through the check of
//! its target, each on a thread with a tokio worker's stack (2 MiB) and a deadline, so a decoder
//! that recurses without bound or loops fails here, in CI, even where nightly is missing.

#[path = "../../../fuzz/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};
use std::time::Duration;

type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("soap_decode", checks::soap_decode::check),
    ("acs_session", checks::acs_session::check),
    ("query_parse", checks::query_parse::check),
    ("usp_record", checks::usp_record::check),
    ("usp_session", checks::usp_session::check),
    ("stomp_decode", checks::stomp_decode::check),
    ("stun_decode", checks::stun_decode::check),
    ("udp_cr_decode", checks::udp_cr_decode::check),
    ("xmpp_stream", checks::xmpp_stream::check),
];

/// A tokio worker's default stack: where the decoders run in the product.
const WORKER_STACK: usize = 2 * 1024 * 1024;
const DEADLINE: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on `input` on its own thread; a panic (a failed check, a stack overflow
/// aborts the whole test binary) or a hang fails the test, naming the input.
fn run(target: &str, name: &str, check: Check, input: Vec<u8>) {
    let (done, finished) = std::sync::mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(format!("{target}:{name}"))
        .stack_size(WORKER_STACK)
        .spawn(move || {
            check(&input);
            let _ = done.send(());
        })
        .unwrap();
    match finished.recv_timeout(DEADLINE) {
        Ok(()) => worker.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{target} failed on {name}: {:?}", worker.join().err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{target} took over {DEADLINE:?} on {name}")
        }
    }
}

#[test]
fn every_seed_passes_its_targets_check_on_a_worker_stack() {
    for (target, check) in TARGETS {
        let seeds = files(&repo().join("fuzz/seeds").join(target));
        assert!(
            seeds.len() >= 2,
            "{target} has no deep and long seeds: run fuzz/make_seeds.py"
        );
        for seed in seeds {
            let name = seed.file_name().unwrap().to_string_lossy().into_owned();
            run(target, &name, *check, std::fs::read(&seed).unwrap());
        }
    }
}

#[test]
fn real_device_messages_pass_the_cwmp_checks() {
    let fixtures: Vec<PathBuf> = files(&repo().join("tests/fixtures/cwmp"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    assert!(fixtures.len() > 20, "{} fixtures", fixtures.len());
    for fixture in fixtures {
        let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&fixture).unwrap();
        run(
            "soap_decode",
            &name,
            checks::soap_decode::check,
            bytes.clone(),
        );
        run("acs_session", &name, checks::acs_session::check, bytes);
    }
}
