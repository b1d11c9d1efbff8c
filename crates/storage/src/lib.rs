//! The seam between spillway's domain and a storage engine, and the embedded engines.
//!
//! The domain (streams, tables, mappings, the control plane's documents) talks to
//! storage only through the traits here, at the domain's level: a shard log with an
//! explicit durability point, reads from a position, trims. The embedded engine
//! ([`fjall_engine`], the default) and an in-memory one ([`memory_engine`], for tests
//! and demos, with a crash model and write faults) implement the traits and pass one
//! shared suite (`conformance`). Appends and table writes reach them through the
//! engine's group commit ([`group_commit`], which assigns positions, and
//! [`table_writer`]). Arrival times are read from a [`clock::Clock`].
//!
//! A crate of its own so that the layering holds by construction: nothing here can
//! import the domain, HTTP or the remote engines. spillway re-exports it as
//! `spillway::storage` (where `storage::engine` names engines by URL).

pub mod clock;
#[cfg(test)]
mod conformance;
pub mod fjall_engine;
pub mod group_commit;
pub mod keys;
pub mod memory_engine;
pub mod table_writer;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Errors from a storage engine. All of them mean "the data could not be read or
/// written right now"; the edges answer them as 503.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The disk is full; nothing was written.
    #[error("storage is full: {0}")]
    Full(String),
    /// Any other I/O or engine failure.
    #[error("storage failure: {0}")]
    Io(String),
    /// A stored value could not be decoded: the data dir is damaged or from a newer version.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Identifies one shard's log: the stream's numeric id and the shard's index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardKey {
    pub stream_id: u32,
    pub shard_index: u32,
}

/// One record as stored in a shard log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Position in the shard: contiguous, starting at 0, never reused.
    pub counter: u64,
    /// Arrival time, Unix epoch milliseconds; never decreases within a shard.
    pub arrival_ms: u64,
    pub partition_key: String,
    pub data: Bytes,
}

/// The durable tip of a shard: written in the same atomic batch as its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShardTip {
    /// Counter the next record will get (= records ever appended).
    pub next_counter: u64,
    /// Arrival time of the last record appended, or 0.
    pub last_arrival_ms: u64,
}

/// How hard an append presses its data towards the disk before returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// fdatasync the journal.
    SyncData,
    /// Hand the bytes to the OS (survives a process crash, not a power loss).
    Os,
}

/// A stream's entry in the catalog: everything needed to rebuild it on start.
/// Stored as JSON, so fields may be added with serde defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamCatalogEntry {
    pub stream_id: u32,
    pub name: String,
    pub created_ms: u64,
    pub retention_ms: u64,
    pub shards: Vec<ShardCatalogEntry>,
    /// Tags, as AddTagsToStream sets them.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Capacity mode, encryption, enhanced monitoring and registered consumers.
    #[serde(default)]
    pub settings: StreamSettings,
}

/// What a stream's control plane sets besides shards and tags: each is reported back
/// by DescribeStream (and consumers by their own actions), so each is kept durably.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamSettings {
    /// ON_DEMAND (true) or PROVISIONED capacity.
    #[serde(default)]
    pub on_demand: bool,
    /// The KMS key of StartStreamEncryption; None: not encrypted.
    #[serde(default)]
    pub encryption_key: Option<String>,
    /// Shard-level metrics enabled by EnableEnhancedMonitoring, in Kinesis' order.
    #[serde(default)]
    pub shard_level_metrics: Vec<String>,
    /// Enhanced fan-out consumers, by registration order.
    #[serde(default)]
    pub consumers: Vec<ConsumerEntry>,
}

/// A registered enhanced fan-out consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerEntry {
    pub name: String,
    pub created_ms: u64,
    /// When DeregisterStreamConsumer was called; the consumer is DELETING until removed.
    #[serde(default)]
    pub deleting_since_ms: Option<u64>,
}

/// A shard's entry in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardCatalogEntry {
    pub index: u32,
    /// Inclusive hash-key range, decimal strings (u128 does not fit JSON numbers).
    pub starting_hash_key: String,
    pub ending_hash_key: String,
    /// Indices of the shards this one was split or merged from (resharding).
    #[serde(default)]
    pub parents: Vec<u32>,
    /// Closed by a reshard: no more records go here.
    #[serde(default)]
    pub closed: bool,
    /// For a closed shard, the counter past its last record, once known.
    #[serde(default)]
    pub ending_counter: Option<u64>,
}

/// Storage for stream catalogs and shard logs.
/// A table's entry in the catalog. Stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableCatalogEntry {
    pub table_id: u32,
    pub name: String,
    pub created_ms: u64,
    pub hash_key: KeyAttributeEntry,
    #[serde(default)]
    pub range_key: Option<KeyAttributeEntry>,
    /// Secondary indexes (global and local), for Query and Scan with IndexName.
    #[serde(default)]
    pub indexes: Vec<IndexEntry>,
    /// DynamoDB's TableId, a random UUID. Absent in entries written before it was kept
    /// (those show a UUID derived from the ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Provisioned throughput (billing mode PROVISIONED); absent: PAY_PER_REQUEST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    /// Tags (TagResource), in the order first set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// The TTL attribute, while Time to Live is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_attribute: Option<String>,
}

/// Provisioned throughput of a table or global index, with its change history as
/// DescribeTable reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throughput {
    pub read: u64,
    pub write: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_increase_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decrease_ms: Option<u64>,
    #[serde(default)]
    pub decreases_today: u64,
}

/// A secondary index of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub name: String,
    pub hash_key: KeyAttributeEntry,
    #[serde(default)]
    pub range_key: Option<KeyAttributeEntry>,
    /// A local index (same hash key as the table) rather than a global one.
    pub local: bool,
    /// ALL, KEYS_ONLY or INCLUDE.
    pub projection: String,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
    /// A global index's provisioned throughput (absent: on demand, or a local index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
}

/// A key attribute of a table: its name and type ("S", "N" or "B").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttributeEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// An event source mapping's entry in the catalog. Stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingCatalogEntry {
    pub mapping_id: u32,
    /// Lambda's mapping UUID.
    pub uuid: String,
    pub function: String,
    /// The stream the mapping reads now: a stream deleted and created again under the
    /// same name has a new id, and the mapping follows it.
    pub stream_id: u32,
    pub created_ms: u64,
    /// The stream's name, by which the mapping finds a re-created stream. Absent in
    /// entries written before mappings followed their streams.
    #[serde(default)]
    pub stream_name: Option<String>,
}

/// One write in an atomic batch across tables and mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Insert or replace an item; `key` is the table's encoded item key.
    PutItem {
        table_id: u32,
        key: Vec<u8>,
        item: Vec<u8>,
    },
    DeleteItem {
        table_id: u32,
        key: Vec<u8>,
    },
    /// A mapping's position in a shard: the counter of the next record to process.
    Checkpoint {
        mapping_id: u32,
        shard: ShardKey,
        next_counter: u64,
    },
    /// A dead letter (Lambda's on-failure record), under a per-mapping increasing id.
    DeadLetter {
        mapping_id: u32,
        id: u64,
        record: Vec<u8>,
    },
}

/// Whether an engine takes writes now (`/_spillway/health`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EngineHealth {
    /// False while writes fail (disk full, an fsync error) until the engine recovers.
    pub writable: bool,
    /// The failure that stopped writes, while they are stopped.
    pub last_error: Option<String>,
    /// Writes that failed since start.
    pub write_failures: u64,
    /// Times the engine was reopened in place to recover from a failure.
    pub reopens: u64,
}

/// Result of a storage operation.
pub type StoreResult<T> = Result<T, StorageError>;

pub trait StreamStore: Send + Sync + 'static {
    /// Every stream in the catalog.
    fn load_catalog(&self) -> Result<Vec<StreamCatalogEntry>, StorageError>;
    /// Allocates a stream id never handed out before, durably.
    fn allocate_stream_id(&self) -> Result<u32, StorageError>;
    /// Inserts or replaces a catalog entry, durably.
    fn put_stream(&self, entry: &StreamCatalogEntry) -> Result<(), StorageError>;
    /// The durable tip of a shard, if anything was ever appended to it.
    fn load_tip(&self, shard: ShardKey) -> Result<Option<ShardTip>, StorageError>;
    /// Appends records and the shards' new tips in one atomic batch, then makes the
    /// batch durable as `sync` says. Returns only once that is done.
    fn append(
        &self,
        records: &[(ShardKey, StoredRecord)],
        tips: &[(ShardKey, ShardTip)],
        sync: SyncMode,
    ) -> Result<(), StorageError>;
    /// Records of `shard` with `from <= counter < until`, in order, at most
    /// `max_records` and stopping once `max_bytes` of data is reached (at least one).
    fn read(
        &self,
        shard: ShardKey,
        from: u64,
        until: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, StorageError>;
    /// Counter of the oldest record still kept in `shard`.
    fn first_counter(&self, shard: ShardKey) -> Result<Option<u64>, StorageError>;
    /// Deletes the records of `shard` that arrived before `cutoff_ms`; returns how many.
    fn trim(&self, shard: ShardKey, cutoff_ms: u64) -> Result<u64, StorageError>;
    /// Deletes a stream: its catalog entry, shard tips and records, durably.
    fn delete_stream(&self, entry: &StreamCatalogEntry) -> Result<(), StorageError>;
    /// Whether writes work now. An engine that can recover from a failed write by
    /// itself may use this call to try.
    fn health(&self) -> EngineHealth {
        EngineHealth {
            writable: true,
            ..EngineHealth::default()
        }
    }
}

/// Where a scan of items begins, in its direction of travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanFrom<'a> {
    /// The first item under the prefix (the last, reversed).
    Start,
    /// Past this key, which is not included: how a page resumes.
    After(&'a [u8]),
    /// At this key or, when there is none, the next one: how a key range begins.
    At(&'a [u8]),
}

/// Storage for table catalogs and items. Item keys are opaque, order-preserving bytes
/// made by `table::key`.
pub trait TableStore: Send + Sync + 'static {
    fn load_tables(&self) -> StoreResult<Vec<TableCatalogEntry>>;
    /// Allocates a table id never handed out before, durably.
    fn allocate_table_id(&self) -> StoreResult<u32>;
    /// Inserts or replaces a catalog entry, durably.
    fn put_table(&self, entry: &TableCatalogEntry) -> StoreResult<()>;
    fn get_item(&self, table_id: u32, key: &[u8]) -> StoreResult<Option<Bytes>>;
    /// Items whose key starts with `prefix`, in key order (or reversed), from `from` in
    /// the direction of travel: at most `limit` items, and no more once their stored
    /// values add up to `max_bytes` (the item that reaches it included), so that one page
    /// of a large table never loads the rest of the table.
    fn scan_items(
        &self,
        table_id: u32,
        prefix: &[u8],
        from: ScanFrom<'_>,
        reverse: bool,
        limit: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<(Vec<u8>, Bytes)>>;
    /// Deletes a table: its catalog entry, then its items, durably.
    fn delete_table(&self, table_id: u32) -> StoreResult<()>;
    fn count_items(&self, table_id: u32) -> StoreResult<u64>;
}

/// Storage for event source mappings: catalog, checkpoints and dead letters.
pub trait MappingStore: Send + Sync + 'static {
    fn load_mappings(&self) -> StoreResult<Vec<MappingCatalogEntry>>;
    fn allocate_mapping_id(&self) -> StoreResult<u32>;
    fn put_mapping(&self, entry: &MappingCatalogEntry) -> StoreResult<()>;
    /// Removes a mapping's catalog entry and checkpoints (its dead letters stay).
    fn delete_mapping(&self, mapping_id: u32) -> StoreResult<()>;
    fn load_checkpoint(&self, mapping_id: u32, shard: ShardKey) -> StoreResult<Option<u64>>;
    /// Dead letters of one mapping with id above `after`, oldest first, at most `limit`.
    fn dead_letters(
        &self,
        mapping_id: u32,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<(u64, Bytes)>>;
}

/// The control plane's resources (IAM roles, Lambda functions, API Gateway APIs, ...):
/// documents by kind and name, each written durably on its own. Their rates are a
/// person's or a deploy tool's, so every write is synced.
pub trait ResourceStore: Send + Sync + 'static {
    fn put_resource(&self, kind: &str, name: &str, document: &[u8]) -> StoreResult<()>;
    fn get_resource(&self, kind: &str, name: &str) -> StoreResult<Option<Bytes>>;
    /// Every resource of `kind`, by name in byte order.
    fn list_resources(&self, kind: &str) -> StoreResult<Vec<(String, Bytes)>>;
    /// Removes a resource; removing one that is not there is not an error.
    fn delete_resource(&self, kind: &str, name: &str) -> StoreResult<()>;
}

/// Atomic writes across tables, checkpoints and dead letters.
pub trait BatchWriter: Send + Sync + 'static {
    /// Applies every op or none, then makes them durable as `sync` says.
    fn apply(&self, ops: &[WriteOp], sync: SyncMode) -> StoreResult<()>;
}

/// Everything the embedded engine provides; what `serve` hands to the domain.
pub trait Store: StreamStore + TableStore + MappingStore + ResourceStore + BatchWriter {}

impl<T: StreamStore + TableStore + MappingStore + ResourceStore + BatchWriter> Store for T {}
