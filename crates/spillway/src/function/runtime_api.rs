//! The Lambda Runtime API host: runs a real Lambda function, unchanged.
//!
//! A `kind = "runtime"` function is any program that speaks the Lambda Runtime API: a
//! custom runtime's `bootstrap` (a Rust `lambda_runtime` binary, say) or a language's
//! runtime interface client (`python -m awslambdaric module.handler`). Each *instance*
//! of the function is one child process with its own loopback listener serving the
//! Runtime API at `http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/...` (a port per
//! instance rather than a path prefix, because runtime clients build the URL from
//! `AWS_LAMBDA_RUNTIME_API` alone). The protocol, from the instance's side:
//!
//! 1. `GET  invocation/next`: long-polls for the next event; answered with the event as
//!    the body and the `Lambda-Runtime-*` headers (request id, deadline, function ARN,
//!    trace id). The first call ends the instance's init phase.
//! 2. `POST invocation/{id}/response`: the result (202), or
//!    `POST invocation/{id}/error`: a function error (202), kept warm after it;
//! 3. `POST init/error`: the handler could not be loaded; the instance is stopped and
//!    the invocation that started it fails with the runtime's error type and message.
//!
//! Instances are started on demand, only when no warm one is idle, and never more than
//! the function's reserved concurrency at once (a killed instance's place is free only
//! once its process has exited). An invocation that outlives the function's timeout is
//! abandoned by [`super::FunctionHandle`]; abandoning it kills its instance, as Lambda
//! does. An instance that exits mid-invocation fails that invocation with Lambda's
//! `Runtime.ExitError` and is replaced by the next invocation. Everything an instance
//! prints goes to spillway's log, tagged with the function and the request id.
//!
//! Each listener serves only its own instance: the process spillway started and its
//! descendants (see [`super::peer`]). Any other local process is refused with 403, once
//! per connection, before it can take an event and answer it in the function's place.
//! Instances are started through [`super::child`], so that none outlives spillway.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, oneshot, watch};

use super::peer::{self, Peer};
use super::{Function, FunctionError, InvokeFuture, TableWrites};

/// Lambda's limit on a synchronous response payload, as its error messages state it.
const MAX_RESPONSE_BYTES: usize = 6_291_556;
/// Past this many bytes an oversized body is no longer drained, the connection is cut.
const MAX_DRAINED_BYTES: usize = 64 * 1024 * 1024;
/// Lambda's limit on a function's init phase (separate from the function's timeout).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Instances tried for one event when they end before taking it (an idle instance that
/// exited, or was killed, while it waited).
const DELIVERY_ATTEMPTS: u32 = 3;
/// Longest line of function output logged as one; longer ones are logged in pieces.
const MAX_LOG_LINE: u64 = 64 * 1024;

/// Everything needed to start an instance of one function.
#[derive(Debug, Clone)]
pub struct RuntimeSpec {
    pub name: String,
    pub arn: String,
    /// Program and arguments.
    pub command: Vec<String>,
    /// The instances' working directory; `None`: spillway's own.
    pub working_dir: Option<PathBuf>,
    /// Environment set for every instance, in order (later entries win); the instance's
    /// own `AWS_LAMBDA_RUNTIME_API` and log stream name are added at start.
    pub environment: Vec<(String, String)>,
    pub timeout: Duration,
    /// Most instances alive at once (the function's reserved concurrency).
    pub max_instances: u32,
}

pub use super::InstanceStats;

/// A `kind = "runtime"` function: a pool of warm instances.
pub struct RuntimeFunction {
    spec: Arc<RuntimeSpec>,
    idle: Mutex<Vec<Arc<Instance>>>,
    /// Instances alive; a new one starts only below `spec.max_instances`.
    live: Arc<watch::Sender<u32>>,
    stats: Arc<Mutex<InstanceStats>>,
    next_instance: AtomicU64,
}

impl std::fmt::Debug for RuntimeFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeFunction")
            .field("name", &self.spec.name)
            .finish_non_exhaustive()
    }
}

/// One event on its way to an instance.
struct Invocation {
    request_id: String,
    payload: Bytes,
    /// The function's timeout; the deadline is set when the instance takes the event.
    timeout: Duration,
    reply: oneshot::Sender<Outcome>,
    /// Told when the instance takes the event (its init, if any, is over).
    taken: oneshot::Sender<()>,
}

/// How one try of an invocation on one instance ended.
enum Attempt {
    /// The invocation has its result.
    Done(Result<Bytes, FunctionError>),
    /// The instance ended before taking the event; another may.
    NotTaken(FunctionError),
}

/// What an instance said about one invocation.
#[derive(Debug)]
enum Outcome {
    Response(Bytes),
    Error { error_type: String, message: String },
}

/// How an instance's process ended, once it has.
#[derive(Debug, Clone)]
struct Exit {
    /// `exit status 1`, `signal 9`, as Lambda words it.
    status: String,
}

/// State shared by one instance's Runtime API handlers.
struct InstanceApi {
    function: String,
    arn: String,
    /// Events for this instance; `invocation/next` takes them one at a time.
    events: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    /// Invocations handed out and not yet answered, by request id.
    in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// The request id being served, to tag the instance's output.
    current: Mutex<String>,
    /// `init/error`'s type and message, when the runtime reported one.
    init_error: Mutex<Option<(String, String)>>,
    /// Asks the process watcher to kill the process.
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

impl InstanceApi {
    fn kill(&self) {
        if let Some(k) = lock(&self.kill).take() {
            let _ = k.send(());
        }
    }
}

/// One running instance: a process and its Runtime API listener.
struct Instance {
    api: Arc<InstanceApi>,
    events: mpsc::Sender<Invocation>,
    exited: watch::Receiver<Option<Exit>>,
    server: tokio::task::JoinHandle<()>,
}

impl Instance {
    fn has_exited(&self) -> bool {
        self.exited.borrow().is_some()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // An instance nobody holds can never be invoked again: stop it.
        self.api.kill();
        self.server.abort();
    }
}

/// Kills the instance of an invocation that is abandoned before it finishes (its caller
/// went away, e.g. at shutdown): the instance is mid-event and cannot be reused.
struct AbandonGuard<'a> {
    instance: Option<Arc<Instance>>,
    stats: &'a Mutex<InstanceStats>,
}

impl Drop for AbandonGuard<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.instance.take() {
            lock(self.stats).lost += 1;
            i.api.kill();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

impl RuntimeFunction {
    pub fn new(spec: RuntimeSpec) -> Self {
        Self {
            spec: Arc::new(spec),
            idle: Mutex::new(Vec::new()),
            live: Arc::new(watch::Sender::new(0)),
            stats: Arc::new(Mutex::new(InstanceStats::default())),
            next_instance: AtomicU64::new(1),
        }
    }

    /// A snapshot of the instance counters.
    pub fn instance_stats(&self) -> InstanceStats {
        let s = lock(&self.stats);
        InstanceStats {
            started: s.started,
            live: *self.live.borrow(),
            peak: s.peak,
            init_errors: s.init_errors,
            lost: s.lost,
        }
    }

    async fn run(&self, payload: Bytes) -> Result<Bytes, FunctionError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut attempt = 1;
        loop {
            let instance = self.instance().await?;
            match self.run_on(instance, &request_id, payload.clone()).await {
                Attempt::Done(result) => return result,
                Attempt::NotTaken(error) if attempt >= DELIVERY_ATTEMPTS => return Err(error),
                Attempt::NotTaken(_) => attempt += 1,
            }
        }
    }

    /// One try on one instance: its init (a cold one's) within [`INIT_TIMEOUT`], then the
    /// event within the function's timeout, timed from when the instance takes it.
    async fn run_on(&self, instance: Arc<Instance>, request_id: &str, payload: Bytes) -> Attempt {
        let (reply, answer) = oneshot::channel();
        let (taken_tx, taken) = oneshot::channel();
        let invocation = Invocation {
            request_id: request_id.to_owned(),
            payload,
            timeout: self.spec.timeout,
            reply,
            taken: taken_tx,
        };
        let mut guard = AbandonGuard {
            instance: Some(Arc::clone(&instance)),
            stats: &self.stats,
        };
        // The instance serves this invocation alone, so its one-slot queue is free.
        let _ = instance.events.send(invocation).await;
        let mut exited = instance.exited.clone();
        let was_taken = tokio::select! {
            biased;
            taken = taken => taken.is_ok(),
            _ = exited.wait_for(Option::is_some) => false,
            () = tokio::time::sleep(INIT_TIMEOUT) => {
                guard.instance = None;
                instance.api.kill();
                lock(&self.stats).lost += 1;
                return Attempt::Done(Err(FunctionError::Timeout(INIT_TIMEOUT.as_secs_f64())));
            }
        };
        if !was_taken {
            guard.instance = None;
            return match self.lost(&instance, request_id).await {
                // The runtime said why it could not start: that is the answer.
                e @ FunctionError::Unhandled { .. } if lock(&instance.api.init_error).is_some() => {
                    Attempt::Done(Err(e))
                }
                e => Attempt::NotTaken(e),
            };
        }
        let outcome = tokio::select! {
            biased;
            answer = answer => answer.ok(),
            _ = exited.wait_for(Option::is_some) => None,
            () = tokio::time::sleep(self.spec.timeout) => {
                // As Lambda stops a timed-out sandbox: the instance is not reused.
                guard.instance = None;
                instance.api.kill();
                lock(&self.stats).lost += 1;
                return Attempt::Done(Err(FunctionError::Timeout(self.spec.timeout.as_secs_f64())));
            }
        };
        guard.instance = None;
        Attempt::Done(match outcome {
            Some(Outcome::Response(body)) => {
                self.release(instance);
                Ok(body)
            }
            // Lambda keeps an instance warm after a function error it reported itself.
            Some(Outcome::Error {
                error_type,
                message,
            }) => {
                self.release(instance);
                Err(FunctionError::Unhandled {
                    error_type,
                    message,
                })
            }
            None => {
                lock(&self.stats).lost += 1;
                Err(self.lost(&instance, request_id).await)
            }
        })
    }

    /// The error for an invocation whose instance ended before answering (stopping the
    /// instance first, if it has not ended on its own).
    async fn lost(&self, instance: &Instance, request_id: &str) -> FunctionError {
        instance.api.kill();
        let mut exited = instance.exited.clone();
        let status = exited
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|e| e.clone())
            .map_or_else(|| "unknown".to_owned(), |e| e.status);
        if let Some((error_type, message)) = lock(&instance.api.init_error).clone() {
            lock(&self.stats).init_errors += 1;
            return FunctionError::Unhandled {
                error_type,
                message,
            };
        }
        FunctionError::Unhandled {
            error_type: "Runtime.ExitError".into(),
            message: format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
        }
    }

    /// Puts a still-running instance back in the idle pool, and wakes an invocation
    /// that may be waiting for one (see [`Self::instance`]).
    fn release(&self, instance: Arc<Instance>) {
        if !instance.has_exited() {
            lock(&self.idle).push(instance);
            self.live.send_modify(|_| {});
        }
    }

    /// A warm idle instance, or a new one once there is room for it. Waits while every
    /// place is taken: by busy instances (one of which may come back idle) or by killed
    /// ones still exiting. Both events wake the `live` watch.
    async fn instance(&self) -> Result<Arc<Instance>, FunctionError> {
        let mut changes = self.live.subscribe();
        loop {
            changes.borrow_and_update();
            if let Some(idle) = self.take_idle() {
                return Ok(idle);
            }
            if self.reserve_place() {
                return self.start().await.inspect_err(|_| {
                    self.live.send_modify(|n| *n -= 1);
                });
            }
            // The sender lives as long as `self`, so this only waits.
            let _ = changes.changed().await;
        }
    }

    fn take_idle(&self) -> Option<Arc<Instance>> {
        let mut idle = lock(&self.idle);
        while let Some(i) = idle.pop() {
            if !i.has_exited() {
                return Some(i);
            }
        }
        None
    }

    /// Counts one more live instance if fewer than `max_instances` are alive.
    fn reserve_place(&self) -> bool {
        let max = self.spec.max_instances;
        let reserved = self.live.send_if_modified(|n| {
            if *n < max {
                *n += 1;
                true
            } else {
                false
            }
        });
        if reserved {
            let live = *self.live.borrow();
            let mut s = lock(&self.stats);
            s.started += 1;
            s.peak = s.peak.max(live);
        }
        reserved
    }

    /// Starts an instance: its Runtime API listener, then its process.
    async fn start(&self) -> Result<Arc<Instance>, FunctionError> {
        let spec = &self.spec;
        let (program, args) = spec
            .command
            .split_first()
            .ok_or_else(|| FunctionError::Start("empty command".into()))?;
        let number = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| FunctionError::Start(format!("binding a Runtime API port: {e}")))?;
        let addr: SocketAddr = listener
            .local_addr()
            .map_err(|e| FunctionError::Start(e.to_string()))?;
        let (events_tx, events_rx) = mpsc::channel(1);
        let (kill_tx, kill_rx) = oneshot::channel();
        let api = Arc::new(InstanceApi {
            function: spec.name.clone(),
            arn: spec.arn.clone(),
            events: tokio::sync::Mutex::new(events_rx),
            in_flight: Mutex::new(HashMap::new()),
            current: Mutex::new(String::new()),
            init_error: Mutex::new(None),
            kill: Mutex::new(Some(kill_tx)),
        });
        let (process_tx, process_rx) = watch::channel(InstanceProcess::Starting);
        let gate = Arc::new(Gate {
            function: spec.name.clone(),
            listener: addr,
            process: process_rx,
        });
        let server = tokio::spawn(serve_runtime_api(listener, router(Arc::clone(&api)), gate));

        let instance_id = format!("{number:032x}");
        let mut command = tokio::process::Command::new(program);
        // None of spillway's own AWS settings reach the function (a profile, per-service
        // endpoints or real credentials would shadow what the spec sets).
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command
            .args(args)
            .envs(spec.environment.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.name),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                crate::logs::function_stream_name(&instance_id),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that stopping the instance stops everything it
            // started (a wrapper script's runtime included).
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &spec.working_dir {
            command.current_dir(dir);
        }
        let mut child = match super::child::spawn(command).await {
            Ok(c) => c,
            Err(e) => {
                process_tx.send_replace(InstanceProcess::Ended);
                server.abort();
                return Err(FunctionError::Start(format!("{program}: {e}")));
            }
        };
        // Connections that arrived before the pid was known are checked now.
        process_tx.send_replace(
            child
                .id()
                .map_or(InstanceProcess::Ended, InstanceProcess::Running),
        );
        tracing::debug!(function = %spec.name, instance = number, %addr, "instance started");
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_output(out, Arc::clone(&api), instance_id.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_output(err, Arc::clone(&api), instance_id));
        }
        let (exit_tx, exit_rx) = watch::channel(None);
        let live = Arc::clone(&self.live);
        let function = spec.name.clone();
        let group = child.id();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = kill_rx => {
                    kill_group(group);
                    child.wait().await
                }
            };
            // Whatever the leader left behind in its group goes with it.
            kill_group(group);
            process_tx.send_replace(InstanceProcess::Ended);
            let status = status.map_or_else(|e| e.to_string(), describe_exit);
            tracing::debug!(%function, instance = number, %status, "instance ended");
            let _ = exit_tx.send(Some(Exit { status }));
            live.send_modify(|n| *n = n.saturating_sub(1));
        });
        Ok(Arc::new(Instance {
            api,
            events: events_tx,
            exited: exit_rx,
            server,
        }))
    }
}

impl Function for RuntimeFunction {
    fn invoke<'a>(&'a self, payload: Bytes, _writes: &'a mut TableWrites) -> InvokeFuture<'a> {
        Box::pin(self.run(payload))
    }

    fn instance_stats(&self) -> Option<InstanceStats> {
        Some(RuntimeFunction::instance_stats(self))
    }

    fn times_itself(&self) -> bool {
        true
    }
}

/// SIGKILL to an instance's process group (its id is the leader's pid).
fn kill_group(leader: Option<u32>) {
    let pid = leader
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        // The group may be gone already; that is the goal.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// `exit status 1` or `signal: killed`, the words Lambda uses in `Runtime.ExitError`.
fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => {
            let name = match signal {
                6 => "aborted".to_owned(),
                9 => "killed".to_owned(),
                11 => "segmentation fault".to_owned(),
                15 => "terminated".to_owned(),
                n => n.to_string(),
            };
            format!("signal: {name}")
        }
        (None, None) => status.to_string(),
    }
}

/// Copies an instance's output to spillway's log, a line at a time, tagged with the
/// function and the request being served, and to the function's CloudWatch Logs group.
///
/// Reads to the end whatever comes: bytes that are not UTF-8 are logged lossily, and
/// lines longer than [`MAX_LOG_LINE`] in pieces, so a function's output can never stop
/// being read (a closed pipe would kill or fail the function on its next write).
async fn forward_output(stream: impl AsyncRead + Unpin, api: Arc<InstanceApi>, instance: String) {
    use tokio::io::AsyncReadExt;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LOG_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let request_id = lock(&api.current).clone();
                // awslambdaric separates a traceback's lines with `\r` (so that Lambda
                // keeps it one log event): one log line each here, or a terminal would
                // overwrite them all but the last.
                for part in split_output_lines(&text) {
                    tracing::info!(target: "spillway::function", function = %api.function, %request_id, "{part}");
                    crate::logs::function_output(&api.function, &instance, part);
                }
            }
        }
    }
}

/// A chunk of function output as log lines: split on `\n` and on a lone `\r`, empty
/// lines dropped.
pub fn split_output_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\n', '\r']).filter(|l| !l.trim().is_empty())
}

/// The process behind an instance, as its Runtime API's [`Gate`] knows it.
#[derive(Debug, Clone, Copy)]
enum InstanceProcess {
    /// Being spawned: its pid is not known yet.
    Starting,
    Running(u32),
    /// Exited, or never started.
    Ended,
}

/// Who may use one instance's Runtime API: the instance's process and its descendants.
struct Gate {
    function: String,
    listener: SocketAddr,
    process: watch::Receiver<InstanceProcess>,
}

impl Gate {
    /// Whether the connection from `peer` may be served. Checked once per connection
    /// (runtime clients keep theirs open), on a blocking thread: it reads procfs.
    async fn admits(&self, peer: SocketAddr) -> bool {
        let mut process = self.process.clone();
        // A fresh runtime may connect before `spawn` has returned its pid: wait for it.
        let state = match process
            .wait_for(|p| !matches!(p, InstanceProcess::Starting))
            .await
        {
            Ok(state) => *state,
            Err(_) => InstanceProcess::Ended,
        };
        let found = match state {
            InstanceProcess::Running(pid) => {
                let listener = self.listener;
                tokio::task::spawn_blocking(move || peer::identify(peer, listener, pid))
                    .await
                    .unwrap_or(Peer::Foreign(None))
            }
            InstanceProcess::Starting | InstanceProcess::Ended => Peer::Foreign(None),
        };
        match found {
            Peer::Instance => true,
            Peer::Foreign(pid) => {
                tracing::warn!(
                    function = %self.function,
                    %peer,
                    pid = pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
                    "refused a Runtime API connection: the caller is not this function's instance"
                );
                false
            }
        }
    }
}

/// Serves one instance's Runtime API. HTTP/1.1 with header names in title case
/// (`Lambda-Runtime-Aws-Request-Id`), as Lambda writes them: HTTP says case does not
/// matter, but a shell bootstrap that greps for the header may think otherwise.
async fn serve_runtime_api(listener: tokio::net::TcpListener, app: axum::Router, gate: Arc<Gate>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors, say: wait rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (app, gate) = (app.clone(), Arc::clone(&gate));
        tokio::spawn(async move {
            let admitted = gate.admits(peer).await;
            let service = hyper_util::service::TowerToHyperService::new(if admitted {
                app
            } else {
                forbidden_router()
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            // A connection ends when the runtime closes it or its instance is stopped; a
            // refused one after its first answer.
            let _ = hyper::server::conn::http1::Builder::new()
                .title_case_headers(true)
                .keep_alive(admitted)
                .serve_connection(io, service)
                .await;
        });
    }
}

/// What a process other than the instance's is answered, whatever it asks.
fn forbidden_router() -> axum::Router {
    axum::Router::new().fallback(|| async {
        runtime_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "This Runtime API serves only the function instance spillway started for it (and its child processes).",
        )
    })
}

/// The Runtime API of one instance.
fn router(api: Arc<InstanceApi>) -> axum::Router {
    axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(invocation_response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        // Bodies are read with Lambda's limit by the handlers themselves (`read_limited`).
        .layer(DefaultBodyLimit::disable())
        .with_state(api)
}

/// An error answered to the runtime itself, in the Runtime API's shape.
fn runtime_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "errorType": error_type, "errorMessage": message })),
    )
        .into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "status": "OK" })),
    )
        .into_response()
}

/// A trace id in X-Ray's format, as Lambda sends one with every event.
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let root = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &root[..24],
        &parent[..16]
    )
}

async fn next_invocation(State(api): State<Arc<InstanceApi>>) -> Response {
    let invocation = api.events.lock().await.recv().await;
    let Some(invocation) = invocation else {
        // The instance is being stopped; there will be no more events.
        return runtime_error(
            StatusCode::GONE,
            "InstanceStopped",
            "this instance is being stopped",
        );
    };
    *lock(&api.current) = invocation.request_id.clone();
    lock(&api.in_flight).insert(invocation.request_id.clone(), invocation.reply);
    let deadline_ms = epoch_ms() + invocation.timeout.as_millis();
    let _ = invocation.taken.send(());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("content-type", "application/json".into());
    set("lambda-runtime-aws-request-id", invocation.request_id);
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", api.arn.clone());
    set("lambda-runtime-trace-id", trace_id());
    (StatusCode::OK, headers, invocation.payload).into_response()
}

/// Takes the waiting caller of invocation `id`; `None` if there is no such invocation.
fn take_caller(api: &InstanceApi, id: &str) -> Option<oneshot::Sender<Outcome>> {
    let caller = lock(&api.in_flight).remove(id)?;
    lock(&api.current).clear();
    Some(caller)
}

/// The answer to a runtime that names an invocation it was not given.
fn unknown_request(id: &str) -> Response {
    runtime_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("Invalid request ID: {id}"),
    )
}

/// Why a body could not be read.
enum BodyError {
    /// Over [`MAX_RESPONSE_BYTES`]; the rest was drained (up to [`MAX_DRAINED_BYTES`]), so
    /// the runtime reads our answer instead of a reset connection.
    TooLarge,
    /// The connection broke mid-body.
    Broken,
}

/// Reads a body of at most [`MAX_RESPONSE_BYTES`]. Read by hand rather than by an
/// extractor's limit, so that the waiting invocation always learns what happened instead
/// of waiting for its timeout.
async fn read_limited(mut body: Body) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt;
    let mut kept = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else {
            continue;
        };
        total += data.len();
        if total <= MAX_RESPONSE_BYTES {
            kept.extend_from_slice(&data);
        } else if total > MAX_DRAINED_BYTES {
            return Err(BodyError::TooLarge);
        }
    }
    if total > MAX_RESPONSE_BYTES {
        Err(BodyError::TooLarge)
    } else {
        Ok(kept.freeze())
    }
}

async fn invocation_response(
    State(api): State<Arc<InstanceApi>>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let Some(caller) = take_caller(&api, &id) else {
        return unknown_request(&id);
    };
    let body = match read_limited(body).await {
        Ok(body) => body,
        // The runtime is gone mid-post; dropping the caller reports the instance lost.
        Err(BodyError::Broken) => return StatusCode::BAD_REQUEST.into_response(),
        Err(BodyError::TooLarge) => {
            let message = format!(
                "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            );
            let _ = caller.send(Outcome::Error {
                error_type: "Function.ResponseSizeTooLarge".into(),
                message: message.clone(),
            });
            return runtime_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &message,
            );
        }
    };
    let _ = caller.send(Outcome::Response(body));
    accepted()
}

/// The error document a runtime posts: `{"errorType", "errorMessage", "stackTrace"}`.
fn read_error(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok());
    let error_type = doc["errorType"]
        .as_str()
        .or(header_type)
        .unwrap_or("Unhandled")
        .to_owned();
    let message = doc["errorMessage"]
        .as_str()
        .map_or_else(|| String::from_utf8_lossy(body).into_owned(), str::to_owned);
    (error_type, message)
}

async fn invocation_error(
    State(api): State<Arc<InstanceApi>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(caller) = take_caller(&api, &id) else {
        return unknown_request(&id);
    };
    let body = read_limited(body).await.unwrap_or_default();
    let (error_type, message) = read_error(&headers, &body);
    tracing::debug!(function = %api.function, request_id = %id, %error_type, "function error: {message}");
    let _ = caller.send(Outcome::Error {
        error_type,
        message,
    });
    accepted()
}

async fn init_error(
    State(api): State<Arc<InstanceApi>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = read_limited(body).await.unwrap_or_default();
    let (error_type, message) = read_error(&headers, &body);
    tracing::warn!(function = %api.function, %error_type, "init error: {message}");
    *lock(&api.init_error) = Some((error_type, message));
    // Lambda stops a sandbox whose init failed; the waiting invocation then fails with
    // the init error (see `RuntimeFunction::lost`).
    api.kill();
    accepted()
}

#[cfg(test)]
mod tests {
    use super::split_output_lines;

    #[test]
    fn a_python_traceback_with_carriage_returns_becomes_one_line_each() {
        let chunk = "[ERROR] KeyError: 'ID'\rTraceback (most recent call last):\r  File \"/var/task/app.py\", line 9, in handler\r\n";
        let lines: Vec<&str> = split_output_lines(chunk).collect();
        assert_eq!(
            lines,
            [
                "[ERROR] KeyError: 'ID'",
                "Traceback (most recent call last):",
                "  File \"/var/task/app.py\", line 9, in handler"
            ]
        );
    }
}
