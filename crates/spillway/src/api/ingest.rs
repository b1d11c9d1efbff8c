//! The ingest edge: configured HTTP routes that append the request body to a stream,
//! as API Gateway's AWS integration with Kinesis PutRecord does
//! (`Data = base64($input.body)`, `PartitionKey = $context.requestId`).
//!
//! Success is `200 {"SequenceNumber": ..., "ShardId": ...}`, sent only once the record
//! is durable. Errors are `{"__type": ..., "message": ...}`: 413 over the record limit,
//! 400 for an empty body or a missing partition key, 503 with `Retry-After` when storage
//! cannot keep up, 404/405 for unknown paths and methods.
//!
//! A route with `api_key_required` plays API Gateway's API keys and usage plans: a
//! missing or unknown `x-api-key` answers 403 `{"message":"Forbidden"}`, a key past its
//! throttle 429 `{"message":"Too Many Requests"}` with `Retry-After`, before the body is
//! read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::aws_error;
use crate::config::{ApiKeyConfig, PartitionKeySource};
use crate::stream::{MAX_RECORD_BYTES, StreamError, Streams};

/// Why an ingest request was not accepted. Mapped to HTTP in [`IntoResponse`].
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("Request body is empty; nothing to put on the stream")]
    EmptyBody,
    #[error("Request body exceeds the record limit of {MAX_RECORD_BYTES} bytes")]
    BodyTooLarge,
    #[error("Could not read the request body: {0}")]
    BodyRead(String),
    #[error("{0}")]
    PartitionKeyMissing(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// No `x-api-key`, or one that is not configured.
    #[error("Forbidden")]
    Forbidden,
    /// The key's token bucket is empty; a token is back in this many seconds.
    #[error("Too Many Requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// A worker's stream engine did not take the record (`crate::remote`).
    #[error("the stream engine did not take the record: {0}")]
    StreamEngine(#[from] crate::remote::RemoteError),
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            // API Gateway's own answers: `{"message": ...}`, the type in a header.
            IngestError::Forbidden => {
                gateway_error(StatusCode::FORBIDDEN, "ForbiddenException", message)
            }
            IngestError::TooManyRequests { retry_after_secs } => {
                let mut r = gateway_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequestsException",
                    message,
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                r
            }
            IngestError::EmptyBody
            | IngestError::BodyRead(_)
            | IngestError::PartitionKeyMissing(_) => {
                aws_error(StatusCode::BAD_REQUEST, "BadRequestException", message)
            }
            IngestError::BodyTooLarge => {
                // The body was refused unread: the connection cannot carry another
                // request, so say so instead of letting the client reuse it.
                let mut r = aws_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLargeException",
                    message,
                );
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
            IngestError::Stream(StreamError::RecordTooLarge { .. }) => aws_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                message,
            ),
            // The route's stream was deleted through the Kinesis API (and not created
            // again): Kinesis' own answer, passed through as the reference's API Gateway
            // passes every Kinesis 4xx (as 400).
            IngestError::Stream(StreamError::StreamNotFound { name, .. }) => {
                tracing::warn!(stream = %name, "ingest refused: the route's stream does not exist (deleted through the Kinesis API?)");
                aws_error(
                    StatusCode::BAD_REQUEST,
                    "ResourceNotFoundException",
                    message,
                )
            }
            IngestError::Stream(StreamError::InvalidArgument(_)) => {
                aws_error(StatusCode::BAD_REQUEST, "InvalidArgumentException", message)
            }
            // As the reference's API Gateway passes Kinesis' 400 through its 4xx mapping.
            IngestError::Stream(StreamError::ThroughputExceeded { .. }) => aws_error(
                StatusCode::BAD_REQUEST,
                "ProvisionedThroughputExceededException",
                message,
            ),
            IngestError::Stream(
                StreamError::Overloaded
                | StreamError::ShuttingDown
                | StreamError::Storage(
                    crate::storage::StorageError::Full(_) | crate::storage::StorageError::Io(_),
                ),
            ) => service_unavailable(message),
            IngestError::Stream(_) => aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                message,
            ),
            // The engine's own refusal of the record passes through as Kinesis' 4xx do;
            // an engine out of reach or overloaded is this route's 503.
            IngestError::StreamEngine(e) => match e.kind() {
                Some(kind) if !e.retryable() => {
                    aws_error(StatusCode::BAD_REQUEST, kind, message.clone())
                }
                _ => {
                    tracing::warn!(error = %e, "ingest refused: the stream engine did not take the record");
                    service_unavailable(message)
                }
            },
        }
    }
}

/// 503 with `Retry-After: 1`: storage (or the stream engine) cannot take the record now.
fn service_unavailable(message: String) -> Response {
    let mut r = aws_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableException",
        message,
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// An API Gateway error body, `{"message": ...}`, with `x-amzn-ErrorType`.
fn gateway_error(status: StatusCode, kind: &'static str, message: String) -> Response {
    let mut r = (
        status,
        axum::Json(serde_json::json!({ "message": message })),
    )
        .into_response();
    r.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(kind));
    r
}

/// The configured API keys, each with its usage plan's token bucket. Keys are looked
/// up by their SHA-256, so the lookup's timing says nothing about a key's bytes.
#[derive(Debug)]
pub struct ApiKeys {
    keys: HashMap<[u8; 32], Mutex<Bucket>>,
}

/// A token bucket: `burst` tokens at most, refilled at `rate` per second.
#[derive(Debug)]
struct Bucket {
    rate: Option<f64>,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes a token, or says in how many whole seconds one will be there.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // At least 1: Retry-After is in whole seconds.
            Err(((1.0 - self.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

fn key_digest(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

impl ApiKeys {
    pub fn new(config: &[ApiKeyConfig]) -> Self {
        let now = Instant::now();
        let keys = config
            .iter()
            .map(|k| {
                let burst = f64::from(k.burst_size());
                let bucket = Bucket {
                    rate: k.rate_per_second,
                    burst,
                    tokens: burst,
                    at: now,
                };
                (key_digest(k.value.as_bytes()), Mutex::new(bucket))
            })
            .collect();
        Self { keys }
    }

    /// Admits a request by its `x-api-key`, taking a token from the key's bucket.
    pub fn admit(&self, headers: &HeaderMap) -> Result<(), IngestError> {
        let bucket = headers
            .get("x-api-key")
            .and_then(|v| self.keys.get(&key_digest(v.as_bytes())))
            .ok_or(IngestError::Forbidden)?;
        let mut bucket = bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bucket
            .take(Instant::now())
            .map_err(|retry_after_secs| IngestError::TooManyRequests { retry_after_secs })
    }
}

/// One configured route, resolved.
#[derive(Debug)]
pub(super) struct IngestRoute {
    stream: String,
    partition_key: PartitionKeySource,
    streams: Arc<Streams>,
    /// A worker's stream engine: records go there (batched into PutRecords calls)
    /// instead of `streams`.
    remote: Option<crate::remote::kinesis::PutBatcher>,
}

impl IngestRoute {
    /// The route appending to `stream` (on the worker's stream engine when there is one).
    pub(super) fn new(
        stream: &str,
        partition_key: PartitionKeySource,
        services: &super::Services,
    ) -> Self {
        Self {
            stream: stream.to_owned(),
            partition_key,
            streams: Arc::clone(&services.streams),
            remote: services
                .remote
                .as_ref()
                .map(|r| crate::remote::kinesis::PutBatcher::start(r.kinesis.clone(), stream)),
        }
    }

    pub(super) async fn handle(&self, req: Request) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut resp = match self.ingest(req, &request_id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "ingest rejected");
                e.into_response()
            }
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut()
                .insert(crate::api::names::X_AMZN_REQUEST_ID, v);
        }
        resp
    }

    async fn ingest(&self, req: Request, request_id: &str) -> Result<Response, IngestError> {
        let (parts, body) = req.into_parts();
        let data = read_body(&parts.headers, body).await?;
        if data.is_empty() {
            return Err(IngestError::EmptyBody);
        }
        let partition_key = self.partition_key(&parts.headers, &data, request_id)?;
        let (shard_id, sequence_number) = match &self.remote {
            Some(puts) => puts.put(partition_key, data).await?,
            None => {
                let appended = self
                    .streams
                    .append(&self.stream, partition_key, None, data)
                    .await?;
                (appended.shard_id, appended.sequence_number)
            }
        };
        let body = serde_json::json!({
            "SequenceNumber": sequence_number,
            "ShardId": shard_id,
        });
        Ok((StatusCode::OK, axum::Json(body)).into_response())
    }

    fn partition_key(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        request_id: &str,
    ) -> Result<String, IngestError> {
        match &self.partition_key {
            PartitionKeySource::RequestId => Ok(request_id.to_owned()),
            PartitionKeySource::Header { name } => headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    IngestError::PartitionKeyMissing(format!(
                        "The partition key header `{name}` is missing or empty"
                    ))
                }),
            PartitionKeySource::JsonField { field } => {
                let missing = || {
                    IngestError::PartitionKeyMissing(format!(
                        "The partition key field `{field}` is missing from the JSON body"
                    ))
                };
                let value: serde_json::Value =
                    serde_json::from_slice(body).map_err(|_| missing())?;
                match value.get(field) {
                    Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                    Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                        Ok(v.to_string())
                    }
                    _ => Err(missing()),
                }
            }
        }
    }
}

/// Reads the body, refusing more than [`MAX_RECORD_BYTES`] without buffering it.
pub(super) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, IngestError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > MAX_RECORD_BYTES
    {
        return Err(IngestError::BodyTooLarge);
    }
    match axum::body::to_bytes(body, MAX_RECORD_BYTES).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let too_large =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<http_body_util::LengthLimitError>());
            if too_large {
                Err(IngestError::BodyTooLarge)
            } else {
                Err(IngestError::BodyRead(e.to_string()))
            }
        }
    }
}
