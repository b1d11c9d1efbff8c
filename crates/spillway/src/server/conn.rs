//! The HTTP listener's connection handling: every way a client can hold the server's
//! resources is bounded here, before a request reaches a handler.
//!
//! - **Connections.** At most `max_connections` are served at once on each listener
//!   (capped below the open-file limit, which [`raise_fd_limit`] lifts to its hard limit
//!   first; the HTTPS listener has its own count, so clients of a public HTTPS port cannot
//!   starve the loopback listener's local tools and functions). A connection past the cap
//!   is answered `503` with `Retry-After` (on the HTTPS listener, only closed) right
//!   away, so accept keeps running and a flood of idle connections never starves new
//!   clients.
//! - **Idle and slow clients.** A per-connection watchdog closes a connection that sends
//!   nothing for `idle_timeout_ms` between requests, or whose request headers take more
//!   than `header_read_timeout_ms` from their first byte (slowloris).
//! - **Bodies.** [`crate::server::guard`] wraps each request body: a body that stops
//!   arriving for `body_read_timeout_ms` fails, and bodies in flight count against one
//!   byte budget.
//!
//! - **TLS.** On the HTTPS listener the handshake must finish within
//!   `header_read_timeout_ms`; a failed handshake closes the connection.
//!
//! Shutdown stops accepting, lets each connection finish the request it is serving, and
//! waits for them (hyper's graceful shutdown).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::api::edge::ConnectionStats;
use crate::config::ServerConfig;

/// File descriptors kept back from connections for the engine's files, function
/// processes and their pipes.
const RESERVED_FDS: u64 = 512;

/// Bounds on connections, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
    pub header_read_timeout: Duration,
}

impl ConnectionLimits {
    /// The configured limits, with `max_connections` capped so that every connection
    /// has a file descriptor (`fd_limit` is the soft open-file limit).
    pub fn from_config(server: &ServerConfig, fd_limit: u64) -> Self {
        let by_fds =
            usize::try_from(fd_limit.saturating_sub(RESERVED_FDS).max(64)).unwrap_or(usize::MAX);
        let max_connections = server.max_connections.clamp(1, by_fds);
        if max_connections < server.max_connections {
            tracing::warn!(
                configured = server.max_connections,
                open_file_limit = fd_limit,
                max_connections,
                "max_connections lowered to fit the open-file limit"
            );
        }
        Self {
            max_connections,
            idle_timeout: Duration::from_millis(server.idle_timeout_ms.max(1)),
            header_read_timeout: Duration::from_millis(server.header_read_timeout_ms.max(1)),
        }
    }
}

/// Raises the soft open-file limit to the hard limit; returns the soft limit in force.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let mut wanted = current;
    wanted.current = current.maximum;
    if wanted.current != current.current
        && let Err(e) = setrlimit(Resource::Nofile, wanted)
    {
        tracing::warn!(error = %e, "could not raise the open-file limit");
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// One listening socket: plain HTTP, or HTTPS with its acceptor.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("tcp", &self.tcp)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Serves `app` on `listener` until `stop` resolves, then shuts down gracefully.
pub async fn serve(
    listener: Listener,
    app: Arc<super::Stack>,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
    stop: impl Future<Output = ()> + Send,
) {
    let Listener { tcp: listener, tls } = listener;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    let mut last_accept_warning: Option<Instant> = None;
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: the listener itself is fine; wait a moment for
                    // descriptors to free up instead of spinning.
                    if last_accept_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                        tracing::warn!(error = %e, "accept failed; retrying");
                        last_accept_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            if last_accept_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                tracing::warn!(
                    %peer,
                    max_connections = limits.max_connections,
                    "connection limit reached; refusing new connections with 503"
                );
                last_accept_warning = Some(Instant::now());
            }
            // A TLS client could not read a plain answer: it is only closed.
            if tls.is_none() {
                tokio::spawn(refuse(stream));
            }
            continue;
        };
        let activity = Arc::new(Activity::new());
        let watched = WatchedStream {
            inner: stream,
            activity: Arc::clone(&activity),
        };
        let service = {
            let (app, activity, secure) = (Arc::clone(&app), Arc::clone(&activity), tls.is_some());
            hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                if secure {
                    // What a TLS-terminating proxy tells the server behind it: URLs
                    // handed back (queue URLs) then say https.
                    req.headers_mut().insert(
                        "x-forwarded-proto",
                        hyper::header::HeaderValue::from_static("https"),
                    );
                }
                let app = Arc::clone(&app);
                let busy = InFlight::start(Arc::clone(&activity));
                async move {
                    let resp = app.handle(req.map(axum::body::Body::new)).await;
                    drop(busy);
                    Ok::<_, Infallible>(resp)
                }
            })
        };
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        let stats = Arc::clone(&stats);
        stats.open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let served = async {
                let result = match tls {
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(watched), service);
                        watcher.watch(conn).await
                    }
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(
                            limits.header_read_timeout,
                            acceptor.accept(watched),
                        );
                        match handshake.await {
                            Ok(Ok(secured)) => {
                                // The handshake's bytes were no request's head.
                                activity.became_idle();
                                let conn = builder.serve_connection(TokioIo::new(secured), service);
                                watcher.watch(conn).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        }
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            };
            tokio::select! {
                () = served => {}
                reason = watchdog(&activity, limits) => {
                    stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, reason, "closing connection");
                }
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers a connection past the limit and closes it, without reading its request.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    const BODY: &str =
        r#"{"__type":"ServiceUnavailable","message":"Too many connections; retry later"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// What a connection's watchdog needs to know: times in ms since the connection opened,
/// plus one (0 means "never").
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Requests whose handler is running.
    in_flight: AtomicU32,
    /// Last time a byte arrived.
    last_read: AtomicU64,
    /// When the connection last became idle (no request in flight).
    idle_since: AtomicU64,
    /// First byte after the connection became idle: a request's head is arriving.
    head_started: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            last_read: AtomicU64::new(0),
            idle_since: AtomicU64::new(1),
            head_started: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// No request is arriving now: the idle timeout runs again, not the header one.
    fn became_idle(&self) {
        self.head_started.store(0, Ordering::Relaxed);
        self.idle_since.store(self.now(), Ordering::Relaxed);
    }

    fn read_some(&self) {
        let now = self.now();
        self.last_read.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ =
                self.head_started
                    .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

/// Counts a request in flight on its connection for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_started.store(0, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now(), Ordering::Relaxed);
        a.head_started.store(0, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resolves, naming the reason, once the connection has been idle or slow too long.
async fn watchdog(activity: &Activity, limits: ConnectionLimits) -> &'static str {
    let tick = (limits.idle_timeout.min(limits.header_read_timeout) / 4)
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    let idle_ms = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
    let head_ms = u64::try_from(limits.header_read_timeout.as_millis()).unwrap_or(u64::MAX);
    loop {
        tokio::time::sleep(tick).await;
        if activity.in_flight.load(Ordering::Relaxed) > 0 {
            continue;
        }
        let now = activity.now();
        let head = activity.head_started.load(Ordering::Relaxed);
        if head != 0 {
            if now.saturating_sub(head) > head_ms {
                return "request headers not received in time";
            }
            continue;
        }
        let quiet_since = activity
            .idle_since
            .load(Ordering::Relaxed)
            .max(activity.last_read.load(Ordering::Relaxed));
        if now.saturating_sub(quiet_since) > idle_ms {
            return "idle";
        }
    }
}

/// The TCP stream, noting when bytes arrive.
struct WatchedStream {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
