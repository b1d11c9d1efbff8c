//! The inspection API's documents (`/_spillway/*`), shared by the server that answers
//! them (`api::inspect`) and the commands that read them (`cli`, `load --verify`), so
//! the clients need nothing of the server.

use serde::{Deserialize, Serialize};

/// A stream as the inspection API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct StreamView {
    pub name: String,
    pub arn: String,
    pub created_ms: u64,
    pub retention_hours: f64,
    pub shards: Vec<ShardView>,
}

/// A shard as the inspection API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShardView {
    pub shard_id: String,
    pub starting_hash_key: String,
    pub ending_hash_key: String,
    pub records: u64,
    pub first_sequence_number: Option<String>,
    pub last_sequence_number: Option<String>,
    pub last_arrival_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_records: Option<Vec<RecordView>>,
}

/// A record as the inspection API shows it: data in base64, as Kinesis does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordView {
    pub sequence_number: String,
    pub partition_key: String,
    pub data: String,
    pub arrival_ms: u64,
}

/// The answer to a shard read.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReadView {
    pub records: Vec<RecordView>,
    /// Pass as `position=CURSOR&cursor=...` to continue.
    pub next_cursor: String,
    pub millis_behind_latest: u64,
}

/// A table as the inspection API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct TableView {
    pub name: String,
    pub arn: String,
    pub hash_key: String,
    pub range_key: Option<String>,
    pub item_count: u64,
    /// Items in DynamoDB's JSON wire form (only when listing one table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluated_key: Option<serde_json::Value>,
}

/// A mapping as the inspection API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct MappingView {
    pub uuid: String,
    pub function: String,
    pub stream: String,
    pub enabled: bool,
    pub batch_size: u32,
    pub parallelization_factor: u32,
    pub invocations: u64,
    pub function_errors: u64,
    pub records_processed: u64,
    pub records_dead_lettered: u64,
    pub iterator_age_ms: u64,
    pub shards: Vec<MappingShardView>,
}

/// One shard of a mapping: where it stands and how far behind the tip.
#[derive(Debug, Serialize, Deserialize)]
pub struct MappingShardView {
    pub shard_id: String,
    /// Counter of the next record the mapping will process.
    pub checkpoint: u64,
    /// Records between the checkpoint and the tip.
    pub behind: u64,
}

/// A function as the inspection API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct FunctionView {
    pub name: String,
    pub arn: String,
    pub reserved_concurrency: u32,
    pub in_flight: u32,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    /// Instance counters, for Runtime API functions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<crate::function::InstanceStats>,
}

/// A dead letter with the mapping it came from.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeadLetterView {
    pub mapping_uuid: String,
    pub id: u64,
    pub record: crate::mapping::dead_letter::DeadLetter,
}

/// One control-plane resource in `GET /_spillway/resources`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResourceView {
    pub kind: String,
    pub name: String,
}
