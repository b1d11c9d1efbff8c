//! Streams: the Kinesis data model on one machine.
//!
//! A stream is a set of shards; each shard owns a contiguous range of the 128-bit
//! hash-key space and an ordered, durable log of records. This module places records
//! (MD5 of the partition key, or an explicit hash key), enforces Kinesis' record limits,
//! turns the positions the engine assigns (`storage::group_commit`) into sequence
//! numbers, resolves iterator positions and serves reads. It knows nothing of HTTP.

pub mod admin;
pub mod hash;
pub mod limits;
pub mod retention;
pub mod sequence;
pub mod settings;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;

pub use self::hash::HashKeyRange;
pub use self::sequence::SequenceNumber;
use crate::storage::group_commit::{AppendError, LogShard};
pub use crate::storage::group_commit::{CommitStats, GroupCommit, GroupCommitSettings};
use crate::storage::{
    ShardCatalogEntry, ShardKey, ShardTip, StorageError, StreamCatalogEntry, StreamStore, SyncMode,
};

/// Largest record: data plus partition key, in bytes (Kinesis: 1 MiB).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Longest partition key, in characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;
/// Most records one read returns.
pub const MAX_READ_RECORDS: usize = 10_000;
/// Most data bytes one read returns (Kinesis GetRecords: 10 MiB).
pub const MAX_READ_BYTES: usize = 10 * 1024 * 1024;

/// Errors of the stream domain. Each edge maps them to its wire format in one place.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("Stream {name} under account {account} not found.")]
    StreamNotFound { name: String, account: String },
    #[error("Shard {shard_id} in stream {stream} under account {account} does not exist")]
    ShardNotFound {
        shard_id: String,
        stream: String,
        account: String,
    },
    #[error("{0}")]
    InvalidArgument(String),
    #[error(
        "Record of {size} bytes (data plus partition key) exceeds the limit of {MAX_RECORD_BYTES} bytes"
    )]
    RecordTooLarge { size: usize },
    #[error("Too many appends are waiting for storage; retry shortly")]
    Overloaded,
    #[error("Rate exceeded for shard {shard_id} in stream {stream} under account {account}.")]
    ThroughputExceeded {
        shard_id: String,
        stream: String,
        account: String,
    },
    #[error("spillway is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    LimitExceeded(String),
    /// Another missing resource (an enhanced fan-out consumer).
    #[error("{0}")]
    ResourceNotFound(String),
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    use crate::clock::Clock;
    crate::clock::SystemClock.now_ms()
}

/// Checks a stream name as Kinesis does: 1-128 characters of `[a-zA-Z0-9_.-]`.
pub fn validate_stream_name(name: &str) -> Result<(), StreamError> {
    crate::naming::stream_name(name).map_err(StreamError::InvalidArgument)
}

/// The catalog entries of a new stream's `count` shards, split as Kinesis splits them.
pub fn fresh_shards(count: u32) -> Vec<ShardCatalogEntry> {
    hash::even_ranges(count)
        .into_iter()
        .enumerate()
        .map(|(i, r)| ShardCatalogEntry {
            index: i as u32,
            starting_hash_key: r.start.to_string(),
            ending_hash_key: r.end.to_string(),
            parents: Vec::new(),
            closed: false,
            ending_counter: None,
        })
        .collect()
}

/// Renders a shard id as Kinesis does: `shardId-` and 12 digits.
pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// A shard at run time: its identity, its hash range and its published durable tip.
#[derive(Debug)]
pub struct ShardState {
    pub key: ShardKey,
    pub shard_id: String,
    pub range: HashKeyRange,
    /// The engine's log of this shard: it assigns counters and moves the durable tip.
    log: Arc<LogShard>,
    /// Kinesis' write limits, when the stream enforces them.
    limiter: Option<std::sync::Mutex<limits::WriteLimiter>>,
    /// Kinesis' read limits (GetRecords), when the stream enforces them.
    read_limiter: Option<std::sync::Mutex<limits::ReadLimiter>>,
    /// Closed by a reshard: appends go to its children.
    closed: std::sync::atomic::AtomicBool,
    /// For a closed shard, the counter past its last record; u64::MAX until known.
    ending: AtomicU64,
    /// Indices of the shards this one came from.
    pub parents: Vec<u32>,
    /// CloudWatch's per-shard counters, read by `/metrics`.
    pub counters: ShardCounters,
}

/// Kinesis' shard-level CloudWatch metrics, as counters since this process started
/// (or since a reshard rebuilt the shard's state).
#[derive(Debug, Default)]
pub struct ShardCounters {
    /// Records acknowledged (IncomingRecords).
    pub incoming_records: AtomicU64,
    /// Data and partition key bytes acknowledged (IncomingBytes).
    pub incoming_bytes: AtomicU64,
    /// Appends refused by the shard's write limits (WriteProvisionedThroughputExceeded).
    pub write_throttled: AtomicU64,
    /// GetRecords calls refused by its read limits (ReadProvisionedThroughputExceeded).
    pub read_throttled: AtomicU64,
}

impl ShardState {
    /// A receiver that changes whenever new records become durable in this shard (and
    /// when the shard closes).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<ShardTip> {
        self.log.watch()
    }

    /// The durable tip, as the engine last moved it.
    pub fn tip(&self) -> ShardTip {
        self.log.tip()
    }

    /// For a stream with `enforce_limits`: takes one GetRecords call from the shard's
    /// read budget, or refuses it.
    pub fn try_begin_read(&self) -> bool {
        let allowed = self.read_limiter.as_ref().is_none_or(|l| {
            l.lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_begin(std::time::Instant::now())
        });
        if !allowed {
            self.counters.read_throttled.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    /// Charges a GetRecords' returned bytes to the shard's read budget.
    pub fn charge_read(&self, bytes: usize) {
        if let Some(l) = &self.read_limiter {
            l.lock().unwrap_or_else(|p| p.into_inner()).charge(bytes);
        }
    }

    /// Open for appends.
    pub fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    /// For a closed shard whose last record is known: the counter past it.
    pub fn ending(&self) -> Option<u64> {
        match self.ending.load(Ordering::Acquire) {
            u64::MAX => None,
            e => Some(e),
        }
    }

    pub fn sequence_number(&self, counter: u64) -> SequenceNumber {
        SequenceNumber {
            stream_id: self.key.stream_id,
            shard_index: self.key.shard_index,
            counter,
        }
    }
}

/// A stream at run time.
#[derive(Debug)]
pub struct StreamState {
    pub name: String,
    pub arn: String,
    pub stream_id: u32,
    pub created_ms: u64,
    retention_ms: AtomicU64,
    pub shards: Vec<Arc<ShardState>>,
    status: std::sync::atomic::AtomicU8,
    tags: std::sync::Mutex<BTreeMap<String, String>>,
    /// Mode, encryption, monitoring, consumers (`stream::settings`).
    settings: std::sync::Mutex<crate::storage::StreamSettings>,
    shard_entries: Vec<ShardCatalogEntry>,
    /// Appends hold it shared from routing to enqueue; a reshard holds it exclusively
    /// while it closes shards, so no append can slip into a shard being closed. Shared
    /// by the states a stream has over its reshards.
    routing: Arc<RwLock<()>>,
}

impl StreamState {
    /// The shards split or merged from `parent`, which continue it once it is closed.
    pub fn children_of(&self, parent: u32) -> Vec<Arc<ShardState>> {
        self.shards
            .iter()
            .filter(|s| s.parents.contains(&parent))
            .cloned()
            .collect()
    }

    /// CREATING, ACTIVE, DELETING or UPDATING.
    pub fn status(&self) -> StreamStatus {
        StreamStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    fn set_status(&self, s: StreamStatus) {
        self.status.store(s as u8, Ordering::Release);
    }

    /// The stream's tags.
    pub fn tags(&self) -> BTreeMap<String, String> {
        self.tags.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The catalog entry describing this stream now.
    fn catalog_entry(&self) -> StreamCatalogEntry {
        let mut shards = self.shard_entries.clone();
        for (e, s) in shards.iter_mut().zip(&self.shards) {
            e.closed = !s.is_open();
            e.ending_counter = s.ending();
        }
        StreamCatalogEntry {
            stream_id: self.stream_id,
            name: self.name.clone(),
            created_ms: self.created_ms,
            retention_ms: self.retention_ms(),
            shards,
            tags: self.tags(),
            settings: self.settings(),
        }
    }

    /// The stream's mode, encryption, monitoring and consumers.
    pub fn settings(&self) -> crate::storage::StreamSettings {
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn retention_ms(&self) -> u64 {
        self.retention_ms.load(Ordering::Relaxed)
    }

    /// The shard whose hash range holds `hash`.
    /// The open shard whose hash range holds `hash`.
    fn shard_for_hash(&self, hash: u128) -> Option<&Arc<ShardState>> {
        self.shards
            .iter()
            .find(|s| s.is_open() && s.range.contains(hash))
    }
}

/// A stream's lifecycle state, as Kinesis' StreamStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamStatus {
    Creating = 0,
    Active = 1,
    Deleting = 2,
    Updating = 3,
}

impl StreamStatus {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Creating,
            2 => Self::Deleting,
            3 => Self::Updating,
            _ => Self::Active,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "CREATING",
            Self::Active => "ACTIVE",
            Self::Deleting => "DELETING",
            Self::Updating => "UPDATING",
        }
    }
}

/// The answer to a durable append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub shard_id: String,
    pub sequence_number: String,
    pub arrival_ms: u64,
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the shard (the sequence number's counter).
    pub counter: u64,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Bytes,
    pub arrival_ms: u64,
}

/// Where to start reading a shard, as Kinesis' ShardIteratorType.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPosition {
    TrimHorizon,
    Latest,
    AtSequenceNumber(String),
    AfterSequenceNumber(String),
    /// Unix epoch milliseconds.
    AtTimestamp(u64),
}

/// A read of one shard as GetRecords and SubscribeToShard answer it.
#[derive(Debug, Clone)]
pub struct ShardPage {
    pub batch: ReadBatch,
    /// The shard is closed and read to its end: nothing more will come from it, and
    /// `children` continue it.
    pub finished: bool,
    pub children: Vec<Arc<ShardState>>,
}

/// A batch of records read from one shard.
#[derive(Debug, Clone)]
pub struct ReadBatch {
    pub records: Vec<Record>,
    /// Counter to continue from.
    pub next_counter: u64,
    pub millis_behind_latest: u64,
}

/// A summary of one shard, for inspection.
#[derive(Debug, Clone)]
pub struct ShardSummary {
    pub shard_id: String,
    pub range: HashKeyRange,
    pub records: u64,
    pub first_sequence_number: Option<String>,
    pub last_sequence_number: Option<String>,
    pub last_arrival_ms: Option<u64>,
}

/// A summary of one stream, for inspection.
#[derive(Debug, Clone)]
pub struct StreamSummary {
    pub name: String,
    pub arn: String,
    pub created_ms: u64,
    pub retention_hours: f64,
    pub shards: Vec<ShardSummary>,
}

/// What [`Streams`] takes from the configuration, built by
/// `crate::config::Config::streams_settings`: the stream domain never reads the TOML
/// schema, and a config key renamed changes nothing here.
#[derive(Debug, Clone)]
pub struct StreamsSettings {
    pub region: String,
    pub account_id: String,
    /// When an append is durable (`[storage] durability`).
    pub sync: SyncMode,
    pub queue_records: usize,
    pub queue_bytes: usize,
    pub max_commit_records: usize,
    /// Fault injection: a pause before each commit.
    pub commit_delay: Duration,
    /// The streams the configuration declares (created at start when missing).
    pub streams: Vec<DeclaredStream>,
    pub lifecycle: Lifecycle,
}

/// A stream the configuration declares.
#[derive(Debug, Clone)]
pub struct DeclaredStream {
    pub name: String,
    pub shard_count: u32,
    pub retention_ms: u64,
    /// Apply Kinesis' per-shard write limits.
    pub enforce_limits: bool,
}

/// The control plane's timing and the account's shard limit (`[kinesis]`).
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    /// How long a new stream stays CREATING.
    pub create_delay_ms: u64,
    /// How long a deleted stream stays DELETING.
    pub delete_delay_ms: u64,
    /// How long a reshard or retention change keeps a stream UPDATING.
    pub update_delay_ms: u64,
    /// Open shards allowed in the account.
    pub shard_limit: u32,
}

/// All streams of this process, the engine's shard logs and its store.
pub struct Streams {
    store: Arc<dyn StreamStore>,
    log: GroupCommit,
    region: String,
    account_id: String,
    by_name: RwLock<BTreeMap<String, Arc<StreamState>>>,
    lifecycle: Lifecycle,
    /// Arrival times, retention, iterator age and lifecycle windows read it.
    clock: crate::clock::SharedClock,
    /// True once the server stops: readers that hold a response open end it.
    draining: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Streams {
    /// Loads the catalog, creates the configured streams that do not exist yet, and
    /// starts the engine's group commit.
    pub fn open(
        store: Arc<dyn StreamStore>,
        settings: &StreamsSettings,
    ) -> Result<Self, StreamError> {
        Self::open_with_clock(store, settings, crate::clock::system())
    }

    /// [`Self::open`] on the given clock (tests move a [`crate::clock::ManualClock`]).
    pub fn open_with_clock(
        store: Arc<dyn StreamStore>,
        config: &StreamsSettings,
        clock: crate::clock::SharedClock,
    ) -> Result<Self, StreamError> {
        let settings = GroupCommitSettings {
            clock: Arc::clone(&clock),
            sync: config.sync,
            queue_records: config.queue_records,
            queue_bytes: config.queue_bytes,
            max_commit_records: config.max_commit_records,
            commit_delay: config.commit_delay,
            observe: observe_commit,
        };
        let mut catalog: BTreeMap<String, StreamCatalogEntry> = store
            .load_catalog()?
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect();
        for sc in &config.streams {
            let retention_ms = sc.retention_ms;
            match catalog.get_mut(&sc.name) {
                Some(entry) => {
                    let resharded = entry.shards.iter().any(|s| !s.parents.is_empty());
                    if !resharded && entry.shards.len() != sc.shard_count as usize {
                        return Err(StreamError::Config(format!(
                            "stream `{}` exists in the data dir with {} shards but the config says {}; \
                             change the config back or use a new data dir",
                            sc.name,
                            entry.shards.len(),
                            sc.shard_count
                        )));
                    }
                    let open = entry.shards.iter().filter(|s| !s.closed).count();
                    if resharded && open != sc.shard_count as usize {
                        // Resharding through the API is durable; the data dir's layout wins.
                        tracing::warn!(
                            stream = %sc.name,
                            open_shards = open,
                            config_shard_count = sc.shard_count,
                            "the stream was resharded through the Kinesis API; its open shards, not the config's shard_count, are used"
                        );
                    }
                    if entry.retention_ms != retention_ms {
                        entry.retention_ms = retention_ms;
                        store.put_stream(entry)?;
                    }
                }
                None => {
                    let entry = StreamCatalogEntry {
                        stream_id: store.allocate_stream_id()?,
                        name: sc.name.clone(),
                        created_ms: clock.now_ms(),
                        retention_ms,
                        shards: fresh_shards(sc.shard_count),
                        tags: BTreeMap::new(),
                        settings: Default::default(),
                    };
                    store.put_stream(&entry)?;
                    tracing::info!(stream = %entry.name, shards = sc.shard_count, "created stream");
                    catalog.insert(entry.name.clone(), entry);
                }
            }
        }
        let log = GroupCommit::start(Arc::clone(&store), settings);
        let mut by_name = BTreeMap::new();
        for entry in catalog.into_values() {
            let enforce = config
                .streams
                .iter()
                .any(|s| s.name == entry.name && s.enforce_limits);
            let state = Self::state_from_catalog(
                &log,
                &entry,
                &config.region,
                &config.account_id,
                enforce,
            )?;
            by_name.insert(entry.name.clone(), Arc::new(state));
        }
        Ok(Self {
            log,
            store,
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            by_name: RwLock::new(by_name),
            lifecycle: config.lifecycle.clone(),
            clock,
            draining: tokio::sync::watch::Sender::new(false),
        })
    }

    fn state_from_catalog(
        log: &GroupCommit,
        entry: &StreamCatalogEntry,
        region: &str,
        account: &str,
        enforce_limits: bool,
    ) -> Result<StreamState, StreamError> {
        let mut shards = Vec::with_capacity(entry.shards.len());
        for s in &entry.shards {
            let key = ShardKey {
                stream_id: entry.stream_id,
                shard_index: s.index,
            };
            let parse = |t: &str| {
                t.parse::<u128>()
                    .map_err(|_| StorageError::Corrupt(format!("hash key `{t}` of {}", entry.name)))
            };
            let log = log.shard(key)?;
            let tip = log.tip();
            shards.push(Arc::new(ShardState {
                key,
                shard_id: shard_id(s.index),
                range: HashKeyRange {
                    start: parse(&s.starting_hash_key)?,
                    end: parse(&s.ending_hash_key)?,
                },
                log,
                limiter: enforce_limits
                    .then(|| std::sync::Mutex::new(limits::WriteLimiter::default())),
                read_limiter: enforce_limits
                    .then(|| std::sync::Mutex::new(limits::ReadLimiter::default())),
                closed: std::sync::atomic::AtomicBool::new(s.closed),
                // A shard closed before a crash, its end not yet recorded: nothing can
                // be appended to it any more, so its tip is its end.
                ending: AtomicU64::new(if s.closed {
                    s.ending_counter.unwrap_or(tip.next_counter)
                } else {
                    u64::MAX
                }),
                counters: ShardCounters::default(),
                parents: s.parents.clone(),
            }));
        }
        Ok(StreamState {
            name: entry.name.clone(),
            arn: format!("arn:aws:kinesis:{region}:{account}:stream/{}", entry.name),
            stream_id: entry.stream_id,
            created_ms: entry.created_ms,
            retention_ms: AtomicU64::new(entry.retention_ms),
            shards,
            status: std::sync::atomic::AtomicU8::new(StreamStatus::Active as u8),
            tags: std::sync::Mutex::new(entry.tags.clone()),
            settings: std::sync::Mutex::new(entry.settings.clone()),
            shard_entries: entry.shards.clone(),
            routing: Arc::new(RwLock::new(())),
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Every stream, by name.
    pub fn all(&self) -> Vec<Arc<StreamState>> {
        self.by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The stream called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<StreamState>, StreamError> {
        self.by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| StreamError::StreamNotFound {
                name: name.to_owned(),
                account: self.account_id.clone(),
            })
    }

    pub fn shard(
        &self,
        stream: &StreamState,
        shard_id: &str,
    ) -> Result<Arc<ShardState>, StreamError> {
        stream
            .shards
            .iter()
            .find(|s| s.shard_id == shard_id)
            .cloned()
            .ok_or_else(|| StreamError::ShardNotFound {
                shard_id: shard_id.to_owned(),
                stream: stream.name.clone(),
                account: self.account_id.clone(),
            })
    }

    /// Appends one record and returns once it is durable.
    pub async fn append(
        &self,
        stream_name: &str,
        partition_key: String,
        explicit_hash_key: Option<&str>,
        data: Bytes,
    ) -> Result<Appended, StreamError> {
        let stream = self.get_readable(stream_name)?;
        let pk_chars = partition_key.chars().count();
        if !(1..=MAX_PARTITION_KEY_CHARS).contains(&pk_chars) {
            return Err(StreamError::InvalidArgument(format!(
                "Partition key must be 1 to {MAX_PARTITION_KEY_CHARS} characters long, got {pk_chars}"
            )));
        }
        let size = data.len() + partition_key.len();
        if size > MAX_RECORD_BYTES {
            return Err(StreamError::RecordTooLarge { size });
        }
        let hash = match explicit_hash_key {
            Some(text) => hash::parse_explicit_hash_key(text)?,
            None => hash::partition_key_hash(&partition_key),
        };
        // Route and enqueue under the stream's routing lock; a shard closed by a reshard
        // since we looked the stream up sends us back for its new shard list.
        let mut stream = stream;
        let (shard, answer) = loop {
            let routing = Arc::clone(&stream.routing);
            let _shared = routing.read().unwrap_or_else(|p| p.into_inner());
            let Some(shard) = stream.shard_for_hash(hash).cloned() else {
                drop(_shared);
                stream = self.get_readable(stream_name)?;
                continue;
            };
            if let Some(limiter) = &shard.limiter {
                let ok = limiter
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .try_take(size, std::time::Instant::now());
                if !ok {
                    shard
                        .counters
                        .write_throttled
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(StreamError::ThroughputExceeded {
                        shard_id: shard.shard_id.clone(),
                        stream: stream.name.clone(),
                        account: self.account_id.clone(),
                    });
                }
            }
            let answer = self
                .log
                .append(&shard.log, partition_key, data)
                .map_err(|e| match e {
                    AppendError::Overloaded => StreamError::Overloaded,
                    AppendError::Stopped => StreamError::ShuttingDown,
                })?;
            break (shard, answer);
        };
        let c = answer.await.map_err(|_| StreamError::ShuttingDown)??;
        shard
            .counters
            .incoming_records
            .fetch_add(1, Ordering::Relaxed);
        shard
            .counters
            .incoming_bytes
            .fetch_add(size as u64, Ordering::Relaxed);
        Ok(Appended {
            shard_id: shard.shard_id.clone(),
            sequence_number: shard.sequence_number(c.counter).to_string(),
            arrival_ms: c.arrival_ms,
        })
    }

    /// Resolves a start position in a shard to the counter a read starts from.
    pub fn resolve(
        &self,
        stream_name: &str,
        shard_id: &str,
        position: &StartPosition,
    ) -> Result<u64, StreamError> {
        let stream = self.get(stream_name)?;
        let shard = self.shard(&stream, shard_id)?;
        self.resolve_in_shard(&shard, position)
    }

    /// Resolves a start position in `shard` to the counter a read starts from.
    pub fn resolve_in_shard(
        &self,
        shard: &ShardState,
        position: &StartPosition,
    ) -> Result<u64, StreamError> {
        let tip = shard.tip();
        let check = |text: &str| -> Result<u64, StreamError> {
            let seq = SequenceNumber::parse(text)?;
            if seq.stream_id != shard.key.stream_id || seq.shard_index != shard.key.shard_index {
                return Err(StreamError::InvalidArgument(format!(
                    "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
                    shard_id_of(&seq),
                    shard.shard_id
                )));
            }
            Ok(seq.counter)
        };
        Ok(match position {
            StartPosition::TrimHorizon => self
                .store
                .first_counter(shard.key)?
                .unwrap_or(tip.next_counter)
                .min(tip.next_counter),
            StartPosition::Latest => tip.next_counter,
            StartPosition::AtSequenceNumber(s) => check(s)?,
            StartPosition::AfterSequenceNumber(s) => check(s)?.saturating_add(1),
            StartPosition::AtTimestamp(ts) => self.first_at_or_after(shard, *ts)?,
        })
    }

    /// Binary search for the first record that arrived at or after `ts`; arrival times
    /// never decrease within a shard, so the search is valid.
    fn first_at_or_after(&self, shard: &ShardState, ts: u64) -> Result<u64, StreamError> {
        let end = shard.tip().next_counter;
        let mut lo = self.store.first_counter(shard.key)?.unwrap_or(end).min(end);
        let mut hi = end;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.store.read(shard.key, mid, end, 1, usize::MAX)?.first() {
                Some(r) if r.arrival_ms >= ts => hi = mid,
                Some(r) => lo = r.counter + 1,
                None => hi = mid,
            }
        }
        Ok(lo)
    }

    /// Reads up to `limit` durable records of a shard from counter `from`.
    pub fn read(
        &self,
        stream_name: &str,
        shard_id: &str,
        from: u64,
        limit: usize,
    ) -> Result<ReadBatch, StreamError> {
        let stream = self.get(stream_name)?;
        let shard = self.shard(&stream, shard_id)?;
        self.read_shard(&shard, from, limit)
    }

    /// Reads up to `limit` durable records of `shard` (of `stream`) from counter `from`,
    /// and whether that read the closed shard to its end, naming its children then.
    pub fn read_page(
        &self,
        stream: &StreamState,
        shard: &ShardState,
        from: u64,
        limit: usize,
    ) -> Result<ShardPage, StreamError> {
        let batch = self.read_shard(shard, from, limit)?;
        let finished = shard.ending().is_some_and(|end| batch.next_counter >= end);
        let children = if finished {
            stream.children_of(shard.key.shard_index)
        } else {
            Vec::new()
        };
        Ok(ShardPage {
            batch,
            finished,
            children,
        })
    }

    /// Reads up to `limit` durable records of `shard` from counter `from`.
    pub fn read_shard(
        &self,
        shard: &ShardState,
        from: u64,
        limit: usize,
    ) -> Result<ReadBatch, StreamError> {
        let tip = shard.tip();
        let limit = limit.clamp(1, MAX_READ_RECORDS);
        let stored = self
            .store
            .read(shard.key, from, tip.next_counter, limit, MAX_READ_BYTES)?;
        let next_counter = stored.last().map_or(from, |r| r.counter + 1);
        let millis_behind_latest = if next_counter >= tip.next_counter {
            0
        } else {
            let last = stored.last().map_or(tip.last_arrival_ms, |r| r.arrival_ms);
            self.clock.now_ms().saturating_sub(last)
        };
        let records = stored
            .into_iter()
            .map(|r| Record {
                counter: r.counter,
                sequence_number: shard.sequence_number(r.counter).to_string(),
                partition_key: r.partition_key,
                data: r.data,
                arrival_ms: r.arrival_ms,
            })
            .collect();
        Ok(ReadBatch {
            records,
            next_counter,
            millis_behind_latest,
        })
    }

    /// The last `n` durable records of a shard, oldest first.
    pub fn last_records(
        &self,
        stream_name: &str,
        shard_id: &str,
        n: usize,
    ) -> Result<Vec<Record>, StreamError> {
        let stream = self.get(stream_name)?;
        let shard = self.shard(&stream, shard_id)?;
        let next = shard.tip().next_counter;
        let from = next.saturating_sub(n as u64);
        Ok(self.read(stream_name, shard_id, from, n)?.records)
    }

    /// Shards, counts and tips of one stream.
    pub fn summary(&self, stream_name: &str) -> Result<StreamSummary, StreamError> {
        let stream = self.get(stream_name)?;
        let mut shards = Vec::with_capacity(stream.shards.len());
        for shard in &stream.shards {
            let tip = shard.tip();
            let first = self
                .store
                .first_counter(shard.key)?
                .filter(|f| *f < tip.next_counter);
            let records = first.map_or(0, |f| tip.next_counter - f);
            shards.push(ShardSummary {
                shard_id: shard.shard_id.clone(),
                range: shard.range,
                records,
                first_sequence_number: first.map(|f| shard.sequence_number(f).to_string()),
                last_sequence_number: first
                    .map(|_| shard.sequence_number(tip.next_counter - 1).to_string()),
                last_arrival_ms: first.map(|_| tip.last_arrival_ms),
            });
        }
        Ok(StreamSummary {
            name: stream.name.clone(),
            arn: stream.arn.clone(),
            created_ms: stream.created_ms,
            retention_hours: stream.retention_ms() as f64 / 3_600_000.0,
            shards,
        })
    }

    /// Deletes records older than each stream's retention; returns how many.
    pub fn trim_expired(&self) -> Result<u64, StreamError> {
        let now = self.clock.now_ms();
        let mut removed = 0;
        for stream in self.all() {
            let cutoff = now.saturating_sub(stream.retention_ms());
            for shard in &stream.shards {
                removed += self.store.trim(shard.key, cutoff)?;
            }
        }
        Ok(removed)
    }

    /// Whether storage takes writes now (and, for an engine that recovers by itself,
    /// a chance to try).
    pub fn storage_health(&self) -> crate::storage::EngineHealth {
        self.store.health()
    }

    /// Counters of the engine's group commit.
    pub fn commit_stats(&self) -> &CommitStats {
        self.log.stats()
    }

    /// The clock of arrival times: whatever compares a time with a record's arrival
    /// (a mapping's record age, iterator age) reads this one.
    pub fn clock(&self) -> &crate::clock::SharedClock {
        &self.clock
    }

    /// Tells readers that hold a response open (SubscribeToShard) to end it: the server
    /// is stopping.
    pub fn begin_drain(&self) {
        self.draining.send_replace(true);
    }

    /// Becomes true when the server stops ([`Self::begin_drain`]).
    pub fn draining(&self) -> tokio::sync::watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// Stops taking appends and commits what is queued. Blocks; call off the runtime.
    pub fn shutdown(&self) {
        self.log.stop();
    }
}

/// The engine's commits in `/metrics`: the durability point's time, and the group
/// commit's size when it succeeded.
fn observe_commit(seconds: f64, records: Option<usize>) {
    let instruments = crate::metrics::instruments();
    instruments.commit_fsync_seconds.observe(seconds);
    if let Some(n) = records {
        instruments.commit_records.observe(n as f64);
    }
}

fn shard_id_of(seq: &SequenceNumber) -> String {
    shard_id(seq.shard_index)
}

#[cfg(test)]
mod tests {
    use super::*;
    // Tests build their settings from a config text, as `spillway serve` does.
    use crate::config::Config;
    use crate::storage::fjall_engine::FjallStore;

    fn four_shard_streams(dir: &std::path::Path) -> Streams {
        let text = crate::config::DEFAULT_TOML.replace("shard_count = 1", "shard_count = 4");
        let config = Config::parse(&text, std::path::Path::new("test.toml")).unwrap();
        let store = Arc::new(FjallStore::open(dir).unwrap());
        Streams::open(store, &config.streams_settings()).unwrap()
    }

    #[tokio::test]
    async fn explicit_hash_key_overrides_the_partition_key() {
        let dir = tempfile::tempdir().unwrap();
        let streams = four_shard_streams(dir.path());
        // "a" hashes into shard 0 (md5 starts 0x0c...); explicit keys pick any shard.
        let plain = streams
            .append("example-stream", "a".into(), None, Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(plain.shard_id, "shardId-000000000000");
        for (key, shard) in [
            (
                "255211775190703847597530955573826158592",
                "shardId-000000000003",
            ),
            (
                "170141183460469231731687303715884105727",
                "shardId-000000000001",
            ),
            ("0", "shardId-000000000000"),
        ] {
            let a = streams
                .append(
                    "example-stream",
                    "a".into(),
                    Some(key),
                    Bytes::from_static(b"x"),
                )
                .await
                .unwrap();
            assert_eq!(a.shard_id, shard, "hash key {key}");
        }
        let err = streams
            .append(
                "example-stream",
                "a".into(),
                Some("340282366920938463463374607431768211456"),
                Bytes::from_static(b"x"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StreamError::InvalidArgument(_)), "{err}");
        streams.shutdown();
    }

    /// Appends record `i` (`record {i}`, partition key `pk-{i}`) to `example-stream`.
    async fn append_numbered(streams: &Streams, i: u32) -> Result<Appended, StreamError> {
        streams
            .append(
                "example-stream",
                format!("pk-{i}"),
                None,
                Bytes::from(format!("record {i}")),
            )
            .await
    }

    /// Appends `n` records at once on a store that models a machine crash, under
    /// `durability`, crashes once every append was acknowledged, and returns how many of
    /// the acknowledged records a restarted spillway reads back.
    async fn acknowledged_left_after_a_power_loss(durability: &str, n: usize) -> usize {
        use crate::storage::memory_engine::MemoryStore;
        let text = crate::config::DEFAULT_TOML.replace(
            "durability = \"fsync\"",
            &format!("durability = \"{durability}\""),
        );
        let config = Config::parse(&text, std::path::Path::new("test.toml")).unwrap();
        let store = Arc::new(MemoryStore::with_crash_model());
        let streams = Streams::open(
            Arc::clone(&store) as Arc<dyn StreamStore>,
            &config.streams_settings(),
        )
        .unwrap();
        let appends = (0..n).map(|i| append_numbered(&streams, i as u32));
        let acked: Vec<String> = futures_util::future::join_all(appends)
            .await
            .into_iter()
            .map(|a| a.unwrap().sequence_number)
            .collect();
        tokio::task::block_in_place(|| streams.shutdown());
        store.crash();
        let restarted = Streams::open(store, &config.streams_settings()).unwrap();
        let read = restarted
            .read("example-stream", "shardId-000000000000", 0, 10_000)
            .unwrap();
        let kept: std::collections::HashSet<String> = read
            .records
            .into_iter()
            .map(|r| r.sequence_number)
            .collect();
        tokio::task::block_in_place(|| restarted.shutdown());
        acked.iter().filter(|s| kept.contains(*s)).count()
    }

    /// The promise behind a 200: with `durability = "fsync"` a power loss keeps every
    /// acknowledged record. kill -9 keeps the page cache, so only a crash model can
    /// catch an acknowledgement given before the sync.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_records_survive_a_power_loss_with_fsync() {
        assert_eq!(
            acknowledged_left_after_a_power_loss("fsync", 300).await,
            300
        );
    }

    /// And the test above can fail: with `durability = "os"` the same crash loses
    /// acknowledged records (the config documents this: "not of the machine").
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn os_durability_loses_acknowledged_records_in_a_power_loss() {
        assert_eq!(acknowledged_left_after_a_power_loss("os", 300).await, 0);
    }

    /// A full disk (or a failing fsync) refuses appends with the storage error, shows in
    /// the engine's health and the commit counters, leaves no gap in the shard's
    /// counters, and appends work again once writes do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_disk_refuses_appends_until_it_takes_writes_again() {
        use crate::storage::memory_engine::MemoryStore;
        let config = Config::default();
        let store = Arc::new(MemoryStore::new());
        let streams = Streams::open(
            Arc::clone(&store) as Arc<dyn StreamStore>,
            &config.streams_settings(),
        )
        .unwrap();
        let append = |i: u32| append_numbered(&streams, i);
        append(0).await.unwrap();
        store.fail_writes(Some(StorageError::Full("No space left on device".into())));
        let err = append(1).await.unwrap_err();
        assert!(
            matches!(err, StreamError::Storage(StorageError::Full(_))),
            "{err}"
        );
        let health = streams.storage_health();
        assert!(!health.writable);
        assert!(health.last_error.unwrap().contains("No space left"));
        assert_eq!(
            streams
                .commit_stats()
                .failed_commits
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        store.fail_writes(None);
        append(2).await.unwrap();
        assert!(streams.storage_health().writable);
        let read = streams
            .read("example-stream", "shardId-000000000000", 0, 100)
            .unwrap();
        let got: Vec<(u64, &[u8])> = read
            .records
            .iter()
            .map(|r| (r.counter, r.data.as_ref()))
            .collect();
        assert_eq!(got, [(0, &b"record 0"[..]), (1, &b"record 2"[..])]);
        tokio::task::block_in_place(|| streams.shutdown());
    }

    /// Retention as AWS has it, 24 hours, without waiting a day: the clock moves. Records
    /// stay until they are older than the retention, then go; later records keep rising
    /// sequence numbers, and a read from the start begins after the trimmed ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_older_than_the_retention_are_trimmed_when_the_clock_passes_it() {
        use crate::clock::ManualClock;
        use crate::storage::memory_engine::MemoryStore;
        let config = Config::default();
        assert_eq!(config.streams[0].retention_hours, 24.0);
        let clock = ManualClock::starting_now();
        let streams = Streams::open_with_clock(
            Arc::new(MemoryStore::new()),
            &config.streams_settings(),
            Arc::clone(&clock) as crate::clock::SharedClock,
        )
        .unwrap();
        let append = |i: u32| append_numbered(&streams, i);
        let first = append(0).await.unwrap();
        append(1).await.unwrap();
        clock.advance(Duration::from_secs(12 * 3600));
        append(2).await.unwrap();
        let shard = "shardId-000000000000";

        clock.advance(Duration::from_secs(12 * 3600 - 1));
        assert_eq!(
            tokio::task::block_in_place(|| streams.trim_expired()).unwrap(),
            0
        );
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            tokio::task::block_in_place(|| streams.trim_expired()).unwrap(),
            2
        );
        let left = streams.read("example-stream", shard, 0, 100).unwrap();
        let counters: Vec<u64> = left.records.iter().map(|r| r.counter).collect();
        assert_eq!(counters, [2]);

        let later = append(3).await.unwrap();
        assert!(later.sequence_number > first.sequence_number);
        assert!(later.arrival_ms >= first.arrival_ms + 24 * 3_600_000);
        clock.advance(Duration::from_secs(13 * 3600));
        assert_eq!(
            tokio::task::block_in_place(|| streams.trim_expired()).unwrap(),
            1
        );
        let left = streams.read("example-stream", shard, 0, 100).unwrap();
        assert_eq!(left.records.len(), 1);
        assert_eq!(left.records[0].sequence_number, later.sequence_number);
        tokio::task::block_in_place(|| streams.shutdown());
    }

    /// One step of [`the_log_matches_a_model_through_trims_restarts_and_crashes`].
    #[derive(Debug, Clone)]
    enum Step {
        Append(u8),
        Advance { minutes: u16 },
        Trim,
        Restart,
        Crash,
    }

    fn steps() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
        use proptest::prelude::*;
        let step = prop_oneof![
            4 => (1u8..6).prop_map(Step::Append),
            3 => (0u16..1500).prop_map(|minutes| Step::Advance { minutes }),
            2 => Just(Step::Trim),
            1 => Just(Step::Restart),
            1 => Just(Step::Crash),
        ];
        proptest::collection::vec(step, 1..40)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 48,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The shard log against a model: appends get the next counters, a read returns
        /// exactly the records kept, trims take exactly what retention (24 h, on a moved
        /// clock) says, and a restart or a power loss changes nothing acknowledged. A
        /// power loss may bring back records trimmed since the last sync (trims are not
        /// synced); the next trim takes them again.
        #[test]
        fn the_log_matches_a_model_through_trims_restarts_and_crashes(steps in steps()) {
            use crate::clock::{Clock, ManualClock, SharedClock};
            use crate::storage::memory_engine::MemoryStore;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                const SHARD: &str = "shardId-000000000000";
                const RETENTION_MS: u64 = 24 * 3_600_000;
                let config = Config::default();
                let clock = ManualClock::starting_now();
                let store = Arc::new(MemoryStore::with_crash_model());
                let open = || {
                    let clock = Arc::clone(&clock) as SharedClock;
                    Streams::open_with_clock(Arc::clone(&store) as Arc<dyn StreamStore>, &config.streams_settings(), clock)
                        .unwrap()
                };
                let mut streams = open();
                // (counter, arrival, data) of every record kept, and of those trimmed
                // since the last synced write.
                let mut kept: Vec<(u64, u64, String)> = Vec::new();
                let mut trimmed_unsynced: Vec<(u64, u64, String)> = Vec::new();
                let (mut next_counter, mut n) = (0u64, 0u32);
                for step in steps {
                    match step {
                        Step::Append(k) => {
                            for _ in 0..k {
                                let a = append_numbered(&streams, n).await.unwrap();
                                let counter = SequenceNumber::parse(&a.sequence_number).unwrap().counter;
                                assert_eq!(counter, next_counter);
                                assert_eq!(a.arrival_ms, clock.now_ms());
                                kept.push((counter, a.arrival_ms, format!("record {n}")));
                                next_counter += 1;
                                n += 1;
                            }
                            trimmed_unsynced.clear();
                        }
                        Step::Advance { minutes } => {
                            clock.advance(Duration::from_secs(u64::from(minutes) * 60));
                        }
                        Step::Trim => {
                            let removed = tokio::task::block_in_place(|| streams.trim_expired()).unwrap();
                            let cutoff = clock.now_ms().saturating_sub(RETENTION_MS);
                            let (gone, stay): (Vec<_>, Vec<_>) =
                                kept.drain(..).partition(|(_, arrival, _)| *arrival < cutoff);
                            assert_eq!(removed, gone.len() as u64);
                            kept = stay;
                            trimmed_unsynced.extend(gone);
                        }
                        Step::Restart | Step::Crash => {
                            tokio::task::block_in_place(|| streams.shutdown());
                            if matches!(step, Step::Crash) {
                                store.crash();
                                kept.append(&mut trimmed_unsynced);
                                kept.sort_by_key(|(c, _, _)| *c);
                            }
                            streams = open();
                        }
                    }
                    let read = streams.read("example-stream", SHARD, 0, 10_000).unwrap();
                    let got: Vec<(u64, u64, String)> = read
                        .records
                        .iter()
                        .map(|r| (r.counter, r.arrival_ms, String::from_utf8(r.data.to_vec()).unwrap()))
                        .collect();
                    assert_eq!(got, kept);
                }
                tokio::task::block_in_place(|| streams.shutdown());
            });
        }
    }

    #[tokio::test]
    async fn unknown_stream_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let streams = four_shard_streams(dir.path());
        let err = streams
            .append("nope", "a".into(), None, Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Stream nope under account 000000000000 not found."
        );
        streams.shutdown();
    }
}
