//! Which engine keeps streams and tables, chosen by URL.
//!
//! `--stream-engine URL` and `--table-engine URL` (or `[storage] stream_engine` and
//! `table_engine`) name an engine by scheme:
//! - `fjall://PATH`: the embedded engine on local disk ([`super::fjall_engine`]);
//!   `fjall://` alone keeps it in the data dir. The default.
//! - `memory://`: in memory ([`super::memory_engine`]), gone when spillway stops: for
//!   tests and demos.
//!
//! Streams and tables are on one engine for now: a mapping commits a batch's items
//! together with its checkpoint in one atomic write, which needs both in the same
//! engine. Two different URLs are refused with that reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fjall_engine::FjallStore;
use super::memory_engine::MemoryStore;
use super::{StorageError, Store};

/// The schemes this build knows, as a person would write them.
const KNOWN: &str = "fjall://PATH, memory://";

/// An engine, as its URL names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineUrl {
    /// The embedded engine, in this directory.
    Fjall(PathBuf),
    /// In memory.
    Memory,
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
        }
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
        let e = EngineUrl::parse("postgres://db/x", data).unwrap_err();
        assert!(e.to_string().contains("\"postgres\""), "{e}");
        assert!(e.to_string().contains("memory://"), "{e}");
        assert!(EngineUrl::parse("memory://x", data).is_err());
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
