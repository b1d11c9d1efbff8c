//! Answers for failures outside any handler (a handler that panicked, a listener over
//! its byte budget), in the shape of the protocol the request spoke, so that a client
//! parses them, and retries them, as it would AWS's own.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::aws_error;

/// The wire protocol a request speaks, judged from its headers alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `X-Amz-Target: DynamoDB_20120810.*`: errors namespaced as DynamoDB writes them.
    DynamoDb,
    /// `X-Amz-Target: Kinesis_20131202.*`.
    Kinesis,
    /// Ingest and direct routes, the inspection API: API Gateway's side.
    Route,
}

impl Protocol {
    pub fn of(headers: &HeaderMap) -> Self {
        let target = headers
            .get(&crate::api::names::X_AMZ_TARGET)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if target.starts_with("DynamoDB_") {
            Self::DynamoDb
        } else if target.starts_with("Kinesis_") {
            Self::Kinesis
        } else {
            Self::Route
        }
    }
}

/// 500: something went wrong inside spillway. The body never carries internal details
/// (a panic's text goes to the log, with its backtrace).
pub fn internal_error(protocol: Protocol) -> Response {
    let (kind, message) = match protocol {
        Protocol::DynamoDb => (
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "Internal server error",
        ),
        Protocol::Kinesis => ("InternalFailure", "Internal service failure."),
        Protocol::Route => ("InternalServerErrorException", "Internal server error"),
    };
    aws_error(StatusCode::INTERNAL_SERVER_ERROR, kind, message)
}

/// 503 with `Retry-After`: spillway cannot take this request now, and a retry will do.
pub fn unavailable(protocol: Protocol, message: &str) -> Response {
    let kind = match protocol {
        Protocol::DynamoDb => "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
        Protocol::Kinesis => "ServiceUnavailable",
        Protocol::Route => "ServiceUnavailableException",
    };
    let mut r = aws_error(StatusCode::SERVICE_UNAVAILABLE, kind, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Counters of the listener (`server::conn`).
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Connections being served now.
    pub open: AtomicU64,
    /// Connections refused with 503 because `max_connections` were open.
    pub refused: AtomicU64,
    /// Connections closed by the idle or header-read timeout.
    pub timed_out: AtomicU64,
}

/// Counters of the request guard (`server::guard`).
#[derive(Debug, Default)]
pub struct GuardStats {
    /// Handlers that panicked (each answered 500 and logged with a backtrace).
    pub panics: AtomicU64,
    /// Requests answered 503 because the body budget was spent.
    pub over_budget: AtomicU64,
    /// Bodies that stopped arriving.
    pub body_timeouts: AtomicU64,
}

/// What the listener reports to `/_spillway/health`, added as a request extension by
/// `server`.
#[derive(Debug, Clone, Default)]
pub struct ListenerHealth {
    pub connections: Arc<ConnectionStats>,
    pub guard: Arc<GuardStats>,
}

impl ListenerHealth {
    pub fn to_json(&self) -> serde_json::Value {
        let c = &self.connections;
        let g = &self.guard;
        serde_json::json!({
            "connections": {
                "open": c.open.load(Ordering::Relaxed),
                "refused": c.refused.load(Ordering::Relaxed),
                "timed_out": c.timed_out.load(Ordering::Relaxed),
            },
            "requests": {
                "panics": g.panics.load(Ordering::Relaxed),
                "over_budget": g.over_budget.load(Ordering::Relaxed),
                "body_timeouts": g.body_timeouts.load(Ordering::Relaxed),
            },
        })
    }
}
