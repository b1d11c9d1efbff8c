//! The ingest edge: configured HTTP routes that append the request body to a stream,
//! as API Gateway's AWS integration with Kinesis PutRecord does
//! (`Data = base64($input.body)`, `PartitionKey = $context.requestId`).
//!
//! Success is `200 {"SequenceNumber": ..., "ShardId": ...}`, sent only once the record
//! is durable. Errors are `{"__type": ..., "message": ...}`: 413 over the record limit,
//! 400 for an empty body or a missing partition key, 503 with `Retry-After` when storage
//! cannot keep up, 404/405 for unknown paths and methods.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use bytes::Bytes;

use super::aws_error;
use crate::config::{PartitionKeySource, RouteConfig};
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
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
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
            ) => {
                let mut r = aws_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailableException",
                    message,
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
            IngestError::Stream(_) => aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                message,
            ),
        }
    }
}

/// One configured route, resolved.
#[derive(Debug)]
struct IngestRoute {
    stream: String,
    partition_key: PartitionKeySource,
    streams: Arc<Streams>,
}

/// Routes for every `[[routes]]` entry (buffered, or direct through
/// [`super::direct`]); other methods on those paths answer 405.
pub fn router(routes: &[RouteConfig], services: &super::Services) -> Router {
    let mut by_path: BTreeMap<&str, MethodRouter> = BTreeMap::new();
    for rc in routes {
        let method = Method::from_bytes(rc.method.to_ascii_uppercase().as_bytes())
            .expect("config validation checked the method");
        let filter = MethodFilter::try_from(method).unwrap_or(MethodFilter::POST);
        let method_router = match (&rc.stream, &rc.function) {
            (Some(stream), _) => {
                let route = Arc::new(IngestRoute {
                    stream: stream.clone(),
                    partition_key: rc.partition_key.clone(),
                    streams: Arc::clone(&services.streams),
                });
                on(filter, move |req: Request| {
                    let route = Arc::clone(&route);
                    async move { route.handle(req).await }
                })
            }
            (None, Some(function)) => {
                let route = Arc::new(super::direct::DirectRoute::new(function, services));
                on(filter, move |req: Request| {
                    let route = Arc::clone(&route);
                    async move { route.handle(req).await }
                })
            }
            (None, None) => unreachable!("config validation requires stream or function"),
        };
        let entry = by_path.remove(rc.path.as_str()).unwrap_or_default();
        by_path.insert(rc.path.as_str(), entry.merge(method_router));
    }
    let mut app = Router::new();
    for (path, mr) in by_path {
        app = app.route(
            path,
            mr.fallback(|| async {
                aws_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowedException",
                    "This route does not accept this HTTP method",
                )
            }),
        );
    }
    app
}

impl IngestRoute {
    async fn handle(&self, req: Request) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut resp = match self.ingest(req, &request_id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "ingest rejected");
                e.into_response()
            }
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-amzn-requestid", v);
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
        let appended = self
            .streams
            .append(&self.stream, partition_key, None, data)
            .await?;
        let body = serde_json::json!({
            "SequenceNumber": appended.sequence_number,
            "ShardId": appended.shard_id,
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
