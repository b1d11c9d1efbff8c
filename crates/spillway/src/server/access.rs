//! The outermost layer: counts and times every request for `/metrics`
//! (`spillway_http_requests_total{api,action,status}`,
//! `spillway_http_request_duration_seconds{api}`), gives every response an
//! `x-amzn-RequestId`, and writes the access log when it is on.
//!
//! Why here and not in each API: one place sees every answer, the guard's 503s and 500s
//! included, with the same labels.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// What the access layer needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct AccessLog {
    /// Configured ingest routes (method and path): their path is their action label.
    routes: Arc<HashSet<(String, String)>>,
    /// One log line per request.
    pub enabled: bool,
}

impl AccessLog {
    pub fn new<'a>(routes: impl Iterator<Item = (&'a str, &'a str)>, enabled: bool) -> Self {
        Self {
            routes: Arc::new(
                routes
                    .map(|(m, p)| (m.to_ascii_uppercase(), p.to_owned()))
                    .collect(),
            ),
            enabled,
        }
    }

    /// The `api` and `action` labels of a request. Every value comes from a bounded set
    /// (configured routes, fixed names, or [`crate::metrics::action_label`]).
    fn labels(&self, req: &Request) -> (&'static str, String) {
        if let Some(target) = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
        {
            let (service, op) = target.split_once('.').unwrap_or(("", target));
            let api = match service {
                "Kinesis_20131202" => "kinesis",
                "DynamoDB_20120810" => "dynamodb",
                _ => "aws",
            };
            return (api, crate::metrics::action_label(op));
        }
        let path = req.uri().path();
        if self
            .routes
            .contains(&(req.method().as_str().to_owned(), path.to_owned()))
        {
            return ("ingest", path.to_owned());
        }
        if path == "/metrics" {
            return ("metrics", "-".into());
        }
        if path.starts_with("/_spillway") {
            return ("inspect", "-".into());
        }
        ("other", "-".into())
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn access(State(log): State<AccessLog>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (api, action) = log.labels(&req);
    let method = log.enabled.then(|| req.method().clone());
    let path = log.enabled.then(|| req.uri().path().to_owned());
    let mut resp = next.run(req).await;
    let elapsed = started.elapsed();
    let status = resp.status();
    let instruments = crate::metrics::instruments();
    instruments
        .http_requests_total
        .with_label_values(&[api, action.as_str(), status.as_str()])
        .inc();
    instruments
        .http_request_duration_seconds
        .with_label_values(&[api])
        .observe(elapsed.as_secs_f64());
    let request_id = match resp.headers().get("x-amzn-requestid") {
        Some(id) => id.to_str().unwrap_or("-").to_owned(),
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            if let Ok(v) = HeaderValue::from_str(&id) {
                resp.headers_mut().insert("x-amzn-requestid", v);
            }
            id
        }
    };
    if log.enabled {
        tracing::info!(
            target: "spillway::access",
            api,
            action = %action,
            method = %method.as_ref().map_or("-", |m| m.as_str()),
            path = %path.as_deref().unwrap_or("-"),
            status = status.as_u16(),
            duration_ms = format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
            request_id = %request_id,
            "request"
        );
    }
    resp
}
