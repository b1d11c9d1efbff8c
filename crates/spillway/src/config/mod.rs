//! The one TOML configuration schema, with defaults equal to the reference setup.
//!
//! `default.toml` beside this file is both the documentation (a comment on every key,
//! printed by `spillway config`) and the default itself: [`Config::default`] parses it,
//! so the two can never drift apart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The commented default configuration, embedded in the binary.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Errors loading or validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub region: String,
    pub account_id: String,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    #[serde(default)]
    pub streams: Vec<StreamConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
}

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fdatasync before acknowledging.
    Fsync,
    /// Handed to the OS before acknowledging.
    Os,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub durability: Durability,
    pub queue_records: usize,
    pub queue_bytes: usize,
    pub max_commit_records: usize,
    pub retention_check_interval_ms: u64,
    #[serde(default)]
    pub commit_delay_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub name: String,
    pub shard_count: u32,
    #[serde(default = "default_retention_hours")]
    pub retention_hours: f64,
}

fn default_retention_hours() -> f64 {
    24.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub method: String,
    pub path: String,
    pub stream: String,
    #[serde(default)]
    pub partition_key: PartitionKeySource,
}

/// Where an ingest route finds a record's partition key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum PartitionKeySource {
    /// A fresh request id, as API Gateway's `$context.requestId`.
    #[default]
    RequestId,
    /// The value of a request header.
    Header { name: String },
    /// A top-level field of the JSON body.
    JsonField { field: String },
}

impl Default for Config {
    fn default() -> Self {
        Self::parse(DEFAULT_TOML, Path::new("<built-in default>"))
            .expect("the embedded default config is valid")
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for s in &self.streams {
            crate::stream::validate_stream_name(&s.name).map_err(|e| e.to_string())?;
            if !names.insert(s.name.as_str()) {
                return Err(format!("stream `{}` is declared twice", s.name));
            }
            if s.shard_count == 0 || s.shard_count > 10_000 {
                return Err(format!(
                    "stream `{}`: shard_count must be 1 to 10000, got {}",
                    s.name, s.shard_count
                ));
            }
            if !(s.retention_hours > 0.0 && s.retention_hours <= 8760.0) {
                return Err(format!(
                    "stream `{}`: retention_hours must be above 0 and at most 8760, got {}",
                    s.name, s.retention_hours
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for r in &self.routes {
            if !names.contains(r.stream.as_str()) {
                return Err(format!(
                    "route {} {}: stream `{}` is not declared in [[streams]]",
                    r.method, r.path, r.stream
                ));
            }
            if !r.path.starts_with('/') {
                return Err(format!("route path `{}` must start with /", r.path));
            }
            if r.path.starts_with("/_spillway") {
                return Err(format!(
                    "route path `{}`: /_spillway is reserved for the inspection API",
                    r.path
                ));
            }
            axum::http::Method::from_bytes(r.method.as_bytes())
                .map_err(|_| format!("route {}: `{}` is not an HTTP method", r.path, r.method))?;
            if !seen.insert((r.method.to_ascii_uppercase(), r.path.clone())) {
                return Err(format!("route {} {} is declared twice", r.method, r.path));
            }
        }
        if self.storage.queue_records == 0 || self.storage.queue_bytes < 1 << 20 {
            return Err(
                "storage.queue_records must be at least 1 and storage.queue_bytes at least 1048576"
                    .into(),
            );
        }
        if self.storage.max_commit_records == 0 {
            return Err("storage.max_commit_records must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_reference_setup() {
        let c = Config::default();
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.account_id, "000000000000");
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:4566");
        assert_eq!(c.streams.len(), 1);
        assert_eq!(c.streams[0].name, "example-stream");
        assert_eq!(c.streams[0].shard_count, 1);
        assert_eq!(c.routes[0].path, "/dev");
        assert_eq!(c.routes[0].partition_key, PartitionKeySource::RequestId);
        assert_eq!(c.storage.durability, Durability::Fsync);
    }

    #[test]
    fn unknown_key_is_named_with_the_file() {
        let text = DEFAULT_TOML.replace("shard_count = 1", "shard_count = 1\nshards = 2");
        let err = Config::parse(&text, Path::new("my.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("my.toml"), "{err}");
        assert!(err.contains("shards"), "{err}");
    }

    #[test]
    fn partition_key_sources_parse() {
        let text = DEFAULT_TOML.replace(
            "partition_key = { from = \"request_id\" }",
            "partition_key = { from = \"json_field\", field = \"user\" }",
        );
        let c = Config::parse(&text, Path::new("x.toml")).unwrap();
        assert_eq!(
            c.routes[0].partition_key,
            PartitionKeySource::JsonField {
                field: "user".into()
            }
        );
    }

    #[test]
    fn route_to_missing_stream_is_rejected() {
        let text = DEFAULT_TOML.replace("stream = \"example-stream\"", "stream = \"nope\"");
        let err = Config::parse(&text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
