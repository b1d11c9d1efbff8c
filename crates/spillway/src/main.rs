//! The `spillway` binary.

use std::process::ExitCode;

use clap::Parser;
use spillway::cli::{Cli, Command};
use spillway::config::{Config, DEFAULT_TOML};
use spillway::load::{LoadOptions, Shape, VerifyOptions};

/// `http://host:port/path` -> `http://host:port`.
fn origin_of(url: &str) -> String {
    match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => url[..i + 3 + j].to_owned(),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// mimalloc: the server allocates small, short-lived buffers per request; glibc malloc
/// cost ~8% of CPU under load in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc settings that give freed memory back to the system soon.
///
/// A spike of large POSTs passes hundreds of MB through the allocator; with mimalloc 3's
/// defaults (purge 1 s after a free, arenas committed eagerly) RSS peaked at 360-420 MB
/// under 200 concurrent 100 KB POSTs and stayed near 190 MB after. With a 10 ms purge
/// delay and arenas committed on demand: 230-256 MB at the peak, 118-142 MB 15 s after
/// (`bench/rss_large_posts.sh`), at no measurable cost to ingest throughput. A 0 ms
/// delay bought 20 MB more but cost about 12% of ingest throughput (`bench/compare.sh`).
const ALLOCATOR_ENV: [(&str, &str); 2] = [
    ("MIMALLOC_PURGE_DELAY", "10"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];

/// Restarts this program with [`ALLOCATOR_ENV`] set, once, when none of it is set.
///
/// mimalloc reads its options from the environment when the process starts, before
/// `main`; setting them later (its C API) leaves the first arena eagerly committed. A
/// user's own `MIMALLOC_*` values win: nothing is restarted then. If the restart fails,
/// spillway runs with the defaults.
#[cfg(target_os = "linux")]
fn tune_allocator() {
    use std::os::unix::process::CommandExt;
    if ALLOCATOR_ENV
        .iter()
        .any(|(key, _)| std::env::var_os(key).is_some())
    {
        return;
    }
    let mut args = std::env::args_os();
    let Some(argv0) = args.next() else { return };
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(argv0)
        .args(args)
        .envs(ALLOCATOR_ENV)
        .exec();
    // Only reached when exec failed (e.g. no /proc).
    let _ = err;
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    spillway::cli::init_logging(
        cli.log_level.as_deref().unwrap_or(default_level),
        cli.log_format,
    );
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            config,
            data_dir,
            listen,
            access_log,
            tls_listen,
            tls_cert,
            tls_key,
            stream_engine,
            table_engine,
            worker_id,
            queue_engine,
        } => {
            let mut config = match config {
                Some(path) => Config::load(&path)?,
                None => Config::default(),
            };
            config.server.access_log |= access_log;
            if tls_listen.is_some() {
                config.server.tls_listen = tls_listen;
            }
            if tls_cert.is_some() {
                config.server.tls_cert = tls_cert;
            }
            if tls_key.is_some() {
                config.server.tls_key = tls_key;
            }
            if let Some(url) = stream_engine {
                config.storage.stream_engine = url;
            }
            if let Some(url) = table_engine {
                config.storage.table_engine = url;
            }
            if let Some(id) = worker_id {
                config.workers.worker_id = id;
            }
            if let Some(url) = queue_engine {
                config.workers.queue_engine = url;
            }
            spillway::server::serve(
                config,
                spillway::server::ServeOverrides { data_dir, listen },
            )
            .await
        }
        Command::Config => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Command::Demo {
            requests,
            concurrency,
            function_concurrency,
            delay_ms,
            limits_rate,
            limits_seconds,
            out,
            json,
        } => {
            let opts = spillway::demo::DemoOptions {
                requests,
                concurrency,
                function_concurrency,
                delay_ms,
                limits_rate,
                limits_seconds,
                out: out.clone(),
                progress: !json,
            };
            let report = spillway::demo::run(&opts).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("\n{}", report.render_text());
                let shown = std::fs::canonicalize(&out).unwrap_or(out);
                println!("\nreport: {}", shown.display());
            }
            Ok(())
        }
        Command::Load {
            url,
            requests,
            concurrency,
            rate,
            shape,
            payload,
            headers,
            timeout,
            verify,
            table,
            endpoint,
            verify_timeout,
            json,
        } => {
            let shape = match (shape, rate) {
                (Some(s), _) => Shape::parse(&s).map_err(anyhow::Error::msg)?,
                (None, Some(rate)) => Shape::Constant { rate },
                (None, None) => Shape::Unpaced,
            };
            let endpoint = endpoint.unwrap_or_else(|| origin_of(&url));
            let opts = LoadOptions {
                url,
                total: requests,
                concurrency,
                shape,
                template: payload,
                headers: headers
                    .iter()
                    .map(|h| match h.split_once(':') {
                        Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
                        None => Err(anyhow::anyhow!("invalid header `{h}`: use \"Name: value\"")),
                    })
                    .collect::<anyhow::Result<_>>()?,
                timeout: std::time::Duration::from_secs_f64(timeout),
                progress: !json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
                verify: verify.then(|| VerifyOptions {
                    endpoint,
                    table,
                    timeout: std::time::Duration::from_secs_f64(verify_timeout),
                }),
                bucket: std::time::Duration::from_secs(1),
            };
            let report = spillway::load::run(opts).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render_text());
            }
            match report.failure() {
                Some(why) => Err(anyhow::anyhow!(why)),
                None => Ok(()),
            }
        }
        Command::Table {
            name,
            limit,
            endpoint,
        } => {
            print!(
                "{}",
                spillway::cli::inspect::table(&endpoint, name.as_deref(), limit).await?
            );
            Ok(())
        }
        Command::Mappings { endpoint } => {
            print!("{}", spillway::cli::inspect::mappings(&endpoint).await?);
            Ok(())
        }
        Command::Resources { endpoint } => {
            print!("{}", spillway::cli::inspect::resources(&endpoint).await?);
            Ok(())
        }
        Command::DeadLetters { json, endpoint } => {
            print!(
                "{}",
                spillway::cli::inspect::dead_letters(&endpoint, json).await?
            );
            Ok(())
        }
        Command::Stream {
            name,
            last,
            endpoint,
        } => {
            print!(
                "{}",
                spillway::cli::inspect::stream(&endpoint, name.as_deref(), last).await?
            );
            Ok(())
        }
    }
}
