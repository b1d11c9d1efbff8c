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
pub mod ingest;
pub mod inspect;

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
}

/// A JSON error body in the AWS shape, `{"__type": ..., "message": ...}`.
pub fn aws_error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "__type": kind, "message": message.into() });
    (status, axum::Json(body)).into_response()
}

/// Builds the whole HTTP surface of `spillway serve`.
pub fn router(config: &Config, services: Services) -> Router {
    let mut app = inspect::router(services.clone());
    app = app.merge(ingest::router(&config.routes, &services));
    app.fallback(|| async {
        aws_error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            "No route matches this path",
        )
    })
}
