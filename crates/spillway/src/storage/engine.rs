//! Which engine keeps streams and tables, chosen by URL.
//!
//! `--stream-engine URL` and `--table-engine URL` (or `[storage] stream_engine` and
//! `table_engine`) name an engine by scheme:
//! - `fjall://PATH`: the embedded engine on local disk ([`super::fjall_engine`]);
//!   `fjall://` alone keeps it in the data dir. The default.
//! - `memory://`: in memory ([`super::memory_engine`]), gone when spillway stops: for
//!   tests and demos.
//! - `kinesis+http://HOST:PORT` (streams) with `dynamodb+http://HOST:PORT` (tables):
//!   remote engines (`crate::remote`) that this process shares with other workers
//!   (`crate::worker`); the engines assign positions and keep everything durable.
//! - `postgres://USER@HOST:PORT/DB` (tables, beside `kinesis+http://` streams): items
//!   and leases in PostgreSQL (`crate::remote::postgres`).
//!
//! Embedded, streams and tables are on one engine: a mapping commits a batch's items
//! together with its checkpoint in one atomic write, which needs both in the same
//! engine. Two different embedded URLs are refused with that reason; a remote stream
//! engine needs a remote table engine (leases and checkpoints live there).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fjall_engine::FjallStore;
use super::memory_engine::MemoryStore;
use super::{StorageError, Store};

/// The schemes this build knows, as a person would write them.
const KNOWN: &str = "fjall://PATH, memory://, kinesis+http://HOST:PORT (streams), dynamodb+http://HOST:PORT or postgres://USER@HOST:PORT/DB (tables)";

/// An engine, as its URL names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineUrl {
    /// The embedded engine, in this directory.
    Fjall(PathBuf),
    /// In memory.
    Memory,
    /// A Kinesis-API endpoint (`HOST:PORT`) keeping the streams.
    Kinesis(String),
    /// A DynamoDB-API endpoint (`HOST:PORT`) keeping the tables and the leases.
    DynamoDb(String),
    /// A PostgreSQL database (the whole URL) keeping the tables and the leases.
    Postgres(String),
}

/// Why an engine URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("engine URL {url:?} has no scheme; engines: {KNOWN}")]
    NoScheme { url: String },
    #[error(
        "engine scheme {scheme:?} (in {url:?}) is not built into this spillway; engines: {KNOWN}"
    )]
    UnknownScheme { url: String, scheme: String },
    #[error("memory:// takes nothing after the scheme (got {url:?})")]
    MemoryWithPath { url: String },
    #[error("{url:?}: a remote engine is named by HOST:PORT after the scheme")]
    NoHost { url: String },
    #[error(
        "{url:?}: AWS's own endpoints take HTTPS only, and this spillway has no TLS client yet; \
         kinesis+http:// and dynamodb+http:// reach any endpoint that speaks plain HTTP"
    )]
    NoTls { url: String },
    #[error(
        "streams on {streams} and tables on {tables}: a worker over remote engines needs \
         kinesis+http://HOST:PORT for the streams and dynamodb+http://HOST:PORT or \
         postgres://... for the tables"
    )]
    RemotePair { streams: String, tables: String },
    #[error(
        "streams on {streams} and tables on {tables}: streams and tables must be on the same \
         engine for now (a mapping commits its items with its checkpoint in one atomic write)"
    )]
    Split { streams: String, tables: String },
    #[error("opening {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: StorageError,
    },
}

impl EngineUrl {
    /// Reads an engine URL; `fjall://` without a path means `data_dir`.
    pub fn parse(url: &str, data_dir: &Path) -> Result<Self, EngineError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(EngineError::NoScheme { url: url.into() });
        };
        match scheme {
            "fjall" if rest.is_empty() => Ok(Self::Fjall(data_dir.to_path_buf())),
            "fjall" => Ok(Self::Fjall(PathBuf::from(rest))),
            "memory" if rest.is_empty() => Ok(Self::Memory),
            "memory" => Err(EngineError::MemoryWithPath { url: url.into() }),
            "postgres" | "postgresql" if !rest.is_empty() => Ok(Self::Postgres(url.into())),
            "kinesis" | "dynamodb" | "kinesis+https" | "dynamodb+https" => {
                Err(EngineError::NoTls { url: url.into() })
            }
            "kinesis+http" | "dynamodb+http" => {
                let host = rest.trim_end_matches('/');
                if host.is_empty() || host.contains('/') {
                    return Err(EngineError::NoHost { url: url.into() });
                }
                Ok(if scheme == "kinesis+http" {
                    Self::Kinesis(host.into())
                } else {
                    Self::DynamoDb(host.into())
                })
            }
            _ => Err(EngineError::UnknownScheme {
                url: url.into(),
                scheme: scheme.into(),
            }),
        }
    }
}

impl std::fmt::Display for EngineUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fjall(dir) => write!(f, "fjall://{}", dir.display()),
            Self::Memory => f.write_str("memory://"),
            Self::Kinesis(host) => write!(f, "kinesis+http://{host}"),
            Self::DynamoDb(host) => write!(f, "dynamodb+http://{host}"),
            // The password stays out of logs.
            Self::Postgres(url) => f.write_str(&crate::remote::postgres::redacted(url)),
        }
    }
}

impl EngineUrl {
    fn is_remote(&self) -> bool {
        matches!(
            self,
            Self::Kinesis(_) | Self::DynamoDb(_) | Self::Postgres(_)
        )
    }
}

/// The remote engines a worker runs over, when the URLs name them; None for an
/// embedded engine; an error for a mix.
pub fn remote(
    streams: &EngineUrl,
    tables: &EngineUrl,
    region: &str,
) -> Result<Option<crate::remote::RemoteEngines>, EngineError> {
    match (streams, tables) {
        (EngineUrl::Kinesis(k), EngineUrl::DynamoDb(d)) => Ok(Some(crate::remote::RemoteEngines {
            kinesis: crate::remote::kinesis::KinesisClient::new(k, region),
            tables: crate::remote::TableEngine::DynamoDb(
                crate::remote::dynamodb::DynamoDbClient::new(d, region),
            ),
        })),
        (EngineUrl::Kinesis(k), EngineUrl::Postgres(url)) => {
            Ok(Some(crate::remote::RemoteEngines {
                kinesis: crate::remote::kinesis::KinesisClient::new(k, region),
                tables: crate::remote::TableEngine::Postgres(
                    crate::remote::postgres::PostgresTables::new(url),
                ),
            }))
        }
        (s, t) if s.is_remote() || t.is_remote() => Err(EngineError::RemotePair {
            streams: s.to_string(),
            tables: t.to_string(),
        }),
        _ => Ok(None),
    }
}

/// Opens the engine that keeps both streams and tables. Blocks (the embedded engine
/// replays its journal); call off the async runtime.
pub fn open(streams: &EngineUrl, tables: &EngineUrl) -> Result<Arc<dyn Store>, EngineError> {
    if streams != tables {
        return Err(EngineError::Split {
            streams: streams.to_string(),
            tables: tables.to_string(),
        });
    }
    match streams {
        EngineUrl::Fjall(dir) => match FjallStore::open(dir) {
            Ok(store) => Ok(Arc::new(store)),
            Err(source) => Err(EngineError::Open {
                url: streams.to_string(),
                source,
            }),
        },
        EngineUrl::Memory => Ok(Arc::new(MemoryStore::new())),
        EngineUrl::Kinesis(_) | EngineUrl::DynamoDb(_) | EngineUrl::Postgres(_) => {
            Err(EngineError::RemotePair {
                streams: streams.to_string(),
                tables: tables.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_engines_and_unknown_ones_are_refused_with_the_known_list() {
        let data = Path::new("/var/lib/spillway");
        assert_eq!(
            EngineUrl::parse("fjall://", data).unwrap(),
            EngineUrl::Fjall(data.into())
        );
        assert_eq!(
            EngineUrl::parse("fjall:///srv/x", data).unwrap(),
            EngineUrl::Fjall("/srv/x".into())
        );
        assert_eq!(
            EngineUrl::parse("memory://", data).unwrap(),
            EngineUrl::Memory
        );
        let e = EngineUrl::parse("cassandra://db/x", data).unwrap_err();
        assert!(e.to_string().contains("\"cassandra\""), "{e}");
        assert!(e.to_string().contains("memory://"), "{e}");
        let pg = EngineUrl::parse("postgres://app:s3cret@db:5432/spillway", data).unwrap();
        assert_eq!(pg.to_string(), "postgres://app@db:5432/spillway");
        assert!(EngineUrl::parse("memory://x", data).is_err());
        assert_eq!(
            EngineUrl::parse("kinesis+http://127.0.0.1:4566/", data).unwrap(),
            EngineUrl::Kinesis("127.0.0.1:4566".into())
        );
        assert!(EngineUrl::parse("dynamodb+http://", data).is_err());
        let e = EngineUrl::parse("kinesis://eu-west-1", data).unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
        let (k, d) = (
            EngineUrl::parse("kinesis+http://h:1", data).unwrap(),
            EngineUrl::parse("dynamodb+http://h:2", data).unwrap(),
        );
        assert!(remote(&k, &d, "us-east-1").unwrap().is_some());
        assert!(
            remote(&EngineUrl::Memory, &EngineUrl::Memory, "us-east-1")
                .unwrap()
                .is_none()
        );
        let e = remote(&k, &EngineUrl::Memory, "us-east-1").unwrap_err();
        assert!(e.to_string().contains("dynamodb+http://"), "{e}");
        assert!(EngineUrl::parse("/srv/x", data).is_err());
    }

    #[test]
    fn streams_and_tables_on_different_engines_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fjall = EngineUrl::Fjall(dir.path().into());
        let Err(e) = open(&fjall, &EngineUrl::Memory) else {
            panic!("opened a split engine");
        };
        assert!(e.to_string().contains("same engine"), "{e}");
        assert!(open(&EngineUrl::Memory, &EngineUrl::Memory).is_ok());
    }
}
