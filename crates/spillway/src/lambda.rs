//! Lambda's control plane: functions created from zip files, their configuration,
//! code, versions, concurrency and tags, and event source mappings created through the
//! API. What it creates runs on the existing machinery: a function is a Runtime API
//! function (`function::runtime_api`) whose instances run the zip's code, and a mapping
//! is an ordinary [`Mappings`] entry.
//!
//! Durability: each function's document and each API-created mapping's settings are
//! [`ResourceStore`] documents (kinds `lambda.function`, `lambda.mapping`), written after
//! the code they name is on disk; the mapping's checkpoints are the mapping store's. At
//! start, [`Lambda::restore`] registers them again.
//!
//! Code lives under `DATA_DIR/lambda/NAME/`: `SHA.zip` as uploaded and `SHA/` unpacked,
//! where `SHA` is the zip's SHA-256 in hex. Unpacking refuses paths that leave the
//! directory, and bounds entries and unpacked size as Lambda does (250 MB).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::config::{FunctionConfig, MappingConfig};
use crate::function::Functions;
use crate::mapping::{MappingError, Mappings};
use crate::storage::{ResourceStore, StorageError};

/// Resource kinds of this module's documents.
pub const FUNCTION_KIND: &str = "lambda.function";
pub const MAPPING_KIND: &str = "lambda.mapping";
/// Tags of a mapping, by its UUID (a function's tags live in its document).
const MAPPING_TAGS_KIND: &str = "lambda.mapping-tags";

/// Lambda's limit on a function's unpacked code.
const MAX_UNPACKED_BYTES: u64 = 250 * 1024 * 1024;
/// Most files taken from one zip.
const MAX_ZIP_ENTRIES: usize = 20_000;

/// Why a control-plane call failed; the wire edge maps each to Lambda's error type.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidZip(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("code storage: {0}")]
    Io(#[from] std::io::Error),
}

/// One published version: what it was published from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionDoc {
    pub version: u32,
    pub code_sha256: String,
    pub description: String,
    pub last_modified: String,
}

/// A function as Lambda describes it, as kept in the resource store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionDoc {
    pub name: String,
    pub runtime: String,
    pub handler: String,
    pub role: String,
    #[serde(default)]
    pub description: String,
    pub timeout: u32,
    pub memory_size: u32,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// SHA-256 of the zip, hex (names the code directory).
    pub code_sha_hex: String,
    pub code_size: u64,
    pub last_modified: String,
    pub revision_id: String,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub versions: Vec<VersionDoc>,
    #[serde(default)]
    pub ephemeral_storage: Option<u32>,
}

impl FunctionDoc {
    /// `CodeSha256` of the function's current code.
    pub fn code_sha256(&self) -> String {
        code_sha256(&self.code_sha_hex)
    }
}

/// `CodeSha256` as Lambda reports it: a zip's digest (kept in hex) in base64.
pub fn code_sha256(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}

/// Settings of a function given at creation or update (absent: unchanged, or the
/// default at creation).
#[derive(Debug, Default, Clone)]
pub struct FunctionSettings {
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<u32>,
    pub memory_size: Option<u32>,
    pub environment: Option<BTreeMap<String, String>>,
    pub architectures: Option<Vec<String>>,
    pub ephemeral_storage: Option<u32>,
}

/// Lambda's control plane over spillway's functions and mappings.
pub struct Lambda {
    resources: Arc<dyn ResourceStore>,
    functions: Arc<Functions>,
    mappings: Arc<Mappings>,
    code_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    /// Control-plane calls change documents read-modify-write: one at a time.
    lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Lambda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lambda")
            .field("code_dir", &self.code_dir)
            .finish_non_exhaustive()
    }
}

/// Now as Lambda's `LastModified` writes it: `2026-12-01T09:00:00.000+0000`.
pub fn last_modified_now() -> String {
    let ms = crate::stream::now_ms();
    let iso = crate::mapping::dead_letter::iso8601(ms);
    // iso8601 gives `...T09:00:00.000Z`.
    format!("{}+0000", iso.trim_end_matches('Z'))
}

/// Whether a name is a valid function name (Lambda: letters, digits, `-`, `_`, 1-64).
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Lambda {
    pub fn new(
        config: &crate::config::Config,
        resources: Arc<dyn ResourceStore>,
        functions: Arc<Functions>,
        mappings: Arc<Mappings>,
    ) -> Self {
        Self {
            resources,
            functions,
            mappings,
            code_dir: config.server.data_dir.join("lambda"),
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            lock: std::sync::Mutex::new(()),
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The ARN of the function `name`.
    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            self.region, self.account_id
        )
    }

    /// A function's name from a name, a full ARN or a partial ARN (`ACCOUNT:function:NAME`),
    /// without a qualifier.
    pub fn resolve_name(reference: &str) -> &str {
        let rest = match reference.find("function:") {
            Some(at) => &reference[at + "function:".len()..],
            None => reference,
        };
        rest.split(':').next().unwrap_or(rest)
    }

    /// Registers every stored function, then opens every stored mapping.
    pub fn restore(&self) -> Result<(), LambdaError> {
        for (name, doc) in self.resources.list_resources(FUNCTION_KIND)? {
            let doc: FunctionDoc = match serde_json::from_slice(&doc) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(function = %name, error = %e, "a stored Lambda function could not be read; it is not started");
                    continue;
                }
            };
            if let Err(e) = self.ensure_unpacked(&doc) {
                tracing::error!(function = %name, error = %e, "a stored Lambda function's code could not be unpacked; its invocations will fail");
            }
            self.functions.put(&self.function_config(&doc));
        }
        for (uuid, doc) in self.resources.list_resources(MAPPING_KIND)? {
            let opened = serde_json::from_slice::<MappingConfig>(&doc)
                .map_err(|e| LambdaError::InvalidParameter(e.to_string()))
                .and_then(|mc| Ok(self.mappings.open(mc, Some(&uuid))?));
            if let Err(e) = opened {
                tracing::error!(uuid = %uuid, error = %e, "an event source mapping created through the Lambda API could not be started; its records are not processed");
            }
        }
        Ok(())
    }

    /// The function document of `name`.
    pub fn get(&self, name: &str) -> Result<FunctionDoc, LambdaError> {
        let doc = self
            .resources
            .get_resource(FUNCTION_KIND, name)?
            .ok_or_else(|| self.not_found(name))?;
        serde_json::from_slice(&doc)
            .map_err(|e| StorageError::Corrupt(format!("lambda function {name}: {e}")).into())
    }

    fn not_found(&self, name: &str) -> LambdaError {
        LambdaError::NotFound(format!("Function not found: {}", self.function_arn(name)))
    }

    pub fn list(&self) -> Result<Vec<FunctionDoc>, LambdaError> {
        let mut out = Vec::new();
        for (_, doc) in self.resources.list_resources(FUNCTION_KIND)? {
            if let Ok(d) = serde_json::from_slice(&doc) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// CreateFunction from a zip.
    pub fn create(
        &self,
        name: &str,
        settings: FunctionSettings,
        zip: &[u8],
        tags: BTreeMap<String, String>,
        publish: bool,
    ) -> Result<FunctionDoc, LambdaError> {
        if !valid_name(name) {
            return Err(LambdaError::InvalidParameter(format!(
                "1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
            )));
        }
        let _g = self.guard();
        if self.resources.get_resource(FUNCTION_KIND, name)?.is_some() {
            return Err(LambdaError::Conflict(format!(
                "Function already exist: {name}"
            )));
        }
        let Some(role) = settings.role.clone() else {
            return Err(LambdaError::InvalidParameter(
                "Role is required to create a function".into(),
            ));
        };
        let (sha, size) = self.store_code(name, zip)?;
        let mut doc = FunctionDoc {
            name: name.to_owned(),
            runtime: settings.runtime.clone().unwrap_or_default(),
            handler: settings.handler.clone().unwrap_or_default(),
            role,
            description: String::new(),
            timeout: 3,
            memory_size: 128,
            environment: BTreeMap::new(),
            code_sha_hex: sha,
            code_size: size,
            last_modified: last_modified_now(),
            revision_id: uuid::Uuid::new_v4().to_string(),
            architectures: vec!["x86_64".into()],
            reserved_concurrency: None,
            tags,
            versions: Vec::new(),
            ephemeral_storage: None,
        };
        apply_settings(&mut doc, settings);
        if publish {
            publish_into(&mut doc, "");
        }
        self.save(&doc)?;
        self.functions.put(&self.function_config(&doc));
        tracing::info!(function = %name, runtime = %doc.runtime, "created Lambda function");
        Ok(doc)
    }

    /// UpdateFunctionConfiguration.
    pub fn update_configuration(
        &self,
        name: &str,
        settings: FunctionSettings,
    ) -> Result<FunctionDoc, LambdaError> {
        let _g = self.guard();
        let mut doc = self.get(name)?;
        apply_settings(&mut doc, settings);
        self.touch_and_register(&mut doc)?;
        Ok(doc)
    }

    /// UpdateFunctionCode from a zip.
    pub fn update_code(
        &self,
        name: &str,
        zip: &[u8],
        publish: bool,
    ) -> Result<FunctionDoc, LambdaError> {
        let _g = self.guard();
        let mut doc = self.get(name)?;
        let (sha, size) = self.store_code(name, zip)?;
        doc.code_sha_hex = sha;
        doc.code_size = size;
        if publish {
            publish_into(&mut doc, "");
        }
        self.touch_and_register(&mut doc)?;
        Ok(doc)
    }

    fn touch_and_register(&self, doc: &mut FunctionDoc) -> Result<(), LambdaError> {
        doc.last_modified = last_modified_now();
        doc.revision_id = uuid::Uuid::new_v4().to_string();
        self.save(doc)?;
        self.functions.put(&self.function_config(doc));
        Ok(())
    }

    /// PublishVersion: the new version's number.
    pub fn publish(
        &self,
        name: &str,
        description: &str,
    ) -> Result<(FunctionDoc, u32), LambdaError> {
        let _g = self.guard();
        let mut doc = self.get(name)?;
        let v = publish_into(&mut doc, description);
        self.save(&doc)?;
        Ok((doc, v))
    }

    /// PutFunctionConcurrency (`Some`) or DeleteFunctionConcurrency (`None`).
    pub fn set_concurrency(&self, name: &str, reserved: Option<u32>) -> Result<(), LambdaError> {
        let _g = self.guard();
        let mut doc = self.get(name)?;
        doc.reserved_concurrency = reserved;
        self.save(&doc)?;
        self.functions.put(&self.function_config(&doc));
        Ok(())
    }

    /// TagResource / UntagResource.
    pub fn tag(
        &self,
        name: &str,
        add: BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<FunctionDoc, LambdaError> {
        let _g = self.guard();
        let mut doc = self.get(name)?;
        doc.tags.extend(add);
        for k in remove {
            doc.tags.remove(k);
        }
        self.save(&doc)?;
        Ok(doc)
    }

    /// DeleteFunction: the document, the running function and its code.
    pub fn delete(&self, name: &str) -> Result<(), LambdaError> {
        let _g = self.guard();
        self.get(name)?;
        self.resources.delete_resource(FUNCTION_KIND, name)?;
        self.functions.remove(name);
        let _ = std::fs::remove_dir_all(self.code_dir.join(name));
        tracing::info!(function = %name, "deleted Lambda function");
        Ok(())
    }

    fn save(&self, doc: &FunctionDoc) -> Result<(), LambdaError> {
        let json = serde_json::to_vec(doc).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        self.resources
            .put_resource(FUNCTION_KIND, &doc.name, &json)?;
        Ok(())
    }

    /// The unpacked code directory of a function's current code.
    pub fn code_root(&self, doc: &FunctionDoc) -> PathBuf {
        self.code_dir.join(&doc.name).join(&doc.code_sha_hex)
    }

    /// The uploaded zip of a function's current code.
    pub fn code_zip(&self, doc: &FunctionDoc) -> PathBuf {
        self.code_dir
            .join(&doc.name)
            .join(format!("{}.zip", doc.code_sha_hex))
    }

    /// Keeps the zip durably and unpacks it; returns its SHA-256 (hex) and size.
    fn store_code(&self, name: &str, zip: &[u8]) -> Result<(String, u64), LambdaError> {
        let sha: String = sha2::Sha256::digest(zip)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = self.code_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let zip_path = dir.join(format!("{sha}.zip"));
        let tmp = dir.join(format!("{sha}.zip.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, zip)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &zip_path)?;
        unpack(zip, &dir.join(&sha))?;
        Ok((sha, zip.len() as u64))
    }

    /// Unpacks a stored function's zip again if its directory is missing (a crash
    /// between keeping the zip and unpacking it, or a cleaned directory).
    fn ensure_unpacked(&self, doc: &FunctionDoc) -> Result<(), LambdaError> {
        let root = self.code_root(doc);
        if root.is_dir() {
            return Ok(());
        }
        let zip = std::fs::read(self.code_zip(doc))?;
        unpack(&zip, &root)
    }

    /// How spillway runs a function of this document: the runtime's command in its
    /// unpacked code, with Lambda's environment.
    pub fn function_config(&self, doc: &FunctionDoc) -> FunctionConfig {
        let root = self.code_root(doc);
        let mut environment = doc.environment.clone();
        let command: Vec<String> = match runtime_family(&doc.runtime) {
            RuntimeFamily::Provided => vec![root.join("bootstrap").display().to_string()],
            RuntimeFamily::Python => {
                let path = match std::env::var("PYTHONPATH") {
                    Ok(p) if !p.is_empty() => format!("{}:{p}", root.display()),
                    _ => root.display().to_string(),
                };
                environment.entry("PYTHONPATH".into()).or_insert(path);
                vec![
                    "python3".into(),
                    "-m".into(),
                    "awslambdaric".into(),
                    doc.handler.clone(),
                ]
            }
            RuntimeFamily::Node => vec!["aws-lambda-ric".into(), doc.handler.clone()],
            RuntimeFamily::Unsupported => vec![format!(
                "spillway-cannot-run-runtime-{}",
                if doc.runtime.is_empty() {
                    "none"
                } else {
                    &doc.runtime
                }
            )],
        };
        let value = serde_json::json!({
            "name": doc.name,
            "kind": "runtime",
            "command": command,
            "handler": doc.handler,
            "memory_mb": doc.memory_size,
            "timeout_seconds": u64::from(doc.timeout.max(1)),
            "reserved_concurrency": doc.reserved_concurrency.unwrap_or(10).max(1),
            "working_dir": root,
            "environment": environment,
        });
        serde_json::from_value(value).expect("a function config built from a document")
    }

    /// Why this machine cannot run the function's runtime, if it cannot.
    pub fn runtime_problem(doc: &FunctionDoc) -> Option<String> {
        match runtime_family(&doc.runtime) {
            RuntimeFamily::Unsupported => Some(format!(
                "The runtime {} cannot run on this spillway: it runs provided.al2023, provided.al2, python3.x (with awslambdaric installed) and nodejs (with aws-lambda-ric installed)",
                if doc.runtime.is_empty() {
                    "(none)"
                } else {
                    &doc.runtime
                }
            )),
            _ => None,
        }
    }

    // ---- event source mappings ----

    /// CreateEventSourceMapping: the mapping opened, its settings kept.
    pub fn create_mapping(
        &self,
        settings: serde_json::Value,
    ) -> Result<Arc<crate::mapping::Mapping>, LambdaError> {
        let tags: BTreeMap<String, String> = settings
            .get("Tags")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        let mc = self.mapping_config(settings)?;
        let _g = self.guard();
        if let Some(existing) = self.mappings.list().iter().find(|m| {
            m.config.function_name == mc.function_name && m.stream.name == mc.stream_name()
        }) {
            return Err(LambdaError::Conflict(format!(
                "An event source mapping with Kinesis arn (\" {} \") and function (\" {} \") already exists. Please update or delete the existing mapping with UUID {}",
                mc.event_source_arn, mc.function_name, existing.uuid
            )));
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        self.save_mapping(&uuid, &mc)?;
        if !tags.is_empty() {
            self.save_mapping_tags(&uuid, &tags)?;
        }
        match self.mappings.open(mc, Some(&uuid)) {
            Ok(m) => Ok(m),
            Err(e) => {
                self.resources.delete_resource(MAPPING_KIND, &uuid)?;
                Err(e.into())
            }
        }
    }

    /// UpdateEventSourceMapping: the given settings over the mapping's, reopened with
    /// its checkpoints.
    pub fn update_mapping(
        &self,
        uuid: &str,
        changes: serde_json::Value,
    ) -> Result<Arc<crate::mapping::Mapping>, LambdaError> {
        let _g = self.guard();
        let current = self.mapping_settings(uuid)?;
        let mut merged = current;
        if let (Some(m), Some(c)) = (merged.as_object_mut(), changes.as_object()) {
            for (k, v) in c {
                m.insert(k.clone(), v.clone());
            }
        }
        let mc = self.mapping_config(merged)?;
        self.save_mapping(uuid, &mc)?;
        self.mappings.close(uuid, false)?;
        Ok(self.mappings.open(mc, Some(uuid))?)
    }

    /// DeleteEventSourceMapping: stopped, its settings and checkpoints removed.
    pub fn delete_mapping(&self, uuid: &str) -> Result<Arc<crate::mapping::Mapping>, LambdaError> {
        let _g = self.guard();
        let mapping = self
            .mappings
            .close(uuid, true)?
            .ok_or_else(|| mapping_not_found(uuid))?;
        self.resources.delete_resource(MAPPING_KIND, uuid)?;
        self.resources.delete_resource(MAPPING_TAGS_KIND, uuid)?;
        Ok(mapping)
    }

    /// The tags of a mapping.
    pub fn mapping_tags(&self, uuid: &str) -> Result<BTreeMap<String, String>, LambdaError> {
        self.mapping(uuid)?;
        Ok(
            match self.resources.get_resource(MAPPING_TAGS_KIND, uuid)? {
                Some(doc) => serde_json::from_slice(&doc)
                    .map_err(|e| StorageError::Corrupt(format!("mapping tags {uuid}: {e}")))?,
                None => BTreeMap::new(),
            },
        )
    }

    /// TagResource / UntagResource on a mapping.
    pub fn tag_mapping(
        &self,
        uuid: &str,
        add: BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), LambdaError> {
        let _g = self.guard();
        let mut tags = self.mapping_tags(uuid)?;
        tags.extend(add);
        for k in remove {
            tags.remove(k);
        }
        self.save_mapping_tags(uuid, &tags)
    }

    fn save_mapping_tags(
        &self,
        uuid: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), LambdaError> {
        let json = serde_json::to_vec(tags).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        self.resources
            .put_resource(MAPPING_TAGS_KIND, uuid, &json)?;
        Ok(())
    }

    pub fn mapping(&self, uuid: &str) -> Result<Arc<crate::mapping::Mapping>, LambdaError> {
        self.mappings
            .get(uuid)
            .ok_or_else(|| mapping_not_found(uuid))
    }

    pub fn mappings(&self) -> Vec<Arc<crate::mapping::Mapping>> {
        self.mappings.list()
    }

    /// The kept settings of a mapping (a configured one's are rebuilt from its config).
    fn mapping_settings(&self, uuid: &str) -> Result<serde_json::Value, LambdaError> {
        if let Some(doc) = self.resources.get_resource(MAPPING_KIND, uuid)? {
            return serde_json::from_slice(&doc)
                .map_err(|e| StorageError::Corrupt(format!("mapping {uuid}: {e}")).into());
        }
        let m = self.mapping(uuid)?;
        Ok(mapping_settings_of(&m.config))
    }

    fn save_mapping(&self, uuid: &str, mc: &MappingConfig) -> Result<(), LambdaError> {
        let json = mapping_settings_of(mc).to_string();
        self.resources
            .put_resource(MAPPING_KIND, uuid, json.as_bytes())?;
        Ok(())
    }

    /// The mapping's settings from Lambda's request members, checked.
    fn mapping_config(&self, settings: serde_json::Value) -> Result<MappingConfig, LambdaError> {
        let mut settings = settings;
        let Some(obj) = settings.as_object_mut() else {
            return Err(LambdaError::InvalidParameter("expected an object".into()));
        };
        // Members spillway's mappings do not use (Lambda's other sources, tuning it
        // does not model) are accepted and not kept.
        const KEPT: &[&str] = &[
            "EventSourceArn",
            "FunctionName",
            "Enabled",
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "StartingPosition",
            "StartingPositionTimestamp",
            "ParallelizationFactor",
            "MaximumRetryAttempts",
            "MaximumRecordAgeInSeconds",
            "BisectBatchOnFunctionError",
            "FunctionResponseTypes",
            "DestinationConfig",
        ];
        obj.retain(|k, v| KEPT.contains(&k.as_str()) && !v.is_null());
        if let Some(f) = obj.get("FunctionName").and_then(|v| v.as_str()) {
            let name = Self::resolve_name(f).to_owned();
            obj.insert("FunctionName".into(), name.into());
        }
        if let Some(serde_json::Value::Object(d)) = obj.get_mut("DestinationConfig") {
            d.retain(|k, v| k == "OnFailure" && v.get("Destination").is_some());
            if let Some(serde_json::Value::Object(of)) = d.get_mut("OnFailure") {
                of.retain(|k, _| k == "Destination");
            }
        }
        let mc: MappingConfig = serde_json::from_value(settings)
            .map_err(|e| LambdaError::InvalidParameter(e.to_string()))?;
        if self.functions.get(&mc.function_name).is_none() {
            return Err(self.not_found(&mc.function_name));
        }
        if !(1..=10_000).contains(&mc.batch_size) {
            return Err(LambdaError::InvalidParameter(format!(
                "1 validation error detected: Value {} at 'batchSize' failed to satisfy constraint: Member must have value between 1 and 10000",
                mc.batch_size
            )));
        }
        if !(1..=10).contains(&mc.parallelization_factor) {
            return Err(LambdaError::InvalidParameter(
                "ParallelizationFactor must be between 1 and 10".into(),
            ));
        }
        if mc.maximum_record_age_in_seconds != -1
            && !(60..=604_800).contains(&mc.maximum_record_age_in_seconds)
        {
            return Err(LambdaError::InvalidParameter(
                "MaximumRecordAgeInSeconds must be -1 or between 60 and 604800".into(),
            ));
        }
        if !(-1..=10_000).contains(&mc.maximum_retry_attempts) {
            return Err(LambdaError::InvalidParameter(
                "MaximumRetryAttempts must be -1 or between 0 and 10000".into(),
            ));
        }
        Ok(mc)
    }
}

/// A mapping's settings as Lambda's request members.
fn mapping_settings_of(mc: &MappingConfig) -> serde_json::Value {
    let mut v = serde_json::json!({
        "EventSourceArn": mc.event_source_arn,
        "FunctionName": mc.function_name,
        "Enabled": mc.enabled,
        "BatchSize": mc.batch_size,
        "MaximumBatchingWindowInSeconds": mc.maximum_batching_window_in_seconds,
        "StartingPosition": starting_position_name(mc),
        "ParallelizationFactor": mc.parallelization_factor,
        "MaximumRetryAttempts": mc.maximum_retry_attempts,
        "MaximumRecordAgeInSeconds": mc.maximum_record_age_in_seconds,
        "BisectBatchOnFunctionError": mc.bisect_batch_on_function_error,
        "FunctionResponseTypes": mc.function_response_types,
    });
    if let Some(t) = mc.starting_position_timestamp {
        v["StartingPositionTimestamp"] = t.into();
    }
    if let Some(d) = mc
        .destination_config
        .as_ref()
        .and_then(|d| d.on_failure.as_ref())
    {
        v["DestinationConfig"] = serde_json::json!({"OnFailure": {"Destination": d.destination}});
    }
    v
}

/// `StartingPosition` as Lambda spells it.
pub fn starting_position_name(mc: &MappingConfig) -> &'static str {
    match mc.starting_position {
        crate::config::StartingPosition::Latest => "LATEST",
        crate::config::StartingPosition::TrimHorizon => "TRIM_HORIZON",
        crate::config::StartingPosition::AtTimestamp => "AT_TIMESTAMP",
    }
}

fn mapping_not_found(uuid: &str) -> LambdaError {
    LambdaError::NotFound(format!(
        "The resource you requested does not exist. (Service: Lambda, Status Code: 404, Request ID: {uuid})"
    ))
}

fn apply_settings(doc: &mut FunctionDoc, s: FunctionSettings) {
    if let Some(v) = s.runtime {
        doc.runtime = v;
    }
    if let Some(v) = s.handler {
        doc.handler = v;
    }
    if let Some(v) = s.role {
        doc.role = v;
    }
    if let Some(v) = s.description {
        doc.description = v;
    }
    if let Some(v) = s.timeout {
        doc.timeout = v;
    }
    if let Some(v) = s.memory_size {
        doc.memory_size = v;
    }
    if let Some(v) = s.environment {
        doc.environment = v;
    }
    if let Some(v) = s.architectures {
        doc.architectures = v;
    }
    if let Some(v) = s.ephemeral_storage {
        doc.ephemeral_storage = Some(v);
    }
}

/// Publishes the document's current code as the next version; returns its number.
fn publish_into(doc: &mut FunctionDoc, description: &str) -> u32 {
    // Lambda publishes nothing new when neither code nor configuration changed since
    // the last version; it answers that version.
    if let Some(last) = doc.versions.last()
        && last.code_sha256 == doc.code_sha_hex
        && last.last_modified == doc.last_modified
    {
        return last.version;
    }
    let version = doc.versions.last().map_or(1, |v| v.version + 1);
    doc.versions.push(VersionDoc {
        version,
        code_sha256: doc.code_sha_hex.clone(),
        description: description.to_owned(),
        last_modified: doc.last_modified.clone(),
    });
    version
}

/// The runtimes spillway can run, by family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuntimeFamily {
    Provided,
    Python,
    Node,
    Unsupported,
}

fn runtime_family(runtime: &str) -> RuntimeFamily {
    if runtime.starts_with("provided") {
        RuntimeFamily::Provided
    } else if runtime.starts_with("python3") {
        RuntimeFamily::Python
    } else if runtime.starts_with("nodejs") {
        RuntimeFamily::Node
    } else {
        RuntimeFamily::Unsupported
    }
}

/// Unpacks a zip into `dest` (created; replaced if present), keeping Unix modes so that
/// a `bootstrap` stays executable. Entries whose paths leave `dest` are refused.
fn unpack(zip: &[u8], dest: &Path) -> Result<(), LambdaError> {
    let bad = |e: zip::result::ZipError| {
        LambdaError::InvalidZip(format!(
            "Could not unzip uploaded file. Please check your file, then try to upload again. ({e})"
        ))
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(bad)?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(LambdaError::InvalidZip(format!(
            "The zip holds {} files; spillway unpacks at most {MAX_ZIP_ENTRIES}",
            archive.len()
        )));
    }
    let tmp = dest.with_extension("unpacking");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(bad)?;
        let Some(relative) = entry.enclosed_name() else {
            return Err(LambdaError::InvalidZip(format!(
                "The zip entry {} leaves the code directory",
                entry.name().map(|n| n.into_owned()).unwrap_or_default()
            )));
        };
        let path = tmp.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::File::create(&path)?;
        let budget = MAX_UNPACKED_BYTES - total;
        let copied = std::io::copy(&mut (&mut entry).take(budget + 1), &mut out)?;
        total += copied;
        if total > MAX_UNPACKED_BYTES {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(LambdaError::InvalidParameter(format!(
                "Unzipped size must be smaller than {MAX_UNPACKED_BYTES} bytes"
            )));
        }
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777))?;
        }
    }
    let _ = std::fs::remove_dir_all(dest);
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut out);
            for (name, data, mode) in files {
                let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
                w.start_file(*name, options).expect("start");
                std::io::Write::write_all(&mut w, data).expect("write");
            }
            w.finish().expect("finish");
        }
        out.into_inner()
    }

    #[test]
    fn zips_unpack_with_their_modes_and_never_outside() {
        let dir = tempfile::tempdir().expect("dir");
        let zip = zip_of(&[
            ("bootstrap", b"#!/bin/sh\n", 0o755),
            ("lib/a.py", b"x", 0o644),
        ]);
        unpack(&zip, &dir.path().join("code")).expect("unpack");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("code/bootstrap"))
            .expect("bootstrap")
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(
            std::fs::read(dir.path().join("code/lib/a.py")).expect("a"),
            b"x"
        );

        let evil = zip_of(&[("../escape", b"x", 0o644)]);
        assert!(matches!(
            unpack(&evil, &dir.path().join("evil")),
            Err(LambdaError::InvalidZip(_))
        ));
        assert!(!dir.path().join("escape").exists());
        assert!(matches!(
            unpack(b"not a zip", &dir.path().join("bad")),
            Err(LambdaError::InvalidZip(_))
        ));
    }

    #[test]
    fn references_name_the_function() {
        assert_eq!(Lambda::resolve_name("f"), "f");
        assert_eq!(
            Lambda::resolve_name("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"),
            "f"
        );
        assert_eq!(Lambda::resolve_name("000000000000:function:f"), "f");
    }

    #[test]
    fn publishing_twice_without_a_change_keeps_the_version() {
        let mut doc: FunctionDoc = serde_json::from_value(serde_json::json!({
            "name": "f", "runtime": "provided.al2023", "handler": "h", "role": "r",
            "timeout": 3, "memory_size": 128, "code_sha_hex": "00ff", "code_size": 2,
            "last_modified": "t", "revision_id": "r"
        }))
        .expect("doc");
        assert_eq!(publish_into(&mut doc, ""), 1);
        assert_eq!(publish_into(&mut doc, ""), 1);
        doc.code_sha_hex = "0100".into();
        assert_eq!(publish_into(&mut doc, ""), 2);
        assert_eq!(doc.code_sha256(), "AQA=");
    }
}
