//! The `spillway` binary.

use std::process::ExitCode;

use clap::Parser;
use spillway::cli::{Cli, Command};
use spillway::config::{Config, DEFAULT_TOML};

/// mimalloc: the server allocates small, short-lived buffers per request; glibc malloc
/// cost ~8% of CPU under load in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    spillway::cli::init_logging(&cli.log_level);
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
        } => {
            let config = match config {
                Some(path) => Config::load(&path)?,
                None => Config::default(),
            };
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
