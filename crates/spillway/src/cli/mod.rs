//! The command line: `serve`, `config`, and the inspection commands.

pub mod inspect;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate as spillway;

/// spillway: API Gateway -> Kinesis -> Lambda -> DynamoDB, the buffer-the-spike pipeline,
/// as one binary.
#[derive(Debug, Parser)]
#[command(name = "spillway", version, about)]
pub struct Cli {
    /// Log level filter (e.g. info, debug, spillway=trace); RUST_LOG wins when set.
    /// Default: info for `serve`, warn for the other commands.
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    /// Log lines as text (for people) or json (one object per line, for log shippers).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline: with no --config, the reference setup (POST /dev -> example-stream).
    Serve {
        /// TOML config file; `spillway config` prints the default with every key explained.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Directory for all durable state (overrides server.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on (overrides server.listen); port 0 picks a free port.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// One log line per request: api, action, status, duration, request id (as
        /// `[server] access_log = true`).
        #[arg(long)]
        access_log: bool,
        /// Also serve HTTPS on this address (overrides server.tls_listen); needs
        /// --tls-cert and --tls-key.
        #[arg(long, value_name = "ADDR")]
        tls_listen: Option<SocketAddr>,
        /// PEM certificate chain of the HTTPS listener (overrides server.tls_cert).
        #[arg(long, value_name = "PATH")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of the HTTPS listener (overrides server.tls_key).
        #[arg(long, value_name = "PATH")]
        tls_key: Option<PathBuf>,
        /// Engine of the streams: `fjall://PATH` (`fjall://`: the data dir),
        /// `memory://`, `kinesis://REGION` (AWS) or `kinesis+http(s)://HOST:PORT` (a
        /// worker over a shared engine) (overrides storage.stream_engine).
        #[arg(long, value_name = "URL")]
        stream_engine: Option<String>,
        /// Engine of the tables (overrides storage.table_engine): the streams' engine
        /// when embedded; `dynamodb://REGION`, `dynamodb+http(s)://HOST:PORT` or
        /// `postgres://...` beside remote streams.
        #[arg(long, value_name = "URL")]
        table_engine: Option<String>,
        /// This worker's name in the lease table, with remote engines (overrides
        /// workers.worker_id).
        #[arg(long, value_name = "NAME")]
        worker_id: Option<String>,
        /// Where a worker sends on-failure records for SQS destinations:
        /// `sqs://REGION` or `sqs+http(s)://HOST:PORT` (overrides workers.queue_engine).
        #[arg(long, value_name = "URL")]
        queue_engine: Option<String>,
    },
    /// Print the full default config, with a comment on every key.
    Config,
    /// Show a running server's streams: shards, hash ranges, record counts and the last
    /// records. Without NAME, lists every stream.
    Stream {
        /// Stream to show.
        name: Option<String>,
        /// How many of the newest records to show per shard.
        #[arg(long, default_value_t = 5)]
        last: usize,
        /// The running server.
        #[arg(
            long,
            env = "SPILLWAY_ENDPOINT",
            default_value = "http://127.0.0.1:4566"
        )]
        endpoint: String,
    },
    /// The reference experiment in one command: the same spike at a direct route and at
    /// the buffered route, then the stream's own limits with 1 and 4 shards. Prints a
    /// side-by-side table and writes a self-contained HTML report with charts.
    Demo {
        /// Requests in the spike.
        #[arg(long, default_value_t = 2000)]
        requests: u64,
        /// Concurrent connections of the spike.
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        /// The function's reserved concurrency, on both routes.
        #[arg(long, default_value_t = 5)]
        function_concurrency: u32,
        /// The function's per-invocation delay in ms (a slow database).
        #[arg(long, default_value_t = 100)]
        delay_ms: u64,
        /// Act 2: requests per second into the stream (one shard takes 1,000).
        #[arg(long, default_value_t = 2500.0)]
        limits_rate: f64,
        /// Act 2: seconds at that rate.
        #[arg(long, default_value_t = 2.0)]
        limits_seconds: f64,
        /// Where to write the HTML report.
        #[arg(long, default_value = "spillway-demo.html")]
        out: PathBuf,
        /// Print the figures as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Fire the reference load at a route: POSTs of a payload template, on a load shape,
    /// with a live progress bar, then status codes, errors and latency percentiles.
    Load {
        /// Target URL.
        #[arg(long, default_value = "http://127.0.0.1:4566/dev")]
        url: String,
        /// Total requests.
        #[arg(short = 'n', long, default_value_t = 1000)]
        requests: u64,
        /// Concurrent connections (keep-alive).
        #[arg(short, long, default_value_t = 50)]
        concurrency: usize,
        /// Target rate in requests/s for a constant shape (default: as fast as possible).
        #[arg(long)]
        rate: Option<f64>,
        /// Load shape: unpaced, constant:RATE, ramp:FROM:TO, step:FROM:STEP:SECONDS,
        /// spike:BASE:BURST:AT_SECONDS (a burst of BURST requests at AT on top of BASE/s).
        #[arg(long)]
        shape: Option<String>,
        /// Extra request header, "Name: value" (repeatable), e.g. to drive the Kinesis API.
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// Payload template; `{i}` is the request index.
        #[arg(long, default_value = spillway::load::REFERENCE_TEMPLATE)]
        payload: String,
        /// Per-request timeout, seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Afterwards, wait for the pipeline to drain and check the table holds every
        /// acknowledged record once.
        #[arg(long)]
        verify: bool,
        /// Table to verify.
        #[arg(long, default_value = "example-table")]
        table: String,
        /// The spillway server to verify against (default: the target URL's origin).
        #[arg(long)]
        endpoint: Option<String>,
        /// Give up waiting for the drain after this many seconds.
        #[arg(long, default_value_t = 120.0)]
        verify_timeout: f64,
        /// Print the report as one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Show a running server's tables: item counts, and the items of one table.
    Table {
        /// Table to show; without it, every table with its item count.
        name: Option<String>,
        /// How many items to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// The running server.
        #[arg(
            long,
            env = "SPILLWAY_ENDPOINT",
            default_value = "http://127.0.0.1:4566"
        )]
        endpoint: String,
    },
    /// Show a running server's event source mappings: checkpoints, lag and counters.
    Mappings {
        /// The running server.
        #[arg(
            long,
            env = "SPILLWAY_ENDPOINT",
            default_value = "http://127.0.0.1:4566"
        )]
        endpoint: String,
    },
    /// List what the control-plane APIs created (IAM roles and policies, Lambda functions
    /// and mappings, REST APIs, queues, log groups, alarms).
    Resources {
        /// The running server.
        #[arg(
            long,
            env = "SPILLWAY_ENDPOINT",
            default_value = "http://127.0.0.1:4566"
        )]
        endpoint: String,
    },
    /// List dead letters: batches a mapping gave up on (Lambda's on-failure records).
    DeadLetters {
        /// Print the records as JSON, one per line.
        #[arg(long)]
        json: bool,
        /// The running server.
        #[arg(
            long,
            env = "SPILLWAY_ENDPOINT",
            default_value = "http://127.0.0.1:4566"
        )]
        endpoint: String,
    },
}

/// Sets up `tracing` from RUST_LOG, or from `--log-level` when RUST_LOG is unset.
/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // The storage engine's own info lines are noise to a spillway user.
        tracing_subscriber::EnvFilter::new(format!("{level},fjall=warn,lsm_tree=warn"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr);
    match format {
        LogFormat::Json => builder.json().init(),
        // Colour codes only where a person reads them; log files stay plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// Log lines that could not be written (stderr on a full disk, a closed pipe).
pub static LOST_LOG_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// stderr that drops what it cannot write instead of failing. The logger's own fallback
/// on a failed write is `eprintln!`, which panics, and a panic that cannot be logged
/// aborts: with stderr redirected to a file on a full disk, one log line would take the
/// whole server down.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::io::stderr().write(buf) {
            Ok(n) => Ok(n),
            Err(_) => {
                LOST_LOG_WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
