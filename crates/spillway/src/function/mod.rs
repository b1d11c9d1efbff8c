//! Functions: what an event source mapping (and later a direct route) invokes.
//!
//! One trait, [`Function`]: invoke with an event payload, get a response payload or a
//! [`FunctionError`]. A function may also hand table writes back to its caller through
//! [`TableWrites`]; the mapping commits them atomically with its checkpoint, which is what
//! makes the built-in function exactly-once in the table. Implementations:
//! [`builtin::KinesisToDynamo`] (the reference function) and [`process::ProcessFunction`]
//! (any program, event on stdin, response on stdout).

pub mod builtin;
pub mod event;
pub mod process;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::config::{Config, FunctionKind};
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
            arn: format!(
                "arn:aws:lambda:{}:{}:function:{name}",
                config.region, config.account_id
            ),
            role_arn: format!("arn:aws:iam::{}:role/spillway-{name}", config.account_id),
            timeout,
            reserved_concurrency,
            concurrency: Arc::new(Semaphore::new(reserved_concurrency as usize)),
            function,
            stats: FunctionStats::default(),
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
        let invocation = self.function.invoke(payload, writes);
        let result = match tokio::time::timeout(self.timeout, invocation).await {
            Ok(r) => r,
            Err(_) => {
                writes.ops.clear();
                Err(FunctionError::Timeout(self.timeout.as_secs_f64()))
            }
        };
        if result.is_err() {
            self.stats.errors.fetch_add(1, Relaxed);
        }
        result
    }

    /// Invocations running now.
    pub fn in_flight(&self) -> u32 {
        self.reserved_concurrency - self.concurrency.available_permits() as u32
    }
}

/// Every configured function, by name.
#[derive(Debug, Default)]
pub struct Functions {
    by_name: BTreeMap<String, Arc<FunctionHandle>>,
}

impl Functions {
    /// Builds the functions declared in the config.
    pub fn from_config(config: &Config, tables: &Arc<Tables>) -> Self {
        let mut by_name = BTreeMap::new();
        for fc in &config.functions {
            let function: Arc<dyn Function> = match fc.kind {
                FunctionKind::KinesisToDynamo => {
                    Arc::new(builtin::KinesisToDynamo::new(Arc::clone(tables), fc))
                }
                FunctionKind::Process => Arc::new(process::ProcessFunction::new(fc, config)),
            };
            let handle = FunctionHandle::new(
                &fc.name,
                config,
                fc.reserved_concurrency,
                Duration::from_secs(fc.timeout_seconds.max(1)),
                function,
            );
            by_name.insert(fc.name.clone(), Arc::new(handle));
        }
        Self { by_name }
    }

    pub fn get(&self, name: &str) -> Option<Arc<FunctionHandle>> {
        self.by_name.get(name).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<FunctionHandle>> {
        self.by_name.values()
    }
}
