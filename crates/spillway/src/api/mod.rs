//! The HTTP edges. Each submodule decodes one wire format, calls the domain and encodes
//! the answer; each maps domain errors to its protocol's error shape in one place.
//!
//! - [`ingest`]: the configured routes (`POST /dev`), playing API Gateway's AWS
//!   integration with Kinesis PutRecord.
//! - [`direct`]: routes that invoke a function synchronously, playing API Gateway's
//!   Lambda proxy integration (the design the pattern replaces).
//! - [`inspect`]: `/_spillway/...`, a small JSON API for looking at streams without AWS
//!   tools; `spillway stream` is its client.

pub mod direct;
pub mod dynamodb;
pub mod edge;
pub mod ingest;
pub mod inspect;
pub mod kinesis;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::config::Config;
use crate::function::Functions;
use crate::mapping::Mappings;
use crate::stream::Streams;
use crate::table::Tables;

/// The domain services the edges call.
#[derive(Debug, Clone)]
pub struct Services {
    pub streams: Arc<Streams>,
    pub tables: Arc<Tables>,
    pub mappings: Arc<Mappings>,
    pub functions: Arc<Functions>,
    /// Signs the Kinesis API's shard iterators.
    pub iterators: kinesis::iterator::IteratorCodec,
}

/// A JSON error body in the AWS shape, `{"__type": ..., "message": ...}`.
pub fn aws_error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "__type": kind, "message": message.into() });
    (status, axum::Json(body)).into_response()
}

/// Largest AWS JSON request body accepted.
pub const MAX_AWS_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// `POST /` with `X-Amz-Target`: the AWS JSON APIs, told apart by the target's prefix.
async fn aws_json(services: &Services, headers: &axum::http::HeaderMap, body: &[u8]) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some((service, action)) = target.split_once('.') else {
        return kinesis::KinesisError::UnknownOperation.into_response();
    };
    // SigV4 signatures are accepted unverified; a request without any is refused as
    // AWS refuses it.
    let signed = headers.contains_key(axum::http::header::AUTHORIZATION)
        || headers.contains_key("x-amz-security-token");
    match service {
        "Kinesis_20131202" => {
            let encoding = kinesis::Encoding::of(
                headers
                    .get(axum::http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default(),
            );
            if !signed {
                return kinesis::KinesisError::MissingAuthenticationToken.respond(encoding);
            }
            let k = kinesis::KinesisService {
                streams: Arc::clone(&services.streams),
                iterators: services.iterators.clone(),
            };
            kinesis::handle_encoded(&k, action, body, encoding).await
        }
        "DynamoDB_20120810" => {
            if !signed {
                return dynamodb::missing_auth();
            }
            dynamodb::handle(&services.tables, action, body).await
        }
        _ => kinesis::KinesisError::UnknownOperation.into_response(),
    }
}

/// Builds the whole HTTP surface of `spillway serve`.
pub fn router(config: &Config, services: Services) -> Router {
    let mut app = inspect::router(services.clone());
    app = app.merge(ingest::router(&config.routes, &services));
    if !config.routes.iter().any(|r| r.path == "/") {
        let aws = services.clone();
        app = app.route(
            "/",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
                let aws = aws.clone();
                async move { aws_json(&aws, &headers, &body).await }
            })
            // PutRecords carries up to 5 MiB of data, base64 in JSON.
            .layer(axum::extract::DefaultBodyLimit::max(MAX_AWS_REQUEST_BYTES)),
        );
    }
    app.fallback(|| async {
        aws_error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            "No route matches this path",
        )
    })
}
