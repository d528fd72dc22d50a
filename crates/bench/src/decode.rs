//! SOAP decode throughput over the real-device fixture corpus, against a plain UTF-8 validation
//! pass over the same bytes (the floor any decoder pays).

use std::time::{Duration, Instant};

pub fn run(seconds: f64) -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cwmp");
    let mut corpus = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("xml") {
            corpus.push(std::fs::read(path)?);
        }
    }
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    let budget = Duration::from_secs_f64(seconds);

    let measure = |f: &dyn Fn(&[u8]) -> bool| {
        let start = Instant::now();
        let mut passes = 0u64;
        while start.elapsed() < budget {
            for doc in &corpus {
                assert!(f(doc));
            }
            passes += 1;
        }
        (passes as f64 * bytes as f64) / start.elapsed().as_secs_f64() / 1e6
    };
    let decode = measure(&|doc| radar_cwmp::Envelope::decode(doc).is_ok());
    let utf8 = measure(&|doc| std::str::from_utf8(doc).is_ok());
    println!(
        "\n## SOAP decode ({} files, {:.1} KB)\n",
        corpus.len(),
        bytes as f64 / 1024.0
    );
    println!("| what | MB/s |\n| --- | ---: |");
    println!("| Envelope::decode (radar-cwmp) | {decode:.1} |");
    println!("| baseline: UTF-8 validation only | {utf8:.1} |");
    Ok(())
}
