//! Drain benchmark: how fast one shard's backlog reaches the table through the event
//! source mapping and the built-in function (batch size 100), without HTTP.
//!
//! Fills example-stream with N reference records, then starts the mapping from
//! TRIM_HORIZON and times it until the checkpoint reaches the tip.
//!
//! `cargo run --release --example drain_bench -- [records] [batch size] [dir]`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use spillway::config::Config;
use spillway::function::Functions;
use spillway::mapping::Mappings;
use spillway::storage::fjall_engine::FjallStore;
use spillway::storage::{Store, StreamStore};
use spillway::stream::Streams;
use spillway::table::Tables;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(200_000), |a| a.parse())?;
    let batch: u32 = args.get(2).map_or(Ok(100), |a| a.parse())?;
    let base = args
        .get(3)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base)?;
    let text = spillway::config::DEFAULT_TOML
        .replace(
            "StartingPosition = \"LATEST\"",
            "StartingPosition = \"TRIM_HORIZON\"",
        )
        .replace("BatchSize = 100", &format!("BatchSize = {batch}"));
    let config = Config::parse(&text, std::path::Path::new("bench.toml"))?;
    let store: Arc<dyn Store> = Arc::new(FjallStore::open(dir.path())?);
    let streams = Arc::new(Streams::open(
        Arc::clone(&store) as Arc<dyn StreamStore>,
        &config.streams_settings(),
    )?);
    let tables = Arc::new(Tables::open(Arc::clone(&store), &config.tables_settings())?);

    // Fill: 200 concurrent appenders, reference bodies.
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (streams, next) = (Arc::clone(&streams), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let body = format!("{{\"index\": {i}, \"message\": \"Test message {i}\"}}");
                streams
                    .append("example-stream", format!("pk-{i}"), None, Bytes::from(body))
                    .await
                    .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    println!(
        "filled {n} records in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let functions = Functions::from_config(&config, &tables, config.server.listen);
    let started = Instant::now();
    let mappings = Mappings::start(
        &config,
        Arc::clone(&store),
        Arc::clone(&streams),
        Arc::clone(&tables),
        Arc::new(functions),
    )?;
    let mapping = Arc::clone(&mappings.list()[0]);
    let shard = Arc::clone(&mapping.stream.shards[0]);
    let tip = shard.tip().next_counter;
    let mut curve = Vec::new();
    loop {
        let cp = mapping.checkpoint(&shard)?;
        curve.push((started.elapsed().as_secs_f64(), cp));
        if cp >= tip {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    mappings.stop();
    let items = tables.count("example-table")?;
    println!(
        "drained {tip} records into {items} items in {secs:.2} s: {:.0} items/s (batch size {batch}, {} invocations)",
        tip as f64 / secs,
        mapping.stats.invocations.load(Ordering::Relaxed)
    );
    println!("drain curve (seconds, records processed):");
    for (t, cp) in curve.iter().step_by((curve.len() / 10).max(1)) {
        println!("  {t:6.2}  {cp}");
    }
    assert_eq!(items as u64, tip, "every record is one item");
    streams.shutdown();
    Ok(())
}
