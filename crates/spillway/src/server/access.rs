//! The outermost layer: counts and times every request for `/metrics`
//! (`spillway_http_requests_total{api,action,status}`,
//! `spillway_http_request_duration_seconds{api}`), gives every response an
//! `x-amzn-RequestId`, and writes the access log when it is on.
//!
//! Why here and not in each API: one place sees every answer, the guard's 503s and 500s
//! included, with the same labels. It runs on every request, so it allocates nothing
//! unless the access log is on: labels are borrowed or interned, histogram handles are
//! resolved once per API.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;

/// Every value of the `api` label.
const APIS: [&str; 7] = [
    "kinesis", "dynamodb", "aws", "ingest", "metrics", "inspect", "other",
];

/// `spillway_http_request_duration_seconds{api}`, one handle per [`APIS`] entry.
static DURATIONS: LazyLock<Vec<prometheus::Histogram>> = LazyLock::new(|| {
    APIS.iter()
        .map(|api| {
            crate::metrics::instruments()
                .http_request_duration_seconds
                .with_label_values(&[api])
        })
        .collect()
});

/// What the access layer needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct AccessLog {
    /// Configured ingest routes (method and path): their path is their action label.
    routes: Arc<Vec<(Method, String)>>,
    /// One log line per request.
    pub enabled: bool,
}

impl AccessLog {
    pub fn new<'a>(routes: impl Iterator<Item = (&'a str, &'a str)>, enabled: bool) -> Self {
        Self {
            routes: Arc::new(
                routes
                    .filter_map(|(m, p)| {
                        Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                            .ok()
                            .map(|m| (m, p.to_owned()))
                    })
                    .collect(),
            ),
            enabled,
        }
    }

    /// The index in [`APIS`] and the `action` label of a request. Every value comes
    /// from a bounded set (configured routes, fixed names, or
    /// [`crate::metrics::action_label`]).
    fn labels<'a>(&'a self, req: &Request) -> (usize, &'a str) {
        if let Some(target) = req
            .headers()
            .get(&crate::api::names::X_AMZ_TARGET)
            .and_then(|v| v.to_str().ok())
        {
            let (service, op) = target.split_once('.').unwrap_or(("", target));
            let api = match service {
                "Kinesis_20131202" => 0,
                "DynamoDB_20120810" => 1,
                _ => 2,
            };
            return (api, crate::metrics::action_label(op));
        }
        let path = req.uri().path();
        if let Some((_, route)) = self
            .routes
            .iter()
            .find(|(m, p)| p == path && m == req.method())
        {
            return (3, route.as_str());
        }
        if path == "/metrics" {
            return (4, "-");
        }
        if path.starts_with("/_spillway") {
            return (5, "-");
        }
        (6, "-")
    }
}

/// Runs `next` (the rest of the stack) counted, timed and logged.
pub async fn access<F, Fut>(log: &AccessLog, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let started = Instant::now();
    let (api, action) = log.labels(&req);
    let seen = log
        .enabled
        .then(|| (req.method().clone(), req.uri().path().to_owned()));
    let mut resp = next(req).await;
    let elapsed = started.elapsed();
    let status = resp.status();
    crate::metrics::instruments()
        .http_requests_total
        .with_label_values(&[APIS[api], action, status.as_str()])
        .inc();
    DURATIONS[api].observe(elapsed.as_secs_f64());
    if !resp
        .headers()
        .contains_key(&crate::api::names::X_AMZN_REQUEST_ID)
    {
        resp.headers_mut().insert(
            crate::api::names::X_AMZN_REQUEST_ID,
            crate::api::uuid_request_id(),
        );
    }
    if let Some((method, path)) = seen {
        let request_id = resp
            .headers()
            .get(&crate::api::names::X_AMZN_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info!(
            target: "spillway::access",
            api = APIS[api],
            action = %action,
            %method,
            %path,
            status = status.as_u16(),
            duration_ms = format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
            request_id,
            "request"
        );
    }
    resp
}
