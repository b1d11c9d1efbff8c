//! API Gateway REST APIs: each API one durable document (its settings, resources with
//! their methods, integrations and responses, deployments with their snapshots, stages)
//! in the [`ResourceStore`] under kind [`API_KIND`]; the control plane's operations on
//! it; and the deployed stages execution reads, cached until the next change.
//!
//! Writes are serialized by one lock (deploy tools call in parallel, and each change
//! rewrites the API's document); reads load the document without it.

pub mod model;
pub mod patch;
pub mod routing;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use model::{
    ApiDoc, Deployment, EndpointConfiguration, Integration, Method, Resource, RestApi, Stage,
};

use crate::storage::{ResourceStore, StorageError};

/// The resource kind of REST API documents.
pub const API_KIND: &str = "apigateway.api";

/// Every failure of the control plane, as API Gateway names them.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub type Result<T> = std::result::Result<T, GatewayError>;

pub const NO_API: &str = "Invalid REST API identifier specified";
pub const NO_RESOURCE: &str = "Invalid Resource identifier specified";
pub const NO_METHOD: &str = "Invalid Method identifier specified";
pub const NO_INTEGRATION: &str = "Invalid Integration identifier specified";
pub const NO_RESPONSE: &str = "Invalid Response status code specified";
pub const NO_STAGE: &str = "Invalid Stage identifier specified";
pub const NO_DEPLOYMENT: &str = "Invalid Deployment identifier specified";

fn not_found(message: &str) -> GatewayError {
    GatewayError::NotFound(message.to_owned())
}

/// Serializes every write of every API (a person's or a deploy tool's rate).
static WRITES: Mutex<()> = Mutex::new(());
/// Bumped by every write; cached stages older than it are read again.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Seconds since the epoch, as API Gateway's dates are given.
pub fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A fresh identifier of `len` lowercase letters and digits, as API Gateway's ids.
pub fn new_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() < len {
                out.push(ALPHABET[usize::from(*b) % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// The REST APIs of one store.
#[derive(Clone)]
pub struct Gateway {
    store: Arc<dyn ResourceStore>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

/// What `CreateRestApi` takes.
#[derive(Debug, Default, Clone)]
pub struct NewApi {
    pub name: String,
    pub description: Option<String>,
    pub version: Option<String>,
    pub binary_media_types: Vec<String>,
    pub minimum_compression_size: Option<i64>,
    pub api_key_source: Option<String>,
    pub endpoint_types: Option<Vec<String>>,
    pub policy: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub disable_execute_api_endpoint: bool,
}

impl Gateway {
    pub fn new(store: Arc<dyn ResourceStore>) -> Self {
        Self { store }
    }

    /// One API's document.
    pub fn load(&self, api_id: &str) -> Result<ApiDoc> {
        let bytes = self
            .store
            .get_resource(API_KIND, api_id)?
            .ok_or_else(|| not_found(NO_API))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("REST API {api_id}: {e}")).into())
    }

    /// Every API, by id.
    pub fn list(&self) -> Result<Vec<ApiDoc>> {
        let mut out = Vec::new();
        for (id, bytes) in self.store.list_resources(API_KIND)? {
            match serde_json::from_slice(&bytes) {
                Ok(doc) => out.push(doc),
                Err(e) => {
                    tracing::error!(api = %id, error = %e, "a stored REST API could not be read")
                }
            }
        }
        Ok(out)
    }

    fn save(&self, doc: &ApiDoc) -> Result<()> {
        let bytes = serde_json::to_vec(doc)
            .map_err(|e| StorageError::Io(format!("encoding REST API: {e}")))?;
        self.store.put_resource(API_KIND, &doc.api.id, &bytes)?;
        GENERATION.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Creates an API with its root resource.
    pub fn create(&self, new: NewApi) -> Result<RestApi> {
        if new.name.is_empty() {
            return Err(GatewayError::BadRequest(
                "Rest API name must be provided".into(),
            ));
        }
        let _w = WRITES.lock().unwrap_or_else(|e| e.into_inner());
        let root = new_id(10);
        let api = RestApi {
            id: new_id(10),
            name: new.name,
            description: new.description,
            created_date: now_seconds(),
            version: new.version,
            binary_media_types: new.binary_media_types,
            minimum_compression_size: new.minimum_compression_size,
            api_key_source: new.api_key_source.unwrap_or_else(|| "HEADER".into()),
            endpoint_configuration: EndpointConfiguration {
                types: new.endpoint_types.unwrap_or_else(|| vec!["EDGE".into()]),
                ip_address_type: None,
                vpc_endpoint_ids: None,
            },
            policy: new.policy,
            tags: new.tags,
            disable_execute_api_endpoint: new.disable_execute_api_endpoint,
            root_resource_id: root.clone(),
        };
        let mut resources = BTreeMap::new();
        resources.insert(
            root.clone(),
            Resource {
                id: root,
                parent_id: None,
                path_part: None,
                path: "/".into(),
                resource_methods: BTreeMap::new(),
            },
        );
        let doc = ApiDoc {
            api: api.clone(),
            resources,
            deployments: BTreeMap::new(),
            stages: BTreeMap::new(),
        };
        self.save(&doc)?;
        Ok(api)
    }

    /// Changes one API under the write lock; saved only when `change` succeeds.
    pub fn update<T>(
        &self,
        api_id: &str,
        change: impl FnOnce(&mut ApiDoc) -> Result<T>,
    ) -> Result<T> {
        let _w = WRITES.lock().unwrap_or_else(|e| e.into_inner());
        let mut doc = self.load(api_id)?;
        let out = change(&mut doc)?;
        self.save(&doc)?;
        Ok(out)
    }

    pub fn delete(&self, api_id: &str) -> Result<()> {
        let _w = WRITES.lock().unwrap_or_else(|e| e.into_inner());
        self.load(api_id)?;
        self.store.delete_resource(API_KIND, api_id)?;
        GENERATION.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// A deployed stage, as execution reads it: cached until the next write.
    pub fn deployed(&self, api_id: &str, stage: &str) -> Result<Option<Arc<Deployed>>> {
        let generation = GENERATION.load(Ordering::SeqCst);
        let key = (api_id.to_owned(), stage.to_owned());
        let me = Arc::downgrade(&self.store);
        {
            let cache = STAGES.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = cache.get(&key)
                && entry.generation == generation
                && Weak::ptr_eq(&entry.store, &me)
            {
                return Ok(entry.deployed.clone());
            }
        }
        let deployed = match self.load(api_id) {
            Ok(doc) => Deployed::of(doc, stage).map(Arc::new),
            Err(GatewayError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let mut cache = STAGES.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 1024 {
            cache.clear();
        }
        cache.insert(
            key,
            CachedStage {
                store: me,
                generation,
                deployed: deployed.clone(),
            },
        );
        Ok(deployed)
    }
}

struct CachedStage {
    store: Weak<dyn ResourceStore>,
    generation: u64,
    deployed: Option<Arc<Deployed>>,
}

static STAGES: std::sync::LazyLock<Mutex<HashMap<(String, String), CachedStage>>> =
    std::sync::LazyLock::new(|| Mutex::new(HashMap::new()));

/// A stage with its deployment's snapshot.
#[derive(Debug)]
pub struct Deployed {
    pub api_id: String,
    pub stage: Stage,
    pub resources: BTreeMap<String, Resource>,
}

impl Deployed {
    fn of(mut doc: ApiDoc, stage: &str) -> Option<Self> {
        let stage = doc.stages.remove(stage)?;
        let deployment = doc.deployments.remove(&stage.deployment_id)?;
        Some(Self {
            api_id: doc.api.id,
            stage,
            resources: deployment.snapshot,
        })
    }
}

impl ApiDoc {
    pub fn resource(&self, id: &str) -> Result<&Resource> {
        self.resources.get(id).ok_or_else(|| not_found(NO_RESOURCE))
    }

    pub fn resource_mut(&mut self, id: &str) -> Result<&mut Resource> {
        self.resources
            .get_mut(id)
            .ok_or_else(|| not_found(NO_RESOURCE))
    }

    pub fn method(&self, resource: &str, http_method: &str) -> Result<&Method> {
        self.resource(resource)?
            .resource_methods
            .get(http_method)
            .ok_or_else(|| not_found(NO_METHOD))
    }

    pub fn method_mut(&mut self, resource: &str, http_method: &str) -> Result<&mut Method> {
        self.resource_mut(resource)?
            .resource_methods
            .get_mut(http_method)
            .ok_or_else(|| not_found(NO_METHOD))
    }

    pub fn integration_mut(
        &mut self,
        resource: &str,
        http_method: &str,
    ) -> Result<&mut Integration> {
        self.method_mut(resource, http_method)?
            .method_integration
            .as_mut()
            .ok_or_else(|| not_found(NO_INTEGRATION))
    }

    /// Adds a resource under `parent`.
    pub fn add_resource(&mut self, parent: &str, path_part: &str) -> Result<Resource> {
        let parent_path = self.resource(parent)?.path.clone();
        if path_part.is_empty()
            || path_part.contains('/')
            || (path_part.contains(['{', '}']) && routing::variable(path_part).is_none())
        {
            return Err(GatewayError::BadRequest(format!(
                "Resource's path part only allow a-zA-Z0-9._- and curly braces at the beginning and the end and an optional plus sign before the closing brace. Path part: {path_part}"
            )));
        }
        let siblings = self
            .resources
            .values()
            .filter(|r| r.parent_id.as_deref() == Some(parent));
        for s in siblings {
            let part = s.path_part.as_deref().unwrap_or_default();
            if part == path_part {
                return Err(GatewayError::Conflict(format!(
                    "Another resource with the same parent already has this name: {path_part}"
                )));
            }
            if routing::variable(part).is_some() && routing::variable(path_part).is_some() {
                return Err(GatewayError::BadRequest(format!(
                    "A sibling ({part}) of this resource already has a variable path part -- only one is allowed"
                )));
            }
        }
        let resource = Resource {
            id: new_id(10),
            parent_id: Some(parent.to_owned()),
            path_part: Some(path_part.to_owned()),
            path: if parent_path == "/" {
                format!("/{path_part}")
            } else {
                format!("{parent_path}/{path_part}")
            },
            resource_methods: BTreeMap::new(),
        };
        self.resources.insert(resource.id.clone(), resource.clone());
        Ok(resource)
    }

    /// Removes a resource and everything below it.
    pub fn remove_resource(&mut self, id: &str) -> Result<()> {
        let r = self.resource(id)?;
        if r.parent_id.is_none() {
            return Err(GatewayError::BadRequest(
                "Cannot delete root resource".into(),
            ));
        }
        let mut doomed = vec![id.to_owned()];
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i].clone();
            doomed.extend(
                self.resources
                    .values()
                    .filter(|r| r.parent_id.as_deref() == Some(parent.as_str()))
                    .map(|r| r.id.clone()),
            );
            i += 1;
        }
        for d in doomed {
            self.resources.remove(&d);
        }
        Ok(())
    }

    /// Recomputes every path below `id` (after its path part changed).
    pub fn repath(&mut self, id: &str) {
        let mut stack = vec![id.to_owned()];
        while let Some(current) = stack.pop() {
            let Some(r) = self.resources.get(&current) else {
                continue;
            };
            let parent_path = r
                .parent_id
                .as_ref()
                .and_then(|p| self.resources.get(p))
                .map(|p| p.path.clone());
            let path = match (parent_path, &r.path_part) {
                (Some(pp), Some(part)) if pp == "/" => format!("/{part}"),
                (Some(pp), Some(part)) => format!("{pp}/{part}"),
                _ => "/".to_owned(),
            };
            if let Some(r) = self.resources.get_mut(&current) {
                r.path = path;
            }
            stack.extend(
                self.resources
                    .values()
                    .filter(|c| c.parent_id.as_deref() == Some(current.as_str()))
                    .map(|c| c.id.clone()),
            );
        }
    }

    /// A deployment: every resource as it is now.
    pub fn deploy(&mut self, description: Option<String>) -> Result<Deployment> {
        if self
            .resources
            .values()
            .all(|r| r.resource_methods.is_empty())
        {
            return Err(GatewayError::BadRequest(
                "The REST API doesn't contain any methods".into(),
            ));
        }
        let d = Deployment {
            id: new_id(6),
            description,
            created_date: now_seconds(),
            snapshot: self.resources.clone(),
        };
        self.deployments.insert(d.id.clone(), d.clone());
        Ok(d)
    }

    /// Creates a stage on an existing deployment.
    pub fn add_stage(&mut self, stage: Stage) -> Result<Stage> {
        if !self.deployments.contains_key(&stage.deployment_id) {
            return Err(not_found(NO_DEPLOYMENT));
        }
        if self.stages.contains_key(&stage.stage_name) {
            return Err(GatewayError::Conflict("Stage already exists".into()));
        }
        self.stages.insert(stage.stage_name.clone(), stage.clone());
        Ok(stage)
    }

    pub fn remove_deployment(&mut self, id: &str) -> Result<()> {
        if !self.deployments.contains_key(id) {
            return Err(not_found(NO_DEPLOYMENT));
        }
        if self.stages.values().any(|s| s.deployment_id == id) {
            return Err(GatewayError::BadRequest(
                "Active stages pointing to this deployment must be moved or deleted".into(),
            ));
        }
        self.deployments.remove(id);
        Ok(())
    }
}

/// A new stage's settings, with API Gateway's defaults.
pub fn new_stage(name: &str, deployment_id: &str) -> Stage {
    let now = now_seconds();
    Stage {
        deployment_id: deployment_id.to_owned(),
        stage_name: name.to_owned(),
        description: None,
        cache_cluster_enabled: false,
        cache_cluster_size: None,
        cache_cluster_status: "NOT_AVAILABLE".into(),
        method_settings: BTreeMap::new(),
        variables: BTreeMap::new(),
        documentation_version: None,
        client_certificate_id: None,
        access_log_settings: None,
        canary_settings: None,
        tracing_enabled: false,
        tags: BTreeMap::new(),
        created_date: now,
        last_updated_date: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fjall_engine::FjallStore;

    fn gateway(dir: &std::path::Path) -> Gateway {
        Gateway::new(Arc::new(FjallStore::open(dir).unwrap()))
    }

    fn method(m: &str) -> Method {
        serde_json::from_value(serde_json::json!({"httpMethod": m, "authorizationType": "NONE"}))
            .unwrap()
    }

    #[test]
    fn resources_deployments_and_stages() {
        let dir = tempfile::tempdir().unwrap();
        let g = gateway(dir.path());
        let api = g
            .create(NewApi {
                name: "a".into(),
                ..NewApi::default()
            })
            .unwrap();
        assert_eq!(api.id.len(), 10);
        assert!(
            api.id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        let root = api.root_resource_id.clone();
        let items = g
            .update(&api.id, |d| d.add_resource(&root, "items"))
            .unwrap();
        assert_eq!(items.path, "/items");
        let item = g
            .update(&api.id, |d| d.add_resource(&items.id, "{id}"))
            .unwrap();
        assert_eq!(item.path, "/items/{id}");
        assert!(matches!(
            g.update(&api.id, |d| d.add_resource(&root, "items")),
            Err(GatewayError::Conflict(_))
        ));
        assert!(matches!(
            g.update(&api.id, |d| d.add_resource(&items.id, "{other}")),
            Err(GatewayError::BadRequest(_))
        ));
        assert!(matches!(
            g.update(&api.id, |d| d.deploy(None)),
            Err(GatewayError::BadRequest(_))
        ));
        g.update(&api.id, |d| {
            d.resource_mut(&item.id)?
                .resource_methods
                .insert("GET".into(), method("GET"));
            Ok(())
        })
        .unwrap();
        let dep = g.update(&api.id, |d| d.deploy(None)).unwrap();
        g.update(&api.id, |d| d.add_stage(new_stage("dev", &dep.id)))
            .unwrap();
        // Later changes do not reach the deployed snapshot.
        g.update(&api.id, |d| d.remove_resource(&items.id)).unwrap();
        assert_eq!(g.load(&api.id).unwrap().resources.len(), 1);
        let deployed = g.deployed(&api.id, "dev").unwrap().unwrap();
        let m = routing::match_path(&deployed.resources, "/items/7").unwrap();
        assert_eq!(m.resource.id, item.id);
        assert!(g.deployed(&api.id, "nope").unwrap().is_none());
        assert!(matches!(
            g.update(&api.id, |d| d.remove_deployment(&dep.id)),
            Err(GatewayError::BadRequest(_))
        ));
        g.delete(&api.id).unwrap();
        assert!(g.deployed(&api.id, "dev").unwrap().is_none());
        assert!(matches!(g.load(&api.id), Err(GatewayError::NotFound(_))));
    }
}
