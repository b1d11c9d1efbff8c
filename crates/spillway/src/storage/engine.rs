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
//!   `kinesis+https://` and `dynamodb+https://` reach them over TLS; `kinesis://REGION`
//!   and `dynamodb://REGION` are AWS's own endpoints (`crate::remote::endpoint`).
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
use crate::remote::dynamodb::DynamoDbClient;
use crate::remote::kinesis::KinesisClient;
use crate::remote::{Endpoint, TableEngine};

/// The schemes this build knows, as a person would write them.
const KNOWN: &str = "fjall://PATH, memory://, kinesis://REGION or kinesis+http(s)://HOST:PORT (streams), dynamodb://REGION, dynamodb+http(s)://HOST:PORT or postgres://USER@HOST:PORT/DB (tables)";

/// An engine, as its URL names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineUrl {
    /// The embedded engine, in this directory.
    Fjall(PathBuf),
    /// In memory.
    Memory,
    /// A Kinesis-API endpoint keeping the streams.
    Kinesis(Endpoint),
    /// A DynamoDB-API endpoint keeping the tables and the leases.
    DynamoDb(Endpoint),
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
    #[error("{url:?}: an AWS endpoint is named by its region (kinesis://eu-west-1)")]
    NoRegion { url: String },
    #[error(
        "streams on {streams} and tables on {tables}: a worker over remote engines needs \
         kinesis://REGION or kinesis+http(s)://HOST:PORT for the streams and \
         dynamodb://REGION, dynamodb+http(s)://HOST:PORT or postgres://... for the tables"
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
    #[error("setting up the client of {url}: {source}")]
    Client {
        url: String,
        #[source]
        source: crate::remote::RemoteError,
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
            "kinesis" | "dynamodb" | "kinesis+http" | "dynamodb+http" | "kinesis+https"
            | "dynamodb+https" => {
                let endpoint = remote_endpoint(scheme, rest, url)?;
                Ok(if scheme.starts_with("kinesis") {
                    Self::Kinesis(endpoint)
                } else {
                    Self::DynamoDb(endpoint)
                })
            }
            _ => Err(EngineError::UnknownScheme {
                url: url.into(),
                scheme: scheme.into(),
            }),
        }
    }
}

/// The endpoint of `SERVICE://REGION` (AWS's), `SERVICE+http://HOST:PORT` or
/// `SERVICE+https://HOST[:PORT]`; `rest` is what follows the scheme in `url`.
fn remote_endpoint(scheme: &str, rest: &str, url: &str) -> Result<Endpoint, EngineError> {
    let rest = rest.trim_end_matches('/');
    match scheme.split_once('+') {
        None => {
            let valid = !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid {
                return Err(EngineError::NoRegion { url: url.into() });
            }
            Ok(Endpoint::aws(scheme, rest))
        }
        Some((_, transport)) => {
            if rest.is_empty() || rest.contains('/') {
                return Err(EngineError::NoHost { url: url.into() });
            }
            Ok(if transport == "https" {
                Endpoint::https(rest)
            } else {
                Endpoint::http(rest)
            })
        }
    }
}

/// A worker's queue engine (`[workers] queue_engine`, `--queue-engine`): `sqs://REGION`,
/// `sqs+http://HOST:PORT` or `sqs+https://HOST[:PORT]`.
pub fn queue_engine(url: &str) -> Result<Endpoint, EngineError> {
    match url.split_once("://") {
        Some((scheme @ ("sqs" | "sqs+http" | "sqs+https"), rest)) => {
            remote_endpoint(scheme, rest, url)
        }
        Some((scheme, _)) => Err(EngineError::UnknownScheme {
            url: url.into(),
            scheme: scheme.into(),
        }),
        None => Err(EngineError::NoScheme { url: url.into() }),
    }
}

impl std::fmt::Display for EngineUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fjall(dir) => write!(f, "fjall://{}", dir.display()),
            Self::Memory => f.write_str("memory://"),
            Self::Kinesis(endpoint) => f.write_str(&endpoint.engine_url("kinesis")),
            Self::DynamoDb(endpoint) => f.write_str(&endpoint.engine_url("dynamodb")),
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
    let client = |url: &EngineUrl| {
        let url = url.to_string();
        move |source| EngineError::Client { url, source }
    };
    match (streams, tables) {
        (EngineUrl::Kinesis(k), EngineUrl::DynamoDb(d)) => Ok(Some(crate::remote::RemoteEngines {
            kinesis: KinesisClient::new(k, region).map_err(client(streams))?,
            tables: TableEngine::DynamoDb(DynamoDbClient::new(d, region).map_err(client(tables))?),
            queues: None,
        })),
        (EngineUrl::Kinesis(k), EngineUrl::Postgres(url)) => {
            Ok(Some(crate::remote::RemoteEngines {
                kinesis: KinesisClient::new(k, region).map_err(client(streams))?,
                tables: TableEngine::Postgres(crate::remote::postgres::PostgresTables::new(url)),
                queues: None,
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
            EngineUrl::Kinesis(Endpoint::http("127.0.0.1:4566"))
        );
        assert!(EngineUrl::parse("dynamodb+http://", data).is_err());
        let aws = EngineUrl::parse("kinesis://eu-west-1", data).unwrap();
        assert_eq!(
            aws,
            EngineUrl::Kinesis(Endpoint::aws("kinesis", "eu-west-1"))
        );
        assert_eq!(aws.to_string(), "kinesis://eu-west-1");
        let tls = EngineUrl::parse("dynamodb+https://db.internal:8443", data).unwrap();
        assert_eq!(
            tls,
            EngineUrl::DynamoDb(Endpoint::https("db.internal:8443"))
        );
        assert_eq!(tls.to_string(), "dynamodb+https://db.internal:8443");
        assert_eq!(
            queue_engine("sqs://eu-west-1").unwrap(),
            Endpoint::aws("sqs", "eu-west-1")
        );
        assert_eq!(
            queue_engine("sqs+http://127.0.0.1:4566").unwrap(),
            Endpoint::http("127.0.0.1:4566")
        );
        assert!(queue_engine("kinesis+http://h:1").is_err());
        for bad in ["kinesis://", "dynamodb://EU_WEST", "kinesis://h:1/x"] {
            let e = EngineUrl::parse(bad, data).unwrap_err();
            assert!(e.to_string().contains("region"), "{bad}: {e}");
        }
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
        assert!(e.to_string().contains("dynamodb+http(s)://"), "{e}");
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
