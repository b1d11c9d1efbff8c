//! The layer around every handler: a panic becomes a 500 in the request's protocol
//! shape (never an abort, never the panic's text on the wire); request bodies count
//! against one byte budget and fail when they stop arriving.
//!
//! The budget: a request that declares its length reserves it before its body is read
//! and holds it until its response is ready; past the budget it is answered 503 with
//! `Retry-After`, unread. A chunked body (no length) is charged as its chunks arrive and
//! fails once the budget is gone. So the memory held by bodies being received is bounded
//! by `request_body_budget_bytes`, whatever the number of connections.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use std::future::Future;

use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use futures_util::FutureExt;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::edge::{self, GuardStats, Protocol};

/// State of the guard layer.
#[derive(Debug, Clone)]
pub struct RequestGuard {
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    body_timeout: Duration,
    pub stats: Arc<GuardStats>,
}

impl RequestGuard {
    pub fn new(budget_bytes: usize, body_timeout: Duration) -> Self {
        let budget_bytes = budget_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            budget: Arc::new(Semaphore::new(budget_bytes)),
            budget_bytes,
            body_timeout,
            stats: Arc::default(),
        }
    }

    /// Body bytes being received or held by handlers now.
    pub fn bytes_in_flight(&self) -> usize {
        self.budget_bytes - self.budget.available_permits()
    }
}

/// Runs `next` (the rest of the stack) under the guard.
pub async fn guard<F, Fut>(g: &RequestGuard, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let protocol = Protocol::of(req.headers());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // A body larger than the whole budget is refused by its route's own size limit;
    // it reserves the whole budget meanwhile.
    let reserved = match declared {
        Some(n) if n > 0 => {
            let n = u32::try_from(n.min(g.budget_bytes)).unwrap_or(u32::MAX);
            match Arc::clone(&g.budget).try_acquire_many_owned(n) {
                Ok(p) => Some(p),
                Err(_) => {
                    g.stats.over_budget.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("request body budget spent; answering 503");
                    return edge::unavailable(
                        protocol,
                        "Too many request bytes in flight; retry later",
                    );
                }
            }
        }
        _ => None,
    };
    let held: HeldPermits = Arc::default();
    let charge = declared
        .is_none()
        .then(|| (Arc::clone(&g.budget), Arc::clone(&held)));
    let (stats, timeout) = (Arc::clone(&g.stats), g.body_timeout);
    let req = req.map(|body| {
        Body::new(GuardedBody {
            inner: body,
            timeout,
            stall: None,
            charge,
            stats,
        })
    });
    let answer = AssertUnwindSafe(next(req)).catch_unwind().await;
    drop(reserved);
    drop(held);
    answer.unwrap_or_else(|_| {
        // The panic hook has logged the message, location and backtrace.
        g.stats.panics.fetch_add(1, Ordering::Relaxed);
        edge::internal_error(protocol)
    })
}

/// Installs a panic hook that logs every panic (handler or not) at error level with
/// its location and a backtrace, once per process.
pub fn install_panic_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let backtrace = std::backtrace::Backtrace::force_capture();
            let thread = std::thread::current();
            tracing::error!(
                thread = thread.name().unwrap_or("unnamed"),
                panic = %info,
                "panic (a handler's panic is answered 500)\n{backtrace}"
            );
        }));
    });
}

/// Budget charged by a chunked body so far, released with the request.
type HeldPermits = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// Why a guarded body failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyGuardError {
    #[error("the request body stopped arriving for {0:?}")]
    Stalled(Duration),
    #[error("too many request bytes in flight; retry later")]
    OverBudget,
    #[error(transparent)]
    Read(#[from] axum::Error),
}

/// A request body that fails when it stalls, and (without a declared length) charges
/// its bytes to the budget as they arrive.
struct GuardedBody {
    inner: Body,
    timeout: Duration,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    charge: Option<(Arc<Semaphore>, HeldPermits)>,
    stats: Arc<GuardStats>,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = BodyGuardError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyGuardError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => {
                let timeout = self.timeout;
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if stall.as_mut().poll(cx).is_ready() {
                    self.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(BodyGuardError::Stalled(timeout))));
                }
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => {
                self.stall = None;
                if let (Some(data), Some((budget, held))) = (frame.data_ref(), &self.charge) {
                    let n = u32::try_from(data.len()).unwrap_or(u32::MAX);
                    let permit = Arc::clone(budget)
                        .try_acquire_many_owned(n)
                        .map_err(|_| BodyGuardError::OverBudget);
                    match permit {
                        Ok(p) => {
                            let mut h = held.lock().unwrap_or_else(|e| e.into_inner());
                            match h.as_mut() {
                                Some(all) => all.merge(p),
                                None => *h = Some(p),
                            }
                        }
                        Err(e) => {
                            self.stats.over_budget.fetch_add(1, Ordering::Relaxed);
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new().route(
            "/",
            post(|body: String| async move {
                // A handler bug: the secret detail must not reach the client.
                let depth: Option<usize> = body.find("never");
                depth.expect("secret internal detail").to_string()
            }),
        )
    }

    async fn call(target: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = axum::http::Request::post("/");
        if let Some(t) = target {
            req = req.header("x-amz-target", t);
        }
        let g = RequestGuard::new(1 << 20, Duration::from_secs(5));
        let resp = guard(&g, req.body(Body::from("{}")).unwrap(), |req| async move {
            app().oneshot(req).await.unwrap_or_else(|e| match e {})
        })
        .await;
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_the_protocols_shape() {
        install_panic_logging();
        let (status, v) = call(Some("DynamoDB_20120810.PutItem")).await;
        assert_eq!(status, 500);
        assert_eq!(
            v["__type"],
            "com.amazonaws.dynamodb.v20120810#InternalServerError"
        );
        let (status, v) = call(Some("Kinesis_20131202.PutRecord")).await;
        assert_eq!(status, 500);
        assert_eq!(v["__type"], "InternalFailure");
        let (status, v) = call(None).await;
        assert_eq!(status, 500);
        assert_eq!(v["__type"], "InternalServerErrorException");
        assert!(!v.to_string().contains("secret"), "{v}");
    }
}
