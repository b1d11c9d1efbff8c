//! The one TOML configuration schema, with defaults equal to the reference setup.
//!
//! `default.toml` beside this file is both the documentation (a comment on every key,
//! printed by `spillway config`) and the default itself: [`Config::default`] parses it,
//! so the two can never drift apart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod merge;

/// The commented default configuration, embedded in the binary.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Errors loading or validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub region: String,
    pub account_id: String,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    #[serde(default)]
    pub streams: Vec<StreamConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub tables: Vec<TableConfig>,
    #[serde(default)]
    pub functions: Vec<FunctionConfig>,
    #[serde(default)]
    pub mappings: Vec<MappingConfig>,
    #[serde(default)]
    pub kinesis: KinesisConfig,
    #[serde(default)]
    pub dynamodb: DynamoDbConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    #[serde(default)]
    pub workers: WorkersConfig,
}

/// Workers over remote engines (`crate::worker`): how they share shards through leases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// This worker's name in the lease table (`--worker-id`); empty: `{hostname}-{pid}`.
    pub worker_id: String,
    /// The lease table, in the table engine.
    pub lease_table: String,
    /// A lease not renewed for this long is taken over.
    pub lease_duration_ms: u64,
    /// How often leases are renewed and the lease table read.
    pub renew_interval_ms: u64,
    /// How long a caught-up shard waits before reading again.
    pub poll_interval_ms: u64,
    /// Where on-failure records go for mappings whose destination is an SQS queue:
    /// `sqs://REGION`, `sqs+http(s)://HOST:PORT`; empty: kept in the lease table only.
    pub queue_engine: String,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            worker_id: String::new(),
            lease_table: "spillway-leases".into(),
            lease_duration_ms: 10_000,
            renew_interval_ms: 2_000,
            poll_interval_ms: 250,
            queue_engine: String::new(),
        }
    }
}

/// Authentication: SigV4 on the AWS APIs, API keys on the routes. Everything is off
/// unless configured, so a local pipeline takes any client as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Verify the SigV4 signature of every Kinesis and DynamoDB API request.
    pub verify_signatures: bool,
    /// The credentials signatures are checked against.
    pub credentials: Vec<CredentialConfig>,
    /// API keys, for routes with `api_key_required = true`.
    pub api_keys: Vec<ApiKeyConfig>,
}

/// An access key that may sign AWS API requests.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Temporary credentials: requests must carry this `X-Amz-Security-Token`.
    #[serde(default)]
    pub session_token: Option<String>,
}

/// Secrets stay out of logs and `{:?}`.
impl std::fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// An API key with its usage plan's throttle, as API Gateway's usage plans have.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name for logs; the value itself is never logged.
    #[serde(default)]
    pub name: String,
    /// The `x-api-key` header's value, 20 to 128 characters as in API Gateway.
    pub value: String,
    /// Steady requests per second allowed (none: not throttled).
    #[serde(default)]
    pub rate_per_second: Option<f64>,
    /// Requests allowed at once above the steady rate (default: the rate, at least 1).
    #[serde(default)]
    pub burst: Option<u32>,
}

impl std::fmt::Debug for ApiKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyConfig")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .field("rate_per_second", &self.rate_per_second)
            .field("burst", &self.burst)
            .finish()
    }
}

impl ApiKeyConfig {
    /// The bucket's size: `burst`, or the rate rounded up (at least 1).
    pub fn burst_size(&self) -> u32 {
        self.burst.unwrap_or_else(|| {
            // Validation bounds the rate to at most 1e9, which fits.
            self.rate_per_second.unwrap_or(1.0).ceil().clamp(1.0, 1e9) as u32
        })
    }
}

/// The DynamoDB API's lifecycle timing, account limits and TTL sweep.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynamoDbConfig {
    /// Tables allowed in the account.
    pub table_limit: usize,
    /// How long a new table (and a global index added by UpdateTable) stays CREATING.
    pub create_delay_ms: u64,
    /// How long a deleted table stays DELETING before it is gone.
    pub delete_delay_ms: u64,
    /// How long UpdateTable keeps a table UPDATING.
    pub update_delay_ms: u64,
    /// How often the Time to Live sweep deletes expired items.
    pub ttl_check_interval_ms: u64,
}

impl Default for DynamoDbConfig {
    fn default() -> Self {
        Self {
            table_limit: 2500,
            create_delay_ms: 0,
            delete_delay_ms: 0,
            update_delay_ms: 0,
            ttl_check_interval_ms: 30000,
        }
    }
}

/// The Kinesis API's lifecycle timing and account limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisConfig {
    /// How long a new stream stays CREATING before it is ACTIVE.
    pub create_delay_ms: u64,
    /// How long a stream stays DELETING before it is gone.
    pub delete_delay_ms: u64,
    /// How long a reshard or retention change keeps a stream UPDATING.
    pub update_delay_ms: u64,
    /// Open shards allowed in the account (DescribeLimits' ShardLimit).
    pub shard_limit: u32,
}

impl Default for KinesisConfig {
    fn default() -> Self {
        Self {
            create_delay_ms: 0,
            delete_delay_ms: 0,
            update_delay_ms: 0,
            shard_limit: 500,
        }
    }
}

/// A table declared in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub name: String,
    pub hash_key: KeyAttributeConfig,
    #[serde(default)]
    pub range_key: Option<KeyAttributeConfig>,
}

/// A key attribute as the config names it: `{ name = "ID", type = "S" }`. Its own type,
/// not the catalog's (`storage::KeyAttributeEntry`): renaming a config key must never
/// change what is on disk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAttributeConfig {
    pub name: String,
    /// "S", "N" or "B".
    #[serde(rename = "type")]
    pub kind: String,
}

/// The kinds of function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FunctionKind {
    #[serde(rename = "builtin:kinesis-to-dynamo")]
    KinesisToDynamo,
    #[serde(rename = "process")]
    Process,
    /// A real Lambda function served through the Lambda Runtime API (`function::runtime_api`).
    #[serde(rename = "runtime")]
    Runtime,
}

/// How the built-in function fails a poisoned record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    Error,
    Report,
}

/// A function declared in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    pub name: String,
    pub kind: FunctionKind,
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub keep_body: bool,
    #[serde(default = "default_concurrency")]
    pub reserved_concurrency: u32,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub fail_records_containing: String,
    #[serde(default = "default_fail_mode")]
    pub fail_mode: FailMode,
    #[serde(default)]
    pub command: Vec<String>,
    /// Runtime: `_HANDLER` (empty: the command's last argument).
    #[serde(default)]
    pub handler: String,
    /// Runtime: `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB (informational, as a runtime sees it).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// Runtime: the instances' working directory (`LAMBDA_TASK_ROOT`); empty: spillway's.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    /// Runtime: environment variables set for the function, after (over) spillway's own.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

fn default_memory_mb() -> u32 {
    128
}

fn default_concurrency() -> u32 {
    10
}
fn default_timeout() -> u64 {
    60
}
fn default_fail_mode() -> FailMode {
    FailMode::Error
}

/// Where a mapping starts on its first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    AtTimestamp,
}

/// `DestinationConfig = { OnFailure = { Destination = "..." } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    #[serde(rename = "OnFailure")]
    pub on_failure: Option<OnFailure>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnFailure {
    #[serde(rename = "Destination")]
    pub destination: String,
}

/// An event source mapping declared in the config, keys as in CreateEventSourceMapping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct MappingConfig {
    pub event_source_arn: String,
    pub function_name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    #[serde(default)]
    pub maximum_batching_window_in_seconds: u32,
    #[serde(default = "default_starting_position")]
    pub starting_position: StartingPosition,
    #[serde(default)]
    pub starting_position_timestamp: Option<f64>,
    #[serde(default = "one")]
    pub parallelization_factor: u32,
    #[serde(default = "minus_one")]
    pub maximum_retry_attempts: i64,
    #[serde(default = "minus_one")]
    pub maximum_record_age_in_seconds: i64,
    #[serde(default)]
    pub bisect_batch_on_function_error: bool,
    #[serde(default)]
    pub function_response_types: Vec<String>,
    #[serde(default)]
    pub destination_config: Option<DestinationConfig>,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn minus_one() -> i64 {
    -1
}
fn default_batch_size() -> u32 {
    100
}
fn default_starting_position() -> StartingPosition {
    StartingPosition::Latest
}

impl MappingConfig {
    /// The on-failure destination's ARN when it is an SQS queue.
    pub fn sqs_destination(&self) -> Option<&str> {
        self.destination_config
            .as_ref()
            .and_then(|d| d.on_failure.as_ref())
            .map(|o| o.destination.as_str())
            .filter(|d| d.starts_with("arn:aws:sqs:"))
    }

    /// The stream name, from a name or a Kinesis stream ARN.
    pub fn stream_name(&self) -> &str {
        match self.event_source_arn.rsplit_once(":stream/") {
            Some((_, name)) => name,
            None => &self.event_source_arn,
        }
    }

    pub fn reports_batch_item_failures(&self) -> bool {
        self.function_response_types
            .iter()
            .any(|t| t == "ReportBatchItemFailures")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Connections served at once; a connection past it is answered 503 and closed, so
    /// a flood of idle connections cannot starve accept (see `server::conn`).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A keep-alive connection that sends nothing for this long is closed.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// A request's headers must arrive in full within this long of their first byte.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// A request body that stops arriving for this long fails (400) and the connection
    /// is closed, so a body announced longer than it is cannot hold a connection.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Bytes of request bodies being received at once, over all connections; past it a
    /// request is answered 503 with Retry-After before its body is read.
    #[serde(default = "default_request_body_budget_bytes")]
    pub request_body_budget_bytes: usize,
    /// One log line per request (api, action, status, duration, request id), at info
    /// level under the `spillway::access` target. `--access-log` turns it on too.
    #[serde(default)]
    pub access_log: bool,
    /// A second listener that speaks HTTPS, serving the same routes and APIs, with the
    /// certificate chain `tls_cert` and private key `tls_key` (PEM files).
    #[serde(default)]
    pub tls_listen: Option<SocketAddr>,
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

fn default_max_connections() -> usize {
    10_000
}
fn default_idle_timeout_ms() -> u64 {
    60_000
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_body_read_timeout_ms() -> u64 {
    10_000
}
fn default_request_body_budget_bytes() -> usize {
    64 << 20
}

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fdatasync before acknowledging.
    Fsync,
    /// Handed to the OS before acknowledging.
    Os,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub durability: Durability,
    pub queue_records: usize,
    pub queue_bytes: usize,
    pub max_commit_records: usize,
    pub retention_check_interval_ms: u64,
    #[serde(default)]
    pub commit_delay_ms: u64,
    /// Engine URL of the streams (`storage::engine`).
    #[serde(default = "default_engine")]
    pub stream_engine: String,
    /// Engine URL of the tables.
    #[serde(default = "default_engine")]
    pub table_engine: String,
}

fn default_engine() -> String {
    "fjall://".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub name: String,
    pub shard_count: u32,
    #[serde(default = "default_retention_hours")]
    pub retention_hours: f64,
    /// Apply Kinesis' per-shard write limits (1 MiB/s, 1000 records/s).
    #[serde(default)]
    pub enforce_limits: bool,
}

fn default_retention_hours() -> f64 {
    24.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub method: String,
    pub path: String,
    /// A buffered route: the body is appended to this stream.
    #[serde(default)]
    pub stream: Option<String>,
    /// A direct route: the function is invoked synchronously (API Gateway's Lambda proxy
    /// integration), answering 429 when its concurrency is exhausted.
    #[serde(default)]
    pub function: Option<String>,
    #[serde(default)]
    pub partition_key: PartitionKeySource,
    /// Requests must carry a configured API key in `x-api-key` (API Gateway's
    /// `api_key_required`); each key is throttled by its own rate and burst.
    #[serde(default)]
    pub api_key_required: bool,
}

/// Where an ingest route finds a record's partition key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum PartitionKeySource {
    /// A fresh request id, as API Gateway's `$context.requestId`.
    #[default]
    RequestId,
    /// The value of a request header.
    Header { name: String },
    /// A top-level field of the JSON body.
    JsonField { field: String },
}

impl Default for Config {
    fn default() -> Self {
        Self::parse(DEFAULT_TOML, Path::new("<built-in default>"))
            .expect("the embedded default config is valid")
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text merged over the built-in default, and validates it; `path`
    /// only names the source in errors.
    ///
    /// Forgiving by design: any key may be omitted (the default's value is used); a
    /// list given replaces the default's list (`mappings = []` runs no mapping), and
    /// each entry of a list takes the keys it omits from the default's entry, except
    /// the keys that name things (see [`merge::IDENTITY_KEYS`]). The built-in
    /// function needs no declaration. Reference errors name the file's line and the
    /// closest declared name.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let user: toml::Table = toml::from_str(text).map_err(parse_error)?;
        let default: toml::Table = toml::from_str(DEFAULT_TOML).map_err(parse_error)?;
        let merged = merge::over_default(default, user);
        let mut config: Config = merged.try_into().map_err(parse_error)?;
        config.add_implicit_builtin();
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message: merge::locate(text, &message),
        })?;
        Ok(config)
    }

    /// Declares the built-in function (and its table) when something refers to it and
    /// the config does not declare it.
    fn add_implicit_builtin(&mut self) {
        let builtin = "kinesis-to-dynamo";
        let referred = self.mappings.iter().any(|m| m.function_name == builtin)
            || self
                .routes
                .iter()
                .any(|r| r.function.as_deref() == Some(builtin));
        if !referred || self.functions.iter().any(|f| f.name == builtin) {
            return;
        }
        let Ok(default) = toml::from_str::<Config>(DEFAULT_TOML) else {
            return;
        };
        if let Some(f) = default.functions.into_iter().find(|f| f.name == builtin) {
            if let Some(table) = &f.table
                && !self.tables.iter().any(|t| &t.name == table)
                && let Some(t) = default.tables.into_iter().find(|t| &t.name == table)
            {
                self.tables.push(t);
            }
            self.functions.push(f);
        }
    }

    /// What the streams take from this config.
    pub fn streams_settings(&self) -> crate::stream::StreamsSettings {
        crate::stream::StreamsSettings {
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            sync: match self.storage.durability {
                Durability::Fsync => crate::storage::SyncMode::SyncData,
                Durability::Os => crate::storage::SyncMode::Os,
            },
            queue_records: self.storage.queue_records,
            queue_bytes: self.storage.queue_bytes,
            max_commit_records: self.storage.max_commit_records,
            commit_delay: std::time::Duration::from_millis(self.storage.commit_delay_ms),
            streams: self
                .streams
                .iter()
                .map(|s| crate::stream::DeclaredStream {
                    name: s.name.clone(),
                    shard_count: s.shard_count,
                    retention_ms: (s.retention_hours * 3_600_000.0).round() as u64,
                    enforce_limits: s.enforce_limits,
                })
                .collect(),
            lifecycle: crate::stream::Lifecycle {
                create_delay_ms: self.kinesis.create_delay_ms,
                delete_delay_ms: self.kinesis.delete_delay_ms,
                update_delay_ms: self.kinesis.update_delay_ms,
                shard_limit: self.kinesis.shard_limit,
            },
        }
    }

    /// What the tables take from this config; the key attributes as the catalog
    /// keeps them.
    pub fn tables_settings(&self) -> crate::table::TablesSettings {
        let entry_of = |k: &KeyAttributeConfig| crate::storage::KeyAttributeEntry {
            name: k.name.clone(),
            kind: k.kind.clone(),
        };
        crate::table::TablesSettings {
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            table_limit: self.dynamodb.table_limit,
            create_delay_ms: self.dynamodb.create_delay_ms,
            delete_delay_ms: self.dynamodb.delete_delay_ms,
            update_delay_ms: self.dynamodb.update_delay_ms,
            fsync: self.storage.durability == Durability::Fsync,
            tables: self
                .tables
                .iter()
                .map(|t| crate::table::DeclaredTable {
                    name: t.name.clone(),
                    hash_key: entry_of(&t.hash_key),
                    range_key: t.range_key.as_ref().map(entry_of),
                })
                .collect(),
        }
    }

    fn validate(&self) -> Result<(), String> {
        let w = &self.workers;
        if w.renew_interval_ms == 0 || w.renew_interval_ms.saturating_mul(2) > w.lease_duration_ms {
            return Err(format!(
                "[workers] renew_interval_ms ({}) must be above 0 and at most half of lease_duration_ms ({}), or leases expire between renewals",
                w.renew_interval_ms, w.lease_duration_ms
            ));
        }
        let mut names = std::collections::HashSet::new();
        for s in &self.streams {
            crate::naming::stream_name(&s.name)?;
            if !names.insert(s.name.as_str()) {
                return Err(format!("stream `{}` is declared twice", s.name));
            }
            if s.shard_count == 0 || s.shard_count > 10_000 {
                return Err(format!(
                    "stream `{}`: shard_count must be 1 to 10000, got {}",
                    s.name, s.shard_count
                ));
            }
            // Kinesis' range; tests that need records to expire move a clock instead.
            if !(24.0..=8760.0).contains(&s.retention_hours) {
                return Err(format!(
                    "stream `{}`: retention_hours must be 24 to 8760, as Kinesis allows, got {}",
                    s.name, s.retention_hours
                ));
            }
        }
        let mut table_names = std::collections::HashSet::new();
        for t in &self.tables {
            if !table_names.insert(t.name.as_str()) {
                return Err(format!("table `{}` is declared twice", t.name));
            }
            for k in std::iter::once(&t.hash_key).chain(t.range_key.as_ref()) {
                if !matches!(k.kind.as_str(), "S" | "N" | "B") {
                    return Err(format!(
                        "table `{}`: key `{}` must have type S, N or B, not `{}`",
                        t.name, k.name, k.kind
                    ));
                }
            }
        }
        let mut function_names = std::collections::HashSet::new();
        for f in &self.functions {
            if !function_names.insert(f.name.as_str()) {
                return Err(format!("function `{}` is declared twice", f.name));
            }
            if f.reserved_concurrency == 0 {
                return Err(format!(
                    "function `{}`: reserved_concurrency must be at least 1",
                    f.name
                ));
            }
            match f.kind {
                FunctionKind::KinesisToDynamo => match &f.table {
                    Some(t) if table_names.contains(t.as_str()) => {}
                    Some(t) => {
                        return Err(format!(
                            "function `{}`: table `{t}` is not declared in [[tables]]{}",
                            f.name,
                            merge::did_you_mean(t, self.tables.iter().map(|t| t.name.as_str()))
                        ));
                    }
                    None => return Err(format!("function `{}`: `table` is required", f.name)),
                },
                FunctionKind::Process | FunctionKind::Runtime => {
                    if f.command.is_empty() {
                        return Err(format!(
                            "function `{}`: kind \"{}\" needs a command",
                            f.name,
                            if f.kind == FunctionKind::Process {
                                "process"
                            } else {
                                "runtime"
                            }
                        ));
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for r in &self.routes {
            match (&r.stream, &r.function) {
                (Some(stream), None) => {
                    if !names.contains(stream.as_str()) {
                        return Err(format!(
                            "route {} {}: stream `{stream}` is not declared in [[streams]]{}",
                            r.method,
                            r.path,
                            merge::did_you_mean(stream, names.iter().copied())
                        ));
                    }
                }
                (None, Some(function)) => {
                    if !function_names.contains(function.as_str()) {
                        return Err(format!(
                            "route {} {}: function `{function}` is not declared in [[functions]]{}",
                            r.method,
                            r.path,
                            merge::did_you_mean(function, function_names.iter().copied())
                        ));
                    }
                }
                _ => {
                    return Err(format!(
                        "route {} {}: give exactly one of `stream` (buffered) or `function` (direct)",
                        r.method, r.path
                    ));
                }
            }
            if !r.path.starts_with('/') {
                return Err(format!("route path `{}` must start with /", r.path));
            }
            if r.path.starts_with("/_spillway") {
                return Err(format!(
                    "route path `{}`: /_spillway is reserved for the inspection API",
                    r.path
                ));
            }
            axum::http::Method::from_bytes(r.method.as_bytes())
                .map_err(|_| format!("route {}: `{}` is not an HTTP method", r.path, r.method))?;
            if !seen.insert((r.method.to_ascii_uppercase(), r.path.clone())) {
                return Err(format!("route {} {} is declared twice", r.method, r.path));
            }
        }
        for m in &self.mappings {
            let what = format!("mapping {} -> {}", m.event_source_arn, m.function_name);
            if !names.contains(m.stream_name()) {
                return Err(format!(
                    "{what}: stream `{}` is not declared in [[streams]]{}",
                    m.stream_name(),
                    merge::did_you_mean(m.stream_name(), names.iter().copied())
                ));
            }
            if !function_names.contains(m.function_name.as_str()) {
                return Err(format!(
                    "{what}: function `{}` is not declared in [[functions]]{}",
                    m.function_name,
                    merge::did_you_mean(&m.function_name, function_names.iter().copied())
                ));
            }
            if !(1..=10_000).contains(&m.batch_size) {
                return Err(format!("{what}: BatchSize must be 1 to 10000"));
            }
            if m.maximum_batching_window_in_seconds > 300 {
                return Err(format!(
                    "{what}: MaximumBatchingWindowInSeconds must be 0 to 300"
                ));
            }
            if !(1..=10).contains(&m.parallelization_factor) {
                return Err(format!("{what}: ParallelizationFactor must be 1 to 10"));
            }
            if !(-1..=10_000).contains(&m.maximum_retry_attempts) {
                return Err(format!("{what}: MaximumRetryAttempts must be -1 to 10000"));
            }
            // Lambda's range; tests that need a record to age move a clock instead.
            if m.maximum_record_age_in_seconds != -1
                && !(60..=604_800).contains(&m.maximum_record_age_in_seconds)
            {
                return Err(format!(
                    "{what}: MaximumRecordAgeInSeconds must be -1 or 60 to 604800"
                ));
            }
            if let Some(t) = m
                .function_response_types
                .iter()
                .find(|t| *t != "ReportBatchItemFailures")
            {
                return Err(format!("{what}: unknown FunctionResponseTypes value `{t}`"));
            }
            if m.starting_position == StartingPosition::AtTimestamp
                && m.starting_position_timestamp.is_none()
            {
                return Err(format!(
                    "{what}: StartingPosition AT_TIMESTAMP needs StartingPositionTimestamp"
                ));
            }
        }
        self.validate_security()?;
        if self.storage.queue_records == 0 || self.storage.queue_bytes < 1 << 20 {
            return Err(
                "storage.queue_records must be at least 1 and storage.queue_bytes at least 1048576"
                    .into(),
            );
        }
        if self.storage.max_commit_records == 0 {
            return Err("storage.max_commit_records must be at least 1".into());
        }
        Ok(())
    }
}

impl Config {
    fn validate_security(&self) -> Result<(), String> {
        let sec = &self.security;
        if sec.verify_signatures && sec.credentials.is_empty() {
            return Err(
                "security.verify_signatures needs at least one [[security.credentials]]".into(),
            );
        }
        let mut ids = std::collections::HashSet::new();
        for c in &sec.credentials {
            if c.access_key_id.is_empty() || c.secret_access_key.is_empty() {
                return Err(
                    "security.credentials: access_key_id and secret_access_key must not be empty"
                        .into(),
                );
            }
            if !ids.insert(c.access_key_id.as_str()) {
                return Err(format!(
                    "security.credentials: access key `{}` is declared twice",
                    c.access_key_id
                ));
            }
        }
        let mut values = std::collections::HashSet::new();
        for (i, k) in sec.api_keys.iter().enumerate() {
            let what = if k.name.is_empty() {
                format!("security.api_keys[{i}]")
            } else {
                format!("security.api_keys `{}`", k.name)
            };
            if !(20..=128).contains(&k.value.chars().count()) {
                return Err(format!("{what}: value must be 20 to 128 characters"));
            }
            if !values.insert(k.value.as_str()) {
                return Err(format!("{what}: the same value is declared twice"));
            }
            if let Some(rate) = k.rate_per_second
                && !(rate > 0.0 && rate <= 1e9)
            {
                return Err(format!("{what}: rate_per_second must be above 0"));
            }
            if k.burst == Some(0) {
                return Err(format!("{what}: burst must be at least 1"));
            }
        }
        if sec.api_keys.is_empty()
            && let Some(r) = self.routes.iter().find(|r| r.api_key_required)
        {
            return Err(format!(
                "route {} {}: api_key_required needs at least one [[security.api_keys]]",
                r.method, r.path
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_reference_setup() {
        let c = Config::default();
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.account_id, "000000000000");
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:4566");
        assert_eq!(c.streams.len(), 1);
        assert_eq!(c.streams[0].name, "example-stream");
        assert_eq!(c.streams[0].shard_count, 1);
        assert_eq!(c.routes[0].path, "/dev");
        assert_eq!(c.routes[0].partition_key, PartitionKeySource::RequestId);
        assert_eq!(c.storage.durability, Durability::Fsync);
        assert_eq!(c.tables[0].name, "example-table");
        assert_eq!(c.tables[0].hash_key.name, "ID");
        assert_eq!(c.functions[0].kind, FunctionKind::KinesisToDynamo);
        let m = &c.mappings[0];
        assert_eq!(
            (m.batch_size, m.starting_position),
            (100, StartingPosition::Latest)
        );
        assert_eq!(m.stream_name(), "example-stream");
    }

    #[test]
    fn unknown_key_is_named_with_the_file() {
        let text = DEFAULT_TOML.replace("shard_count = 1", "shard_count = 1\nshards = 2");
        let err = Config::parse(&text, Path::new("my.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("my.toml"), "{err}");
        assert!(err.contains("shards"), "{err}");
    }

    #[test]
    fn partition_key_sources_parse() {
        let text = DEFAULT_TOML.replace(
            "partition_key = { from = \"request_id\" }",
            "partition_key = { from = \"json_field\", field = \"user\" }",
        );
        let c = Config::parse(&text, Path::new("x.toml")).unwrap();
        assert_eq!(
            c.routes[0].partition_key,
            PartitionKeySource::JsonField {
                field: "user".into()
            }
        );
    }

    #[test]
    fn mapping_limits_are_checked() {
        for (from, to) in [
            ("BatchSize = 100", "BatchSize = 10001"),
            ("ParallelizationFactor = 1", "ParallelizationFactor = 11"),
            ("MaximumRetryAttempts = -1", "MaximumRetryAttempts = -2"),
            (
                "FunctionResponseTypes = []",
                "FunctionResponseTypes = [\"Nope\"]",
            ),
        ] {
            let text = DEFAULT_TOML.replace(from, to);
            assert!(Config::parse(&text, Path::new("x.toml")).is_err(), "{to}");
        }
        let arn = DEFAULT_TOML.replace(
            "EventSourceArn = \"example-stream\"",
            "EventSourceArn = \"arn:aws:kinesis:us-east-1:000000000000:stream/example-stream\"",
        );
        assert!(Config::parse(&arn, Path::new("x.toml")).is_ok());
    }

    #[test]
    fn route_to_missing_stream_is_rejected() {
        let text = DEFAULT_TOML.replace("stream = \"example-stream\"", "stream = \"nope\"");
        let err = Config::parse(&text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn security_is_off_by_default_and_checked_when_on() {
        let c = Config::default();
        assert!(!c.security.verify_signatures);
        assert!(!c.routes[0].api_key_required);
        // A config file without a [security] section still loads.
        let start = DEFAULT_TOML.find("[security]").unwrap();
        let end = DEFAULT_TOML.find("# Streams:").unwrap();
        let without = format!("{}{}", &DEFAULT_TOML[..start], &DEFAULT_TOML[end..]);
        assert!(Config::parse(&without, Path::new("x.toml")).is_ok());

        let on = DEFAULT_TOML.replace("verify_signatures = false", "verify_signatures = true");
        let err = Config::parse(&on, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("security.credentials"), "{err}");
        let keyless = DEFAULT_TOML.replace("api_key_required = false", "api_key_required = true");
        let err = Config::parse(&keyless, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_key_required"), "{err}");
        let short = keyless.replace(
            "verify_signatures = false",
            "[[security.api_keys]]\nvalue = \"short\"",
        );
        let err = Config::parse(&short, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("20 to 128"), "{err}");
        let good = keyless.replace(
            "verify_signatures = false",
            "[[security.api_keys]]\nvalue = \"0123456789abcdefghij\"\nrate_per_second = 2.5",
        );
        let c = Config::parse(&good, Path::new("x.toml")).unwrap();
        assert_eq!(c.security.api_keys[0].burst_size(), 3);
        assert!(!format!("{c:?}").contains("0123456789abcdefghij"));
    }
}
