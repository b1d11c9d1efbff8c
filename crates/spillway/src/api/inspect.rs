//! The inspection edge: `/_spillway/...`, JSON views of streams for people and for
//! `spillway stream`, so nobody needs AWS tools to see what is in a stream.
//!
//! - `GET /_spillway/health`
//! - `GET /_spillway/metrics`: group-commit counters (commits, records committed)
//! - `GET /_spillway/streams`: every stream with its shards and record counts
//! - `GET /_spillway/streams/{name}?last=N`: one stream, with its last N records per shard
//! - `GET /_spillway/streams/{name}/shards/{shard}/records?position=...&limit=N`: read a
//!   shard from an iterator position (`TRIM_HORIZON`, `LATEST`,
//!   `AT_SEQUENCE_NUMBER`/`AFTER_SEQUENCE_NUMBER` with `sequence_number`, `AT_TIMESTAMP`
//!   with `timestamp` in epoch milliseconds, or `CURSOR` with `cursor` from a previous read)

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::aws_error;
use crate::stream::{Record, StartPosition, StreamError, StreamSummary, Streams};

/// Errors of the inspection API, mapped to HTTP once, here.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
}

impl IntoResponse for InspectError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            InspectError::BadRequest(_) | InspectError::Stream(StreamError::InvalidArgument(_)) => {
                aws_error(StatusCode::BAD_REQUEST, "InvalidArgumentException", message)
            }
            InspectError::Stream(
                StreamError::StreamNotFound { .. } | StreamError::ShardNotFound { .. },
            ) => aws_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", message),
            InspectError::Stream(_) => aws_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                message,
            ),
        }
    }
}

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

impl From<Record> for RecordView {
    fn from(r: Record) -> Self {
        Self {
            sequence_number: r.sequence_number,
            partition_key: r.partition_key,
            data: base64::engine::general_purpose::STANDARD.encode(&r.data),
            arrival_ms: r.arrival_ms,
        }
    }
}

impl From<StreamSummary> for StreamView {
    fn from(s: StreamSummary) -> Self {
        Self {
            name: s.name,
            arn: s.arn,
            created_ms: s.created_ms,
            retention_hours: s.retention_hours,
            shards: s
                .shards
                .into_iter()
                .map(|sh| ShardView {
                    shard_id: sh.shard_id,
                    starting_hash_key: sh.range.start.to_string(),
                    ending_hash_key: sh.range.end.to_string(),
                    records: sh.records,
                    first_sequence_number: sh.first_sequence_number,
                    last_sequence_number: sh.last_sequence_number,
                    last_arrival_ms: sh.last_arrival_ms,
                    last_records: None,
                })
                .collect(),
        }
    }
}

pub fn router(streams: Arc<Streams>) -> Router {
    Router::new()
        .route(
            "/_spillway/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/_spillway/metrics",
            get(|State(streams): State<Arc<Streams>>| async move {
                let stats = streams.commit_stats();
                axum::Json(serde_json::json!({
                    "commits": stats.commits.load(std::sync::atomic::Ordering::Relaxed),
                    "records_committed": stats.records.load(std::sync::atomic::Ordering::Relaxed),
                }))
            }),
        )
        .route("/_spillway/streams", get(list_streams))
        .route("/_spillway/streams/{name}", get(describe_stream))
        .route(
            "/_spillway/streams/{name}/shards/{shard}/records",
            get(read_records),
        )
        .with_state(streams)
}

/// Runs blocking storage work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, InspectError> + Send + 'static,
) -> Result<T, InspectError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| InspectError::BadRequest(format!("inspection task failed: {e}")))?
}

async fn list_streams(
    State(streams): State<Arc<Streams>>,
) -> Result<axum::Json<Vec<StreamView>>, InspectError> {
    blocking(move || {
        streams
            .all()
            .iter()
            .map(|s| Ok(streams.summary(&s.name)?.into()))
            .collect::<Result<Vec<_>, InspectError>>()
            .map(axum::Json)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct DescribeQuery {
    #[serde(default)]
    last: Option<usize>,
}

async fn describe_stream(
    State(streams): State<Arc<Streams>>,
    Path(name): Path<String>,
    Query(q): Query<DescribeQuery>,
) -> Result<axum::Json<StreamView>, InspectError> {
    blocking(move || {
        let mut view: StreamView = streams.summary(&name)?.into();
        if let Some(n) = q.last {
            let n = n.min(1000);
            for shard in &mut view.shards {
                let records = streams.last_records(&name, &shard.shard_id, n)?;
                shard.last_records = Some(records.into_iter().map(Into::into).collect());
            }
        }
        Ok(axum::Json(view))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct ReadQuery {
    position: String,
    sequence_number: Option<String>,
    timestamp: Option<u64>,
    cursor: Option<u64>,
    limit: Option<usize>,
}

async fn read_records(
    State(streams): State<Arc<Streams>>,
    Path((name, shard)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> Result<axum::Json<ReadView>, InspectError> {
    blocking(move || {
        let need_seq = || {
            q.sequence_number.clone().ok_or_else(|| {
                InspectError::BadRequest(format!("position {} needs sequence_number", q.position))
            })
        };
        let from = match q.position.as_str() {
            "CURSOR" => q
                .cursor
                .ok_or_else(|| InspectError::BadRequest("position CURSOR needs cursor".into()))?,
            other => {
                let position = match other {
                    "TRIM_HORIZON" => StartPosition::TrimHorizon,
                    "LATEST" => StartPosition::Latest,
                    "AT_SEQUENCE_NUMBER" => StartPosition::AtSequenceNumber(need_seq()?),
                    "AFTER_SEQUENCE_NUMBER" => StartPosition::AfterSequenceNumber(need_seq()?),
                    "AT_TIMESTAMP" => StartPosition::AtTimestamp(q.timestamp.ok_or_else(|| {
                        InspectError::BadRequest("position AT_TIMESTAMP needs timestamp".into())
                    })?),
                    _ => {
                        return Err(InspectError::BadRequest(format!(
                            "unknown position `{other}`: use TRIM_HORIZON, LATEST, \
                             AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP or CURSOR"
                        )));
                    }
                };
                streams.resolve(&name, &shard, &position)?
            }
        };
        let batch = streams.read(&name, &shard, from, q.limit.unwrap_or(100))?;
        Ok(axum::Json(ReadView {
            records: batch.records.into_iter().map(Into::into).collect(),
            next_cursor: batch.next_counter.to_string(),
            millis_behind_latest: batch.millis_behind_latest,
        }))
    })
    .await
}
