//! `spillway serve`: wires storage, the domain (streams, tables, functions, mappings) and
//! the HTTP edges together, and shuts them down in order (stop accepting, answer what is
//! in flight, stop the pollers, commit, exit).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::function::Functions;
use crate::mapping::Mappings;
use crate::storage::engine::{self, EngineUrl};
use crate::storage::{Store, StreamStore};
use crate::stream::{Streams, retention};
use crate::table::Tables;

pub mod access;
pub mod conn;
pub mod guard;
pub mod tls;

/// What every request passes through, outermost first: the access layer (counts,
/// durations, request id, access log), the guard (body budget and stall timeout, a
/// panic answered 500), then the endpoint. Plain nested calls: as axum middleware each
/// layer boxed and cloned the service inside it on every request.
pub struct Stack {
    access: access::AccessLog,
    guard: guard::RequestGuard,
    /// Shown by `/_spillway/*` (an extension on those requests only).
    listener_health: crate::api::edge::ListenerHealth,
    endpoint: crate::api::Endpoint,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Answers one request.
    pub async fn handle(&self, request: axum::extract::Request) -> axum::response::Response {
        access::access(&self.access, request, |request| {
            guard::guard(&self.guard, request, |mut request| {
                if request.uri().path().starts_with("/_spillway") {
                    request
                        .extensions_mut()
                        .insert(self.listener_health.clone());
                }
                self.endpoint.handle(request)
            })
        })
        .await
    }
}

/// Overrides given on the command line.
#[derive(Debug, Default, Clone)]
pub struct ServeOverrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
}

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn serve(config: Config, overrides: ServeOverrides) -> anyhow::Result<()> {
    let running = start(config, overrides).await?;
    // The first line on stdout names the address, so scripts and tests can find a
    // server started on port 0.
    println!("spillway listening on http://{}", running.addr);
    if let Some(addr) = running.tls_addr {
        println!("spillway listening on https://{addr}");
    }
    shutdown_signal().await;
    running.stop().await
}

/// A server running in this process.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    /// The HTTPS listener's address, when `tls_listen` is set.
    pub tls_addr: Option<SocketAddr>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, answers what is in flight, stops the pollers, commits, returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// Opens storage, starts the domain and binds the listener; serves in the background
/// until [`Running::stop`].
pub async fn start(mut config: Config, overrides: ServeOverrides) -> anyhow::Result<Running> {
    if let Some(d) = overrides.data_dir {
        config.server.data_dir = d;
    }
    if let Some(l) = overrides.listen {
        config.server.listen = l;
    }
    guard::install_panic_logging();
    let fd_limit = conn::raise_fd_limit();
    let data_dir = config.server.data_dir.clone();
    create_private_dir(&data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let stream_engine = EngineUrl::parse(&config.storage.stream_engine, &data_dir)?;
    let table_engine = EngineUrl::parse(&config.storage.table_engine, &data_dir)?;
    let mut remote = engine::remote(&stream_engine, &table_engine, &config.region)?;
    let queue_engine = config.workers.queue_engine.trim();
    match remote.as_mut() {
        Some(engines) if !queue_engine.is_empty() => {
            let endpoint = engine::queue_engine(queue_engine)?;
            let client = crate::remote::sqs::SqsClient::new(&endpoint, &config.region)
                .with_context(|| format!("setting up the client of {queue_engine}"))?;
            engines.queues = Some(Arc::new(client));
        }
        None if !queue_engine.is_empty() => tracing::warn!(
            queue_engine,
            "queue_engine is for workers over remote engines; embedded, on-failure records \
             go to spillway's own queues"
        ),
        _ => {}
    }
    let (stream_engine, table_engine) = if remote.is_some() {
        tracing::info!(
            streams = %stream_engine,
            tables = %table_engine,
            "worker over remote engines: records, items and leases are kept there; this \
             process's control-plane resources (functions, APIs, queues) are its own, in memory"
        );
        (EngineUrl::Memory, EngineUrl::Memory)
    } else {
        (stream_engine, table_engine)
    };
    if stream_engine == EngineUrl::Memory && remote.is_none() {
        tracing::warn!(
            "streams and tables are kept in memory (memory://): everything is lost when \
             spillway stops, and a 200 promises nothing past this process"
        );
    }
    let store: Arc<dyn Store> =
        tokio::task::spawn_blocking(move || engine::open(&stream_engine, &table_engine)).await??;
    let (streams, tables) = {
        let (config, store) = (config.clone(), Arc::clone(&store));
        let mut stream_settings = config.streams_settings();
        if remote.is_some() {
            // A worker's streams are the engine's; none is kept here, so no local view
            // shows an empty copy of one.
            stream_settings.streams.clear();
        }
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let streams =
                Streams::open(Arc::clone(&store) as Arc<dyn StreamStore>, &stream_settings)?;
            let tables = Tables::open(store, &config.tables_settings())?;
            Ok((Arc::new(streams), Arc::new(tables)))
        })
        .await??
    };
    // Bound before the functions exist: Runtime API functions are told this address as
    // their AWS endpoint. Connections wait in the accept queue until serving starts.
    let listener =
        bind(config.server.listen).with_context(|| format!("binding {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let tls_listener = match tls::from_config(&config.server)? {
        Some((at, acceptor)) => Some(conn::Listener {
            tcp: bind(at).with_context(|| format!("binding the HTTPS listener {at}"))?,
            tls: Some(acceptor),
        }),
        None => None,
    };
    let tls_addr = tls_listener
        .as_ref()
        .map(|l| l.tcp.local_addr())
        .transpose()?;
    let beyond_loopback = std::iter::once(addr)
        .chain(tls_addr)
        .find(|a| !a.ip().is_loopback());
    if let Some(addr) = beyond_loopback
        && !config.security.verify_signatures
    {
        tracing::warn!(
            %addr,
            "listening beyond loopback without signature verification: anyone who can reach \
             this address can read and delete streams and tables; set [security] \
             verify_signatures = true (see README, Authentication)"
        );
    }
    let functions = Arc::new(Functions::from_config(&config, &tables, addr));
    // A worker's mappings run through leases (`worker`), not one poller per shard here.
    let local_mappings = if remote.is_some() {
        Config {
            mappings: Vec::new(),
            ..config.clone()
        }
    } else {
        config.clone()
    };
    let mappings = Arc::new(Mappings::start(
        &local_mappings,
        Arc::clone(&store),
        Arc::clone(&streams),
        Arc::clone(&tables),
        Arc::clone(&functions),
    )?);
    // Functions and mappings created through Lambda's API, registered again.
    let lambda = Arc::new(crate::lambda::Lambda::new(
        &config,
        Arc::clone(&store) as Arc<dyn crate::storage::ResourceStore>,
        Arc::clone(&functions),
        Arc::clone(&mappings),
    ));
    {
        let lambda = Arc::clone(&lambda);
        tokio::task::spawn_blocking(move || lambda.restore()).await??;
    }
    let worker = match &remote {
        Some(engines) => Some(
            crate::worker::Worker::start(
                &config,
                engines.clone(),
                Arc::clone(&functions),
                Arc::clone(&tables),
                worker_settings(&config.workers),
            )
            .await?,
        ),
        None => None,
    };
    let retention = tokio::spawn(retention::run(
        Arc::clone(&streams),
        Duration::from_millis(config.storage.retention_check_interval_ms.max(10)),
    ));
    let ttl_sweep = tokio::spawn(crate::table::run_ttl_sweep(
        Arc::clone(&tables),
        Duration::from_millis(config.dynamodb.ttl_check_interval_ms.max(10)),
    ));

    let request_guard = guard::RequestGuard::new(
        config.server.request_body_budget_bytes,
        Duration::from_millis(config.server.body_read_timeout_ms.max(1)),
    );
    let listener_health = crate::api::edge::ListenerHealth {
        connections: Arc::default(),
        guard: Arc::clone(&request_guard.stats),
    };
    let connection_stats = Arc::clone(&listener_health.connections);
    let endpoint = crate::api::endpoint(
        &config,
        crate::api::Services {
            streams: Arc::clone(&streams),
            tables: Arc::clone(&tables),
            mappings: Arc::clone(&mappings),
            functions: Arc::clone(&functions),
            iterators: crate::api::kinesis::iterator::IteratorCodec::load_or_create(
                &config.server.data_dir,
            )?,
            remote: remote.clone().map(Arc::new),
            worker: worker.clone(),
        },
        Arc::clone(&store) as Arc<dyn crate::storage::ResourceStore>,
        lambda,
    );
    let app = Arc::new(Stack {
        access: access::AccessLog::new(
            config
                .routes
                .iter()
                .map(|r| (r.method.as_str(), r.path.as_str())),
            config.server.access_log,
        ),
        guard: request_guard,
        listener_health,
        endpoint,
    });
    let limits = conn::ConnectionLimits::from_config(&config.server, fd_limit);
    tracing::info!(
        %addr,
        https = ?tls_addr,
        data_dir = %config.server.data_dir.display(),
        engine = %config.storage.stream_engine,
        durability = ?config.storage.durability,
        max_connections = limits.max_connections,
        open_file_limit = fd_limit,
        "serving"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let (quit, quitting) = tokio::sync::watch::channel(false);
        let until_quit = |mut quitting: tokio::sync::watch::Receiver<bool>| async move {
            let _ = quitting.wait_for(|q| *q).await;
        };
        let plain = conn::Listener {
            tcp: listener,
            tls: None,
        };
        let listeners = std::iter::once(plain).chain(tls_listener).map(|l| {
            conn::serve(
                l,
                Arc::clone(&app),
                limits,
                Arc::clone(&connection_stats),
                until_quit(quitting.clone()),
            )
        });
        let draining = Arc::clone(&streams);
        let stopping = async move {
            let _ = stopped.await;
            // Open-ended responses (SubscribeToShard) end now, so that the graceful
            // shutdown waits only for requests.
            draining.begin_drain();
            let _ = quit.send(true);
        };
        tokio::join!(futures_util::future::join_all(listeners), stopping);
        ttl_sweep.abort();
        if let Some(w) = worker {
            w.shutdown().await;
        }
        finish(streams, mappings, retention, store).await
    });
    Ok(Running {
        addr,
        tls_addr,
        stop,
        task,
    })
}

async fn finish(
    streams: Arc<Streams>,
    mappings: Arc<Mappings>,
    retention: tokio::task::JoinHandle<()>,
    store: Arc<dyn Store>,
) -> anyhow::Result<()> {
    tracing::info!("stopped accepting; committing queued records");
    retention.abort();
    mappings.stop();
    let s = Arc::clone(&streams);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        s.shutdown();
        // Table writes and checkpoints are committed without fsync while running; make
        // them durable before exiting so a clean stop never replays.
        store.apply(&[], crate::storage::SyncMode::SyncData)?;
        Ok(())
    })
    .await??;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// The worker's settings from `[workers]`; an empty id becomes `{hostname}-{pid}`.
fn worker_settings(w: &crate::config::WorkersConfig) -> crate::worker::WorkerSettings {
    let worker_id = if w.worker_id.is_empty() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "spillway".into());
        format!("{host}-{}", std::process::id())
    } else {
        w.worker_id.clone()
    };
    crate::worker::WorkerSettings {
        worker_id,
        lease_table: w.lease_table.clone(),
        lease_duration: Duration::from_millis(w.lease_duration_ms),
        renew_interval: Duration::from_millis(w.renew_interval_ms),
        poll_interval: Duration::from_millis(w.poll_interval_ms.max(1)),
    }
}

/// Binds the listener with a deep accept queue: a spike opens hundreds of connections at
/// once, and with the default backlog the kernel drops SYNs that then wait a whole
/// second for their retransmit.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}

/// Creates the data dir readable by its owner only (0700): it holds every record, item
/// and the iterator signing key. An existing dir is tightened, with a warning.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            data_dir = %dir.display(),
            mode = format!("{mode:o}"),
            "data dir was readable by others; setting it to 0700"
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
