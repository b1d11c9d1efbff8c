//! Functions: what an event source mapping (and later a direct route) invokes.
//!
//! One trait, [`Function`]: invoke with an event payload, get a response payload or a
//! [`FunctionError`]. A function may also hand table writes back to its caller through
//! [`TableWrites`]; the mapping commits them atomically with its checkpoint, which is what
//! makes the built-in function exactly-once in the table. Implementations:
//! [`builtin::KinesisToDynamo`] (the reference function), [`process::ProcessFunction`]
//! (any program, event on stdin, response on stdout) and
//! [`runtime_api::RuntimeFunction`] (a real Lambda function, served the Lambda Runtime
//! API).

pub mod builtin;
pub mod child;
pub mod event;
pub mod peer;
pub mod process;
pub mod runtime_api;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::config::{Config, FunctionConfig, FunctionKind};
use crate::storage::WriteOp;
use crate::table::Tables;

/// Why an invocation failed. Every variant is a "function error" to a mapping.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FunctionError {
    /// The function ran and reported an error (Lambda's `Unhandled`).
    #[error("{error_type}: {message}")]
    Unhandled { error_type: String, message: String },
    /// The function ran past its timeout and was stopped.
    #[error("Task timed out after {0:.2} seconds")]
    Timeout(f64),
    /// The function could not be started.
    #[error("function could not start: {0}")]
    Start(String),
    /// Every concurrent slot is taken (direct invocations only; mappings wait).
    #[error("Rate Exceeded.")]
    Throttled,
}

/// Instance counters of a function that runs instances (the Runtime API host's), shown
/// by `/_spillway/functions`. A domain type: the `Function` trait returns it.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct InstanceStats {
    /// Instances started (cold starts).
    pub started: u64,
    /// Instances whose process is alive now.
    pub live: u32,
    /// Most instances alive at once.
    pub peak: u32,
    /// Instances that reported an init error.
    pub init_errors: u64,
    /// Instances that exited (or were killed) while an invocation was in flight.
    pub lost: u64,
}

/// Table writes a function hands back, to be committed with the caller's checkpoint.
#[derive(Debug, Default)]
pub struct TableWrites {
    pub ops: Vec<WriteOp>,
}

/// A boxed future, so that [`Function`] can be used as a trait object.
pub type InvokeFuture<'a> = Pin<Box<dyn Future<Output = Result<Bytes, FunctionError>> + Send + 'a>>;

/// Something that can be invoked with an event.
pub trait Function: Send + Sync + 'static {
    /// Invokes once with `payload` (an event as JSON).
    fn invoke<'a>(&'a self, payload: Bytes, writes: &'a mut TableWrites) -> InvokeFuture<'a>;

    /// Counters of the function's instances, for functions that run instances.
    fn instance_stats(&self) -> Option<InstanceStats> {
        None
    }

    /// True when the function applies its timeout itself (a Runtime API function times
    /// an event from when an instance takes it, not from the start of a cold start).
    fn times_itself(&self) -> bool {
        false
    }
}

/// A configured function with its concurrency limit and identity.
pub struct FunctionHandle {
    pub name: String,
    pub arn: String,
    /// The role ARN a mapping puts in `invokeIdentityArn`.
    pub role_arn: String,
    pub timeout: Duration,
    pub reserved_concurrency: u32,
    concurrency: Arc<Semaphore>,
    function: Arc<dyn Function>,
    pub stats: FunctionStats,
    /// This function's `spillway_function_duration_seconds` series.
    duration: prometheus::Histogram,
}

/// Counters of one function, over every caller (mappings and direct routes).
#[derive(Debug, Default)]
pub struct FunctionStats {
    pub invocations: std::sync::atomic::AtomicU64,
    pub errors: std::sync::atomic::AtomicU64,
    /// Direct invocations refused because every concurrency slot was busy.
    pub throttles: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for FunctionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionHandle")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl FunctionHandle {
    pub fn new(
        name: &str,
        config: &Config,
        reserved_concurrency: u32,
        timeout: Duration,
        function: Arc<dyn Function>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            arn: function_arn(config, name),
            role_arn: format!("arn:aws:iam::{}:role/spillway-{name}", config.account_id),
            timeout,
            reserved_concurrency,
            concurrency: Arc::new(Semaphore::new(reserved_concurrency as usize)),
            function,
            stats: FunctionStats::default(),
            duration: crate::metrics::instruments()
                .function_duration_seconds
                .with_label_values(&[name]),
        }
    }

    /// Invokes, waiting for a free concurrency slot, within the timeout.
    pub async fn invoke(
        &self,
        payload: Bytes,
        writes: &mut TableWrites,
    ) -> Result<Bytes, FunctionError> {
        let _slot = self
            .concurrency
            .acquire()
            .await
            .map_err(|_| FunctionError::Start("function is shut down".into()))?;
        self.invoke_in_slot(payload, writes).await
    }

    /// Invokes only if a concurrency slot is free now; else [`FunctionError::Throttled`].
    pub async fn try_invoke(
        &self,
        payload: Bytes,
        writes: &mut TableWrites,
    ) -> Result<Bytes, FunctionError> {
        let Ok(_slot) = self.concurrency.try_acquire() else {
            self.stats
                .throttles
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(FunctionError::Throttled);
        };
        self.invoke_in_slot(payload, writes).await
    }

    async fn invoke_in_slot(
        &self,
        payload: Bytes,
        writes: &mut TableWrites,
    ) -> Result<Bytes, FunctionError> {
        use std::sync::atomic::Ordering::Relaxed;
        self.stats.invocations.fetch_add(1, Relaxed);
        let started = std::time::Instant::now();
        let result = if self.function.times_itself() {
            self.function.invoke(payload, writes).await
        } else {
            let invocation = self.function.invoke(payload, writes);
            match tokio::time::timeout(self.timeout, invocation).await {
                Ok(r) => r,
                Err(_) => {
                    writes.ops.clear();
                    Err(FunctionError::Timeout(self.timeout.as_secs_f64()))
                }
            }
        };
        self.duration.observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.stats.errors.fetch_add(1, Relaxed);
        }
        result
    }

    /// Counters of the function's instances (Runtime API functions only).
    pub fn instance_stats(&self) -> Option<InstanceStats> {
        self.function.instance_stats()
    }

    /// Invocations running now.
    pub fn in_flight(&self) -> u32 {
        self.reserved_concurrency - self.concurrency.available_permits() as u32
    }
}

/// The ARN Lambda would give the function `name`.
fn function_arn(config: &Config, name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:function:{name}",
        config.region, config.account_id
    )
}

/// How to start instances of a `kind = "runtime"` function: the environment a Lambda
/// runtime expects (its own identity, region, dummy credentials, spillway as the AWS
/// endpoint), then the user's variables over it.
fn runtime_spec(
    config: &Config,
    fc: &FunctionConfig,
    endpoint: SocketAddr,
) -> runtime_api::RuntimeSpec {
    // A wildcard listen address is not a place to connect to; its loopback is.
    let endpoint = if endpoint.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), endpoint.port())
    } else {
        endpoint
    };
    let handler = if fc.handler.is_empty() {
        fc.command.last().cloned().unwrap_or_default()
    } else {
        fc.handler.clone()
    };
    let task_root = fc
        .working_dir
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let mut environment: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", fc.name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", fc.memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", fc.name),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("_HANDLER", handler),
        ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
        ("LAMBDA_RUNTIME_DIR", task_root.display().to_string()),
        ("AWS_REGION", config.region.clone()),
        ("AWS_DEFAULT_REGION", config.region.clone()),
        ("AWS_ACCESS_KEY_ID", "spillway".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "spillway".to_owned()),
        ("AWS_SESSION_TOKEN", "spillway".to_owned()),
        ("AWS_ENDPOINT_URL", format!("http://{endpoint}")),
        ("TZ", ":UTC".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    environment.extend(fc.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    runtime_api::RuntimeSpec {
        name: fc.name.clone(),
        arn: function_arn(config, &fc.name),
        command: fc.command.clone(),
        working_dir: fc.working_dir.clone(),
        environment,
        timeout: Duration::from_secs(fc.timeout_seconds.max(1)),
        max_instances: fc.reserved_concurrency,
    }
}

/// Why a process or runtime function's command cannot start, if it visibly cannot: no
/// command, or a program that is neither an executable path nor found on `PATH`.
fn command_problem(fc: &crate::config::FunctionConfig) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if matches!(fc.kind, FunctionKind::KinesisToDynamo) {
        return None;
    }
    let Some(program) = fc.command.first() else {
        return Some("no command is configured".into());
    };
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        let path = std::path::Path::new(program);
        match (&fc.working_dir, path.is_relative()) {
            (Some(dir), true) => executable(&dir.join(path)) || executable(path),
            _ => executable(path),
        }
    } else {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| executable(&dir.join(program)))
        })
    };
    (!found).then(|| format!("command `{program}` is not an executable file nor on PATH"))
}

/// Every function, by name: the configured ones, and those the Lambda control plane
/// creates, replaces and deletes while spillway runs.
pub struct Functions {
    by_name: std::sync::RwLock<BTreeMap<String, Arc<FunctionHandle>>>,
    /// What a function built later needs: the region and account of its ARN, the
    /// tables the built-in function writes, and the AWS endpoint runtimes are told.
    config: Config,
    tables: Arc<Tables>,
    endpoint: SocketAddr,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions")
            .field("names", &self.read().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Functions {
    /// Builds the functions declared in the config. `endpoint` is the address spillway
    /// serves its AWS APIs on, which Runtime API functions get as `AWS_ENDPOINT_URL`.
    pub fn from_config(config: &Config, tables: &Arc<Tables>, endpoint: SocketAddr) -> Self {
        let functions = Self {
            by_name: Default::default(),
            config: config.clone(),
            tables: Arc::clone(tables),
            endpoint,
        };
        for fc in &config.functions {
            functions.put(fc);
        }
        functions
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<FunctionHandle>>> {
        self.by_name
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Builds `fc` and makes it the function of its name, replacing one there was (whose
    /// idle instances stop when the last invocation holding it ends).
    pub fn put(&self, fc: &FunctionConfig) -> Arc<FunctionHandle> {
        let config = &self.config;
        if let Some(problem) = command_problem(fc) {
            // Said at start, not first at the first invocation: every batch of a
            // mapping to this function will fail until the command is fixed.
            tracing::error!(
                function = %fc.name,
                command = ?fc.command,
                "{problem}; every invocation of this function will fail"
            );
        }
        let function: Arc<dyn Function> = match fc.kind {
            FunctionKind::KinesisToDynamo => {
                Arc::new(builtin::KinesisToDynamo::new(Arc::clone(&self.tables), fc))
            }
            FunctionKind::Process => Arc::new(process::ProcessFunction::new(fc, config)),
            FunctionKind::Runtime => Arc::new(runtime_api::RuntimeFunction::new(runtime_spec(
                config,
                fc,
                self.endpoint,
            ))),
        };
        let handle = Arc::new(FunctionHandle::new(
            &fc.name,
            config,
            fc.reserved_concurrency,
            Duration::from_secs(fc.timeout_seconds.max(1)),
            function,
        ));
        self.by_name
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(fc.name.clone(), Arc::clone(&handle));
        handle
    }

    /// Removes the function `name`; what still holds it finishes its invocation.
    pub fn remove(&self, name: &str) -> Option<Arc<FunctionHandle>> {
        self.by_name
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name)
    }

    pub fn get(&self, name: &str) -> Option<Arc<FunctionHandle>> {
        self.read().get(name).cloned()
    }

    pub fn all(&self) -> Vec<Arc<FunctionHandle>> {
        self.read().values().cloned().collect()
    }
}
