//! `spillway load`: the reference load script done properly.
//!
//! Workers each hold one keep-alive HTTP/1.1 connection and send POSTs of a payload
//! template (`{i}` is the request index) on a schedule ([`shape`]). Latencies go into
//! an HDR histogram; statuses and errors are counted; a per-second timeline is kept for
//! charts. `--verify` then waits until the pipeline has drained and checks the table
//! ([`verify`]).

pub mod shape;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use serde::{Deserialize, Serialize};

pub use self::shape::Shape;
pub use self::verify::{VerifyOptions, VerifyReport};

/// The reference load script's payload.
pub const REFERENCE_TEMPLATE: &str = r#"{"index": {i}, "message": "Test message {i}"}"#;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub url: String,
    pub total: u64,
    pub concurrency: usize,
    pub shape: Shape,
    pub template: String,
    /// Extra request headers (a Content-Type here replaces application/json).
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub progress: bool,
    pub verify: Option<VerifyOptions>,
    /// Width of the timeline's buckets.
    pub bucket: Duration,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// One bucket of the run's timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Buckets since the start, at the bucket's start.
    pub t: f64,
    /// Answers by status code.
    pub status: BTreeMap<u16, u64>,
    /// Requests that got no answer.
    pub errors: u64,
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadReport {
    pub url: String,
    pub requests: u64,
    pub concurrency: usize,
    /// Answers by status code; sums with `errors` to `requests`.
    pub status: BTreeMap<u16, u64>,
    /// Requests without an answer, by kind: timeout, connect, io.
    pub errors: BTreeMap<String, u64>,
    pub elapsed_seconds: f64,
    pub throughput_rps: f64,
    pub latency_ms: Latency,
    /// Answers per bucket (`timeline_bucket_seconds` wide).
    pub timeline: Vec<Bucket>,
    pub timeline_bucket_seconds: f64,
    /// Buckets from the start to the last 200.
    pub last_ack_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid target URL `{0}`: use http://HOST:PORT/PATH")]
    Url(String),
    #[error("cannot reach {0}: {1}")]
    Connect(String, String),
    #[error("verification: {0}")]
    Verify(String),
    #[error("invalid header `{0}`: use \"Name: value\"")]
    Header(String),
}

struct Target {
    authority: String,
    path: String,
    headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
}

fn parse_url(url: &str, headers: &[(String, String)]) -> Result<Target, LoadError> {
    let mut parsed = Vec::new();
    for (k, v) in headers {
        let name = hyper::header::HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| LoadError::Header(format!("{k}: {v}")))?;
        let value = hyper::header::HeaderValue::from_str(v.trim())
            .map_err(|_| LoadError::Header(format!("{k}: {v}")))?;
        parsed.push((name, value));
    }
    if !parsed.iter().any(|(n, _)| n == hyper::header::CONTENT_TYPE) {
        parsed.push((
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        ));
    }
    let uri: hyper::Uri = url.parse().map_err(|_| LoadError::Url(url.into()))?;
    if uri.scheme_str() != Some("http") {
        return Err(LoadError::Url(url.into()));
    }
    let authority = uri.authority().ok_or_else(|| LoadError::Url(url.into()))?;
    let port = authority.port_u16().unwrap_or(80);
    Ok(Target {
        authority: format!("{}:{port}", authority.host()),
        path: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        headers: parsed,
    })
}

async fn connect(authority: &str) -> std::io::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// What one worker saw.
struct WorkerResult {
    histogram: Histogram<u64>,
    status: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    timeline: BTreeMap<u64, Bucket>,
    acked: Vec<u64>,
    last_ack: Option<Instant>,
}

/// Renders the payload of request `i`.
pub fn render(template: &str, i: u64) -> String {
    template.replace("{i}", &i.to_string())
}

/// Runs the load and, when asked, the verification.
pub async fn run(opts: LoadOptions) -> Result<LoadReport, LoadError> {
    let target = Arc::new(parse_url(&opts.url, &opts.headers)?);
    // Fail early and clearly when nothing listens there.
    connect(&target.authority)
        .await
        .map_err(|e| LoadError::Connect(opts.url.clone(), e.to_string()))?;
    let baseline = match &opts.verify {
        Some(v) => Some(verify::snapshot(v).await.map_err(LoadError::Verify)?),
        None => None,
    };
    let schedule = opts.shape.schedule(opts.total).map(Arc::new);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let template = Arc::new(opts.template.clone());
    let bar = progress_bar(opts.progress, opts.total);
    let ticker = {
        let (bar, done) = (bar.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            loop {
                bar.set_position(done.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let start = Instant::now();
    let sampler = opts
        .verify
        .as_ref()
        .map(|v| verify::DrainSampler::start(v, start));
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let (target, next, done, template, schedule) = (
            Arc::clone(&target),
            Arc::clone(&next),
            Arc::clone(&done),
            Arc::clone(&template),
            schedule.clone(),
        );
        let (total, timeout, bucket) = (opts.total, opts.timeout, opts.bucket);
        workers.push(tokio::spawn(async move {
            worker(
                target, next, done, template, schedule, total, timeout, start, bucket,
            )
            .await
        }));
    }
    let mut report = LoadReport {
        url: opts.url.clone(),
        requests: opts.total,
        concurrency: opts.concurrency,
        ..LoadReport::default()
    };
    let mut histogram = Histogram::<u64>::new(3).expect("valid sigfigs");
    let mut timeline: BTreeMap<u64, Bucket> = BTreeMap::new();
    let mut acked = Vec::new();
    let mut last_ack: Option<Instant> = None;
    for w in workers {
        let r = w.await.expect("load worker panicked");
        histogram.add(&r.histogram).expect("same histogram bounds");
        for (k, v) in r.status {
            *report.status.entry(k).or_default() += v;
        }
        for (k, v) in r.errors {
            *report.errors.entry(k).or_default() += v;
        }
        for (t, s) in r.timeline {
            let e = timeline.entry(t).or_insert_with(|| Bucket {
                t: s.t,
                ..Bucket::default()
            });
            for (k, v) in s.status {
                *e.status.entry(k).or_default() += v;
            }
            e.errors += s.errors;
        }
        acked.extend(r.acked);
        last_ack = last_ack.max(r.last_ack);
    }
    let elapsed = start.elapsed();
    ticker.abort();
    bar.finish_and_clear();
    report.elapsed_seconds = elapsed.as_secs_f64();
    report.throughput_rps = opts.total as f64 / elapsed.as_secs_f64().max(1e-9);
    let ms = |v: u64| v as f64 / 1000.0;
    report.latency_ms = Latency {
        p50: ms(histogram.value_at_quantile(0.5)),
        p90: ms(histogram.value_at_quantile(0.9)),
        p99: ms(histogram.value_at_quantile(0.99)),
        p999: ms(histogram.value_at_quantile(0.999)),
        max: ms(histogram.max()),
        mean: histogram.mean() / 1000.0,
    };
    report.timeline = timeline.into_values().collect();
    report.timeline_bucket_seconds = opts.bucket.as_secs_f64();
    report.last_ack_seconds = last_ack.map_or(0.0, |t| (t - start).as_secs_f64());
    if let (Some(v), Some(baseline)) = (&opts.verify, baseline) {
        acked.sort_unstable();
        let drain = sampler.expect("sampler runs with verify");
        let verified = verify::verify(v, &opts.template, &acked, baseline, start, last_ack, drain)
            .await
            .map_err(LoadError::Verify)?;
        report.verify = Some(verified);
    }
    Ok(report)
}

fn progress_bar(show: bool, total: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} requests ({rate}, eta {eta})",
        )
        .expect("valid template")
        // indicatif's own {per_sec} prints four decimals (`2,493.2929/s`).
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec());
            },
        ),
    );
    bar
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    target: Arc<Target>,
    next: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    template: Arc<String>,
    schedule: Option<Arc<Vec<f64>>>,
    total: u64,
    timeout: Duration,
    start: Instant,
    bucket: Duration,
) -> WorkerResult {
    let mut r = WorkerResult {
        histogram: Histogram::new(3).expect("valid sigfigs"),
        status: BTreeMap::new(),
        errors: BTreeMap::new(),
        timeline: BTreeMap::new(),
        acked: Vec::new(),
        last_ack: None,
    };
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return r;
        }
        if let Some(times) = &schedule {
            let due = start + Duration::from_secs_f64(times[i as usize]);
            tokio::time::sleep_until(due.into()).await;
        }
        let sent = Instant::now();
        let index = ((sent - start).as_secs_f64() / bucket.as_secs_f64().max(1e-3)) as u64;
        let bucket_start = index as f64 * bucket.as_secs_f64();
        let outcome = send_one(&target, &mut conn, &template, i, timeout).await;
        done.fetch_add(1, Ordering::Relaxed);
        let slot = r.timeline.entry(index).or_insert_with(|| Bucket {
            t: bucket_start,
            ..Bucket::default()
        });
        match outcome {
            Ok(status) => {
                let now = Instant::now();
                let _ = r.histogram.record((now - sent).as_micros().max(1) as u64);
                *r.status.entry(status).or_default() += 1;
                *slot.status.entry(status).or_default() += 1;
                if status == 200 {
                    r.acked.push(i);
                    r.last_ack = Some(now);
                }
            }
            Err(kind) => {
                conn = None;
                *r.errors.entry(kind.to_owned()).or_default() += 1;
                slot.errors += 1;
            }
        }
    }
}

/// Sends one request on the worker's connection (opening one if needed).
async fn send_one(
    target: &Target,
    conn: &mut Option<SendRequest<Full<Bytes>>>,
    template: &str,
    i: u64,
    timeout: Duration,
) -> Result<u16, &'static str> {
    let attempt = async {
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            *conn = Some(connect(&target.authority).await.map_err(|_| "connect")?);
        }
        let sender = conn.as_mut().expect("connected above");
        sender.ready().await.map_err(|_| "io")?;
        let mut req = Request::post(target.path.as_str())
            .header(hyper::header::HOST, target.authority.as_str())
            .body(Full::new(Bytes::from(render(template, i))))
            .map_err(|_| "io")?;
        for (k, v) in &target.headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        let resp = sender.send_request(req).await.map_err(|_| "io")?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await.map_err(|_| "io")?;
        Ok(status)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err("timeout"),
    }
}

impl LoadReport {
    /// Why the run failed, if it did: no request answered 2xx, or verification found
    /// acknowledged records missing from (or duplicated in) the table. `spillway load`
    /// exits non-zero then, so a script or CI job notices.
    pub fn failure(&self) -> Option<String> {
        let ok: u64 = self
            .status
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum();
        if ok == 0 {
            return Some(format!("no request succeeded ({} sent)", self.requests));
        }
        match &self.verify {
            Some(v) if v.missing > 0 || v.duplicates > 0 => Some(format!(
                "verification failed: {} acknowledged records missing, {} duplicated",
                v.missing, v.duplicates
            )),
            _ => None,
        }
    }
}

impl LoadReport {
    /// The report for people.
    pub fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "target       {}", self.url);
        let _ = writeln!(
            out,
            "requests     {} at concurrency {} in {:.2} s: {:.0} req/s",
            self.requests, self.concurrency, self.elapsed_seconds, self.throughput_rps
        );
        let statuses: Vec<String> = self
            .status
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            out,
            "status       {}",
            if statuses.is_empty() {
                "none".into()
            } else {
                statuses.join("  ")
            }
        );
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            out,
            "errors       {}",
            if errors.is_empty() {
                "none".into()
            } else {
                errors.join("  ")
            }
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            out,
            "latency ms   p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            l.p50, l.p90, l.p99, l.p999, l.max
        );
        if let Some(v) = &self.verify {
            out.push_str(&v.render_text());
        }
        out
    }
}
