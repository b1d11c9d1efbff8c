//! The inspection edge: `/_spillway/...`, JSON views of streams for people and for
//! `spillway stream`, so nobody needs AWS tools to see what is in a stream.
//!
//! - `GET /_spillway/`: the live page (charts from `/metrics`, refreshed every 2 s)
//! - `GET /_spillway/health`
//! - `GET /_spillway/metrics`: group-commit counters (commits, records committed)
//! - `GET /_spillway/streams`: every stream with its shards and record counts
//! - `GET /_spillway/streams/{name}?last=N`: one stream, with its last N records per shard
//! - `GET /_spillway/tables`, `GET /_spillway/tables/{name}?limit=N&start_after=KEY`:
//!   tables with item counts; one table's items, in key order, resumable
//! - `GET /_spillway/mappings`: event source mappings, their counters and checkpoints
//! - `GET /_spillway/dead-letters`: every dead letter (Lambda's on-failure records)
//! - `GET /_spillway/functions`: functions with invocation, error and throttle counters
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
use serde::Deserialize;

use super::{Services, aws_error};
pub use crate::inspection::{
    DeadLetterView, FunctionView, MappingShardView, MappingView, ReadView, RecordView, ShardView,
    StreamView, TableView,
};
use crate::mapping::MappingError;
use crate::stream::{Record, StartPosition, StreamError, StreamSummary, Streams};
use crate::table::TableError;

/// Errors of the inspection API, mapped to HTTP once, here.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
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
            )
            | InspectError::Table(TableError::TableNotFound(_)) => {
                aws_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
            }
            InspectError::Table(TableError::Validation(_)) => {
                aws_error(StatusCode::BAD_REQUEST, "ValidationException", message)
            }
            InspectError::Stream(_) | InspectError::Table(_) | InspectError::Mapping(_) => {
                aws_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailableException",
                    message,
                )
            }
        }
    }
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

pub fn router(services: Services) -> Router {
    let streams = Arc::clone(&services.streams);
    Router::new()
        .route("/_spillway/", get(live_page))
        .route("/_spillway", get(live_page))
        .route("/_spillway/health", get(health))
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
        .merge(tables_and_mappings(services))
}

/// The live page (`GET /_spillway/`): charts of the pipeline drawn in the browser from
/// `/metrics`, refreshed every 2 s. One self-contained file embedded in the binary: it
/// works offline and needs no build step.
const LIVE_PAGE: &str = include_str!("page.html");

async fn live_page() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        LIVE_PAGE,
    )
        .into_response()
}

/// `GET /_spillway/health`: 200 `ok` while storage takes writes; 503 `degraded` while
/// writes fail (a full disk, an fsync error) and until storage has recovered by itself.
/// A readiness probe, not a liveness one: reads keep working meanwhile.
async fn health(
    State(streams): State<Arc<Streams>>,
    listener: Option<axum::Extension<super::edge::ListenerHealth>>,
) -> Response {
    let storage = {
        let s = Arc::clone(&streams);
        tokio::task::spawn_blocking(move || s.storage_health())
            .await
            .unwrap_or_default()
    };
    let degraded = !storage.writable;
    let mut body = serde_json::json!({
        "status": if degraded { "degraded" } else { "ok" },
        "storage": storage,
    });
    if let (Some(axum::Extension(l)), Some(map)) = (listener, body.as_object_mut())
        && let serde_json::Value::Object(extra) = l.to_json()
    {
        map.extend(extra);
    }
    let status = if degraded {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(body)).into_response()
}

async fn list_functions(State(s): State<Services>) -> axum::Json<Vec<FunctionView>> {
    use std::sync::atomic::Ordering::Relaxed;
    axum::Json(
        s.functions
            .all()
            .iter()
            .map(|f| FunctionView {
                name: f.name.clone(),
                arn: f.arn.clone(),
                reserved_concurrency: f.reserved_concurrency,
                in_flight: f.in_flight(),
                invocations: f.stats.invocations.load(Relaxed),
                errors: f.stats.errors.load(Relaxed),
                throttles: f.stats.throttles.load(Relaxed),
                instances: f.instance_stats(),
            })
            .collect(),
    )
}

fn tables_and_mappings(services: Services) -> Router {
    Router::new()
        .route("/_spillway/tables", get(list_tables))
        .route("/_spillway/tables/{name}", get(scan_table))
        .route("/_spillway/mappings", get(list_mappings))
        .route("/_spillway/dead-letters", get(list_dead_letters))
        .route("/_spillway/functions", get(list_functions))
        .route("/_spillway/worker", get(worker_status))
        .with_state(services)
}

/// `GET /_spillway/worker`: this process as a worker over remote engines (its id, the
/// leases it holds, every lease as last read, its mappings' counters); 404 when it
/// runs on an embedded engine.
async fn worker_status(State(s): State<Services>) -> Response {
    match &s.worker {
        Some(w) => axum::Json(w.status()).into_response(),
        None => super::aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "this spillway runs on an embedded engine, not as a worker",
        ),
    }
}

fn table_view(s: &Services, name: &str) -> Result<TableView, InspectError> {
    let t = s.tables.get(name)?;
    Ok(TableView {
        name: t.name.clone(),
        arn: t.arn.clone(),
        hash_key: format!("{} ({})", t.hash_key.name, t.hash_key.kind.as_str()),
        range_key: t
            .range_key
            .as_ref()
            .map(|k| format!("{} ({})", k.name, k.kind.as_str())),
        item_count: s.tables.count(name)?,
        items: None,
        last_evaluated_key: None,
    })
}

async fn list_tables(
    State(s): State<Services>,
) -> Result<axum::Json<Vec<TableView>>, InspectError> {
    blocking(move || {
        s.tables
            .all()
            .iter()
            .map(|t| table_view(&s, &t.name))
            .collect::<Result<Vec<_>, _>>()
            .map(axum::Json)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct ScanQuery {
    limit: Option<usize>,
    /// A LastEvaluatedKey from a previous page, as JSON.
    start_after: Option<String>,
}

async fn scan_table(
    State(s): State<Services>,
    Path(name): Path<String>,
    Query(q): Query<ScanQuery>,
) -> Result<axum::Json<TableView>, InspectError> {
    blocking(move || {
        let mut view = table_view(&s, &name)?;
        let start = match &q.start_after {
            Some(text) => {
                let v: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| InspectError::BadRequest(format!("start_after: {e}")))?;
                Some(
                    crate::table::value::item_from_json(&v)
                        .map_err(|e| InspectError::BadRequest(format!("start_after: {e}")))?,
                )
            }
            None => None,
        };
        let page = s
            .tables
            .scan_page(&name, start.as_ref(), q.limit.unwrap_or(25).min(10_000))?;
        view.items = Some(
            page.items
                .iter()
                .map(crate::table::value::item_to_json)
                .collect(),
        );
        view.last_evaluated_key = page
            .last_evaluated_key
            .as_ref()
            .map(crate::table::value::item_to_json);
        Ok(axum::Json(view))
    })
    .await
}

async fn list_mappings(
    State(s): State<Services>,
) -> Result<axum::Json<Vec<MappingView>>, InspectError> {
    use std::sync::atomic::Ordering::Relaxed;
    blocking(move || {
        let mut out = Vec::new();
        for m in &s.mappings.list() {
            let mut shards = Vec::new();
            for shard in &m.current_stream().shards {
                let checkpoint = m.checkpoint(shard)?;
                shards.push(MappingShardView {
                    shard_id: shard.shard_id.clone(),
                    checkpoint,
                    behind: shard.tip().next_counter.saturating_sub(checkpoint),
                });
            }
            out.push(MappingView {
                uuid: m.uuid.clone(),
                function: m.function.name.clone(),
                stream: m.stream.name.clone(),
                enabled: m.config.enabled,
                batch_size: m.config.batch_size,
                parallelization_factor: m.config.parallelization_factor,
                invocations: m.stats.invocations.load(Relaxed),
                function_errors: m.stats.function_errors.load(Relaxed),
                records_processed: m.stats.records_processed.load(Relaxed),
                records_dead_lettered: m.stats.records_dead_lettered.load(Relaxed),
                iterator_age_ms: m.stats.iterator_age_ms(),
                shards,
            });
        }
        Ok(axum::Json(out))
    })
    .await
}

async fn list_dead_letters(
    State(s): State<Services>,
) -> Result<axum::Json<Vec<DeadLetterView>>, InspectError> {
    blocking(move || {
        let mut out = Vec::new();
        for m in &s.mappings.list() {
            for (id, record) in m.dead_letters(None, 10_000)? {
                out.push(DeadLetterView {
                    mapping_uuid: m.uuid.clone(),
                    id,
                    record,
                });
            }
        }
        Ok(axum::Json(out))
    })
    .await
}

/// Runs blocking storage work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, InspectError> + Send + 'static,
) -> Result<T, InspectError> {
    tokio::task::spawn_blocking(f)
        .await
        // A panic: logged with its backtrace by the panic hook; resumed here so the
        // guard layer answers it as every handler panic is answered (500).
        .unwrap_or_else(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(InspectError::BadRequest(format!(
                "inspection task failed: {e}"
            ))),
        })
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
