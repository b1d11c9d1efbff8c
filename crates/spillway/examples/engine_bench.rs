//! Raw engine benchmark: appends through the group committer into the embedded engine,
//! with no HTTP in between. Reports appends/s, records per fsync and the data dir's
//! fdatasync latency (which bounds a single writer at 1/latency appends per second).
//!
//! `cargo run --release --example engine_bench -- [writers] [seconds] [fsync|os] [dir]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use spillway::config::Config;
use spillway::storage::fjall_engine::FjallStore;
use spillway::stream::Streams;

/// Median fdatasync latency of a small append to a file in `dir`.
fn fdatasync_latency(dir: &std::path::Path) -> Duration {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    let mut samples = Vec::new();
    for _ in 0..200 {
        f.write_all(&[7u8; 100]).expect("write");
        let t = Instant::now();
        f.sync_data().expect("fdatasync");
        samples.push(t.elapsed());
    }
    let _ = std::fs::remove_file(path);
    samples.sort();
    samples[samples.len() / 2]
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let writers: usize = args.get(1).map_or(Ok(200), |a| a.parse())?;
    let seconds: u64 = args.get(2).map_or(Ok(5), |a| a.parse())?;
    let durability = args.get(3).cloned().unwrap_or_else(|| "fsync".into());
    let base = args
        .get(4)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base)?;

    let latency = fdatasync_latency(dir.path());
    let text = spillway::config::DEFAULT_TOML.replace(
        "durability = \"fsync\"",
        &format!("durability = \"{durability}\""),
    );
    let config = Config::parse(&text, std::path::Path::new("bench.toml"))?;
    let store = Arc::new(FjallStore::open(&dir.path().join("data"))?);
    let streams = Arc::new(Streams::open(store, &config.streams_settings())?);

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let payload = Bytes::from(vec![b'x'; 100]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (streams, stop, done, payload) = (
            Arc::clone(&streams),
            Arc::clone(&stop),
            Arc::clone(&done),
            payload.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let key = format!("writer-{w}");
            while !stop.load(Ordering::Relaxed) {
                if streams
                    .append("example-stream", key.clone(), None, payload.clone())
                    .await
                    .is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let appended = done.load(Ordering::Relaxed);
    let stats = streams.commit_stats();
    let commits = stats.commits.load(Ordering::Relaxed).max(1);
    let records = stats.records.load(Ordering::Relaxed);
    println!(
        "engine_bench durability={durability} writers={writers} seconds={elapsed:.1}\n  \
         appends/s {:.0}\n  commits/s {:.0}\n  records per commit {:.1}\n  \
         fdatasync p50 {:.2} ms (single-writer ceiling {:.0}/s, {writers}-writer ceiling {:.0}/s)",
        appended as f64 / elapsed,
        commits as f64 / elapsed,
        records as f64 / commits as f64,
        latency.as_secs_f64() * 1e3,
        1.0 / latency.as_secs_f64(),
        writers as f64 / latency.as_secs_f64(),
    );
    let s = Arc::clone(&streams);
    tokio::task::spawn_blocking(move || s.shutdown()).await?;
    Ok(())
}
