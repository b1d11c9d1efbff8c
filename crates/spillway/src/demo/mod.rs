//! `spillway demo`: the reference experiment as one command, with its result made obvious.
//!
//! Act 1 fires the same spike at a direct route (API Gateway -> Lambda, what the pattern
//! avoids) and at the buffered route (API Gateway -> Kinesis -> Lambda), with the same
//! function concurrency limit for both, and compares what was accepted, throttled and
//! landed. Act 2 turns on Kinesis' write limits and sends more than one shard takes,
//! into 1 shard and then into 4. Everything runs in-process on a temporary data dir; the
//! result is a printed table and a self-contained HTML report.

pub mod chart;
pub mod report;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, RouteConfig};
use crate::load::{self, LoadOptions, LoadReport, Shape, VerifyOptions};
use crate::server::{self, ServeOverrides};

/// Knobs of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Requests in the act 1 spike.
    pub requests: u64,
    /// Concurrent connections of the spike.
    pub concurrency: usize,
    /// Reserved concurrency of the function, on both routes.
    pub function_concurrency: u32,
    /// The function's per-invocation delay (a slow database), ms.
    pub delay_ms: u64,
    /// Act 2: requests per second into the stream.
    pub limits_rate: f64,
    /// Act 2: seconds at that rate.
    pub limits_seconds: f64,
    /// Where to write the HTML report.
    pub out: PathBuf,
    pub progress: bool,
}

/// One route under the spike.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Act {
    pub label: String,
    pub load: LoadReport,
}

impl Act {
    pub fn accepted(&self) -> u64 {
        self.load
            .status
            .iter()
            .filter(|(k, _)| (200..300).contains(*k))
            .map(|(_, v)| v)
            .sum()
    }
    pub fn throttled(&self) -> u64 {
        self.load.status.get(&429).copied().unwrap_or(0)
    }
    /// Stream throttling (400 ProvisionedThroughputExceededException) in act 2.
    pub fn limited(&self) -> u64 {
        self.load.status.get(&400).copied().unwrap_or(0)
    }
    pub fn failed(&self) -> u64 {
        let other: u64 = self
            .load
            .status
            .iter()
            .filter(|(k, _)| !(200..300).contains(*k) && **k != 429 && **k != 400)
            .map(|(_, v)| v)
            .sum();
        other + self.load.errors.values().sum::<u64>()
    }
    pub fn landed(&self) -> u64 {
        self.load.verify.as_ref().map_or(0, |v| v.landed)
    }
    pub fn iterator_age_peak_ms(&self) -> u64 {
        self.load
            .verify
            .as_ref()
            .map_or(0, |v| v.iterator_age_peak_ms)
    }
    pub fn drain_seconds(&self) -> f64 {
        self.load
            .verify
            .as_ref()
            .map_or(0.0, |v| v.end_to_end_lag_seconds)
    }
}

/// Everything the demo measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoReport {
    pub requests: u64,
    pub concurrency: usize,
    pub function_concurrency: u32,
    pub delay_ms: u64,
    pub direct: Act,
    pub buffered: Act,
    pub one_shard: Act,
    pub four_shards: Act,
    /// Act 1's stream shards and its mapping's ParallelizationFactor: their product is
    /// how many invocations drain the stream at once, whatever the function's reserved
    /// concurrency.
    #[serde(default)]
    pub shards: u32,
    #[serde(default)]
    pub parallelization_factor: u32,
    /// Act 1's mapping BatchSize.
    #[serde(default)]
    pub batch_size: u32,
}

impl DemoReport {
    /// Invocations draining the stream at once in Act 1.
    pub fn drain_lanes(&self) -> u32 {
        self.shards.max(1) * self.parallelization_factor.max(1)
    }
}

fn demo_config(dir: &std::path::Path, name: &str, edit: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    c.server.data_dir = dir.join(name);
    c.server.listen = "127.0.0.1:0".parse().expect("valid address");
    edit(&mut c);
    c
}

#[allow(clippy::too_many_arguments)]
async fn fire(
    base: &str,
    path: &str,
    label: &str,
    shape: Shape,
    total: u64,
    concurrency: usize,
    progress: bool,
    bucket: Duration,
) -> anyhow::Result<Act> {
    if progress {
        eprintln!("  {label}: {total} requests to {path}");
    }
    let report = load::run(LoadOptions {
        url: format!("{base}{path}"),
        total,
        concurrency,
        shape,
        template: load::REFERENCE_TEMPLATE.to_owned(),
        headers: Vec::new(),
        timeout: Duration::from_secs(30),
        progress,
        verify: Some(VerifyOptions {
            endpoint: base.to_owned(),
            table: "example-table".into(),
            timeout: Duration::from_secs(300),
        }),
        bucket,
    })
    .await?;
    Ok(Act {
        label: label.to_owned(),
        load: report,
    })
}

/// Runs both acts and writes the report.
pub async fn run(opts: &DemoOptions) -> anyhow::Result<DemoReport> {
    let dir = tempfile::tempdir()?;

    // Act 1: direct versus buffered, same function, same concurrency limit.
    let config = demo_config(dir.path(), "act1", |c| {
        for f in &mut c.functions {
            f.reserved_concurrency = opts.function_concurrency;
            f.delay_ms = opts.delay_ms;
        }
        c.routes.push(RouteConfig {
            method: "POST".into(),
            path: "/direct".into(),
            stream: None,
            function: Some("kinesis-to-dynamo".into()),
            partition_key: Default::default(),
            api_key_required: false,
        });
    });
    if opts.progress {
        eprintln!(
            "act 1: a spike of {} requests at {} connections; function concurrency {}, {} ms per invocation",
            opts.requests, opts.concurrency, opts.function_concurrency, opts.delay_ms
        );
    }
    let shards = config.streams.first().map_or(1, |s| s.shard_count);
    let (parallelization_factor, batch_size) = config
        .mappings
        .first()
        .map_or((1, 100), |m| (m.parallelization_factor, m.batch_size));
    let running = server::start(config, ServeOverrides::default()).await?;
    let base = format!("http://{}", running.addr);
    let direct = fire(
        &base,
        "/direct",
        "direct (API Gateway -> Lambda)",
        Shape::Unpaced,
        opts.requests,
        opts.concurrency,
        opts.progress,
        Duration::from_millis(10),
    )
    .await?;
    let buffered = fire(
        &base,
        "/dev",
        "buffered (API Gateway -> Kinesis -> Lambda)",
        Shape::Unpaced,
        opts.requests,
        opts.concurrency,
        opts.progress,
        Duration::from_millis(10),
    )
    .await?;
    running.stop().await?;

    // Act 2: the stream's own limits, one shard against four.
    let total = (opts.limits_rate * opts.limits_seconds).round() as u64;
    if opts.progress {
        eprintln!(
            "act 2: enforce_limits on, {total} requests at {:.0}/s (a shard takes 1,000/s)",
            opts.limits_rate
        );
    }
    let mut act2 = Vec::new();
    for shards in [1u32, 4] {
        let config = demo_config(dir.path(), &format!("act2-{shards}"), |c| {
            for s in &mut c.streams {
                s.enforce_limits = true;
                s.shard_count = shards;
            }
        });
        let running = server::start(config, ServeOverrides::default()).await?;
        let base = format!("http://{}", running.addr);
        let label = format!("{shards} shard{}", if shards == 1 { "" } else { "s" });
        act2.push(
            fire(
                &base,
                "/dev",
                &label,
                Shape::Constant {
                    rate: opts.limits_rate,
                },
                total,
                opts.concurrency,
                opts.progress,
                Duration::from_millis(100),
            )
            .await?,
        );
        running.stop().await?;
    }
    let four_shards = act2.pop().expect("two runs");
    let one_shard = act2.pop().expect("two runs");
    let report = DemoReport {
        requests: opts.requests,
        concurrency: opts.concurrency,
        function_concurrency: opts.function_concurrency,
        delay_ms: opts.delay_ms,
        direct,
        buffered,
        one_shard,
        four_shards,
        shards,
        parallelization_factor,
        batch_size,
    };
    std::fs::write(&opts.out, report::html(&report))?;
    Ok(report)
}

impl DemoReport {
    /// The side-by-side tables, for the terminal.
    pub fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Act 1: a spike of {} requests at {} connections; the function has reserved concurrency {} and takes {} ms per invocation.",
            self.requests, self.concurrency, self.function_concurrency, self.delay_ms
        );
        let lanes = self.drain_lanes();
        let _ = writeln!(
            out,
            "The stream is drained by shards x ParallelizationFactor = {} x {} = {lanes} invocation{} at a time (of up to {} records each), whatever the reserved concurrency.\n",
            self.shards.max(1),
            self.parallelization_factor.max(1),
            if lanes == 1 { "" } else { "s" },
            self.batch_size,
        );
        let (d, b) = (&self.direct, &self.buffered);
        let _ = writeln!(
            out,
            "| | direct: API Gateway -> Lambda | buffered: API Gateway -> Kinesis -> Lambda |"
        );
        let _ = writeln!(out, "|---|---|---|");
        let _ = writeln!(
            out,
            "| accepted (2xx) | {} | {} |",
            d.accepted(),
            b.accepted()
        );
        let _ = writeln!(
            out,
            "| throttled (429) | {} | {} |",
            d.throttled(),
            b.throttled()
        );
        let _ = writeln!(out, "| failed | {} | {} |", d.failed(), b.failed());
        let _ = writeln!(out, "| items landed | {} | {} |", d.landed(), b.landed());
        let _ = writeln!(
            out,
            "| peak iterator age | - | {} ms |",
            b.iterator_age_peak_ms()
        );
        // The direct route has nothing to drain: what it refused is gone.
        let _ = writeln!(
            out,
            "| time to drain (last 200 -> all in table) | - | {:.2} s |",
            b.drain_seconds()
        );
        let _ = writeln!(
            out,
            "\nAct 2: enforce_limits on, {} requests at {:.0}/s; one shard takes 1,000 records/s.\n",
            self.one_shard.load.requests,
            self.one_shard.load.requests as f64 / self.one_shard.load.elapsed_seconds.max(1e-9)
        );
        let _ = writeln!(out, "| | 1 shard | 4 shards |");
        let _ = writeln!(out, "|---|---|---|");
        let (o, f) = (&self.one_shard, &self.four_shards);
        let _ = writeln!(
            out,
            "| accepted (2xx) | {} | {} |",
            o.accepted(),
            f.accepted()
        );
        let _ = writeln!(
            out,
            "| throttled by the stream (400 ProvisionedThroughputExceededException) | {} | {} |",
            o.limited(),
            f.limited()
        );
        let _ = writeln!(out, "| items landed | {} | {} |", o.landed(), f.landed());
        out
    }
}
