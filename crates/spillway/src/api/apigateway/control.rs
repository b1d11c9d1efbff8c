//! The REST API control plane on the wire (restJson1): rest APIs, resources, methods,
//! method responses, integrations, integration responses, deployments, stages and tags,
//! with API Gateway's status codes, list shapes (`{"item": [...]}`) and errors
//! (`x-amzn-ErrorType`, `{"message": ...}`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderValue, Method as HttpMethod, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::front::{self, ControlPlane, ControlRequest, ControlService};
use crate::gateway::model::{
    ApiDoc, Integration, IntegrationResponse, Method, MethodResponse, Resource, Stage,
};
use crate::gateway::patch::{self, Rules};
use crate::gateway::{
    self, Gateway, GatewayError, NO_INTEGRATION, NO_RESPONSE, NO_STAGE, NewApi, Result,
};

/// What a route answers: a status and a JSON body (`Value::Null`: no body).
type Answer = (StatusCode, Value);

/// Answers one API Gateway control-plane request.
pub async fn handle(cp: &ControlPlane, request: ControlRequest) -> Response {
    let body: Value = if request.body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&request.body) {
            Ok(v) => v,
            Err(e) => {
                return respond_error(
                    &request,
                    &GatewayError::BadRequest(format!("Invalid request body: {e}")),
                );
            }
        }
    };
    let segments: Vec<String> = request
        .uri
        .path()
        .trim_matches('/')
        .split('/')
        .map(|s| front::percent_decode(s.as_bytes()))
        .collect();
    let query = front::form_pairs(request.uri.query().unwrap_or_default().as_bytes());
    let call = Call {
        gateway: Gateway::new(Arc::clone(&cp.resources)),
        region: cp.region.clone(),
        method: request.method.clone(),
        segments,
        query,
        body,
    };
    // Every write is synced to disk: off the async threads.
    let outcome = tokio::task::spawn_blocking(move || call.route()).await;
    match outcome {
        Ok(Ok(Some((status, v)))) => {
            let mut r = if v.is_null() {
                status.into_response()
            } else {
                (status, v.to_string()).into_response()
            };
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Ok(Ok(None)) => front::unimplemented(ControlService::ApiGateway, &request),
        Ok(Err(e)) => respond_error(&request, &e),
        Err(_) => respond_error(
            &request,
            &GatewayError::Storage(crate::storage::StorageError::Io(
                "the request failed inside spillway".into(),
            )),
        ),
    }
}

fn respond_error(request: &ControlRequest, e: &GatewayError) -> Response {
    let (status, code) = match e {
        GatewayError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFoundException"),
        GatewayError::Conflict(_) => (StatusCode::CONFLICT, "ConflictException"),
        GatewayError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequestException"),
        GatewayError::Storage(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
        ),
    };
    tracing::debug!(error = %e, "api gateway request refused");
    front::error(
        ControlService::ApiGateway,
        &request.headers,
        status,
        code,
        &e.to_string(),
    )
}

/// One request, owned, so that it can run on a blocking thread.
struct Call {
    gateway: Gateway,
    region: String,
    method: HttpMethod,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    body: Value,
}

fn ok(v: impl serde::Serialize) -> Result<Option<Answer>> {
    Ok(Some((StatusCode::OK, to_json(v))))
}

fn created(v: impl serde::Serialize) -> Result<Option<Answer>> {
    Ok(Some((StatusCode::CREATED, to_json(v))))
}

fn gone(status: StatusCode) -> Result<Option<Answer>> {
    Ok(Some((status, Value::Null)))
}

fn to_json(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn string(body: &Value, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// A member that must be a JSON object of strings (or absent).
fn string_map(body: &Value, name: &str) -> Result<BTreeMap<String, String>> {
    typed_member(body, name)
}

fn typed_member<T: serde::de::DeserializeOwned + Default>(body: &Value, name: &str) -> Result<T> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| GatewayError::BadRequest(format!("Invalid value for {name}: {e}"))),
    }
}

const API_RULES: Rules = Rules {
    fixed: &["id", "createdDate", "rootResourceId", "tags"],
    bool_maps: &[],
};
const METHOD_RULES: Rules = Rules {
    fixed: &["httpMethod", "methodResponses", "methodIntegration"],
    bool_maps: &["requestParameters"],
};
const METHOD_RESPONSE_RULES: Rules = Rules {
    fixed: &["statusCode"],
    bool_maps: &["responseParameters"],
};
const INTEGRATION_RULES: Rules = Rules {
    fixed: &["integrationResponses"],
    bool_maps: &[],
};
const INTEGRATION_RESPONSE_RULES: Rules = Rules {
    fixed: &["statusCode"],
    bool_maps: &[],
};
const DEPLOYMENT_RULES: Rules = Rules {
    fixed: &["id", "createdDate", "snapshot"],
    bool_maps: &[],
};
const STAGE_RULES: Rules = Rules {
    fixed: &["stageName", "createdDate", "lastUpdatedDate", "tags"],
    bool_maps: &[],
};

impl Call {
    fn route(&self) -> Result<Option<Answer>> {
        let segs: Vec<&str> = self.segments.iter().map(String::as_str).collect();
        let m = &self.method;
        match segs.as_slice() {
            ["restapis"] if m == HttpMethod::GET => {
                let items: Vec<Value> = self
                    .gateway
                    .list()?
                    .into_iter()
                    .map(|d| to_json(d.api))
                    .collect();
                ok(json!({ "item": items }))
            }
            ["restapis"] if m == HttpMethod::POST => self.create_api(),
            ["restapis", api] => self.rest_api(api),
            ["restapis", api, "resources"] if m == HttpMethod::GET => {
                let doc = self.gateway.load(api)?;
                let embed = self.embeds_methods();
                let items: Vec<Value> = doc
                    .resources
                    .values()
                    .map(|r| resource_view(r, embed))
                    .collect();
                ok(json!({ "item": items }))
            }
            ["restapis", api, "resources", rid] => self.resource(api, rid),
            ["restapis", api, "resources", rid, "methods", hm] => self.method(api, rid, hm),
            [
                "restapis",
                api,
                "resources",
                rid,
                "methods",
                hm,
                "responses",
                status,
            ] => self.method_response(api, rid, hm, status),
            [
                "restapis",
                api,
                "resources",
                rid,
                "methods",
                hm,
                "integration",
            ] => self.integration(api, rid, hm),
            [
                "restapis",
                api,
                "resources",
                rid,
                "methods",
                hm,
                "integration",
                "responses",
                status,
            ] => self.integration_response(api, rid, hm, status),
            ["restapis", api, "deployments"] => self.deployments(api),
            ["restapis", api, "deployments", id] => self.deployment(api, id),
            ["restapis", api, "stages"] => self.stages(api),
            ["restapis", api, "stages", name] => self.stage(api, name),
            ["tags", arn @ ..] if !arn.is_empty() => self.tags(&arn.join("/")),
            _ => Ok(None),
        }
    }

    fn embeds_methods(&self) -> bool {
        self.query
            .iter()
            .any(|(k, v)| k == "embed" && v.split(',').any(|e| e == "methods"))
    }

    fn ops(&self) -> Result<Vec<patch::PatchOp>> {
        patch::operations(&self.body)
    }

    fn create_api(&self) -> Result<Option<Answer>> {
        let b = &self.body;
        let endpoint: Option<Value> = typed_member(b, "endpointConfiguration")?;
        let new = NewApi {
            name: string(b, "name").unwrap_or_default(),
            description: string(b, "description"),
            version: string(b, "version"),
            binary_media_types: typed_member(b, "binaryMediaTypes")?,
            minimum_compression_size: b.get("minimumCompressionSize").and_then(Value::as_i64),
            api_key_source: string(b, "apiKeySource"),
            endpoint_types: endpoint.and_then(|e| serde_json::from_value(e["types"].clone()).ok()),
            policy: string(b, "policy"),
            tags: string_map(b, "tags")?,
            disable_execute_api_endpoint: b
                .get("disableExecuteApiEndpoint")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        created(self.gateway.create(new)?)
    }

    fn rest_api(&self, api: &str) -> Result<Option<Answer>> {
        match self.method {
            HttpMethod::GET => ok(self.gateway.load(api)?.api),
            HttpMethod::PATCH => {
                let ops = self.ops()?;
                ok(self.gateway.update(api, |d| {
                    patch::apply(&mut d.api, &ops, API_RULES)?;
                    Ok(d.api.clone())
                })?)
            }
            HttpMethod::DELETE => {
                self.gateway.delete(api)?;
                gone(StatusCode::ACCEPTED)
            }
            _ => Ok(None),
        }
    }

    fn resource(&self, api: &str, rid: &str) -> Result<Option<Answer>> {
        match self.method {
            HttpMethod::GET => {
                let doc = self.gateway.load(api)?;
                ok(resource_view(doc.resource(rid)?, self.embeds_methods()))
            }
            HttpMethod::POST => {
                let part = string(&self.body, "pathPart").unwrap_or_default();
                created(self.gateway.update(api, |d| d.add_resource(rid, &part))?)
            }
            HttpMethod::PATCH => {
                let ops = self.ops()?;
                let r = self.gateway.update(api, |d| {
                    let mut r = d.resource(rid)?.clone();
                    let rules = Rules {
                        fixed: &["id", "path", "resourceMethods"],
                        bool_maps: &[],
                    };
                    patch::apply(&mut r, &ops, rules)?;
                    if let Some(p) = &r.parent_id
                        && !d.resources.contains_key(p)
                    {
                        return Err(GatewayError::NotFound(gateway::NO_RESOURCE.into()));
                    }
                    d.resources.insert(rid.to_owned(), r);
                    d.repath(rid);
                    Ok(d.resource(rid)?.clone())
                })?;
                ok(resource_view(&r, false))
            }
            HttpMethod::DELETE => {
                self.gateway.update(api, |d| d.remove_resource(rid))?;
                gone(StatusCode::ACCEPTED)
            }
            _ => Ok(None),
        }
    }

    /// GET, PATCH and DELETE of one part of a method (the method, a method response,
    /// the integration, an integration response), which `locate` finds in the API.
    fn member<T>(
        &self,
        api: &str,
        rules: Rules,
        locate: impl Fn(&mut ApiDoc) -> Result<&mut T>,
        remove: impl FnOnce(&mut ApiDoc) -> Result<()>,
    ) -> Result<Option<Answer>>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Clone,
    {
        match self.method {
            HttpMethod::GET => {
                let mut doc = self.gateway.load(api)?;
                ok(&*locate(&mut doc)?)
            }
            HttpMethod::PATCH => {
                let ops = self.ops()?;
                ok(self.gateway.update(api, |d| {
                    let part = locate(d)?;
                    patch::apply(part, &ops, rules)?;
                    Ok(part.clone())
                })?)
            }
            HttpMethod::DELETE => {
                self.gateway.update(api, remove)?;
                gone(StatusCode::NO_CONTENT)
            }
            _ => Ok(None),
        }
    }

    fn method(&self, api: &str, rid: &str, hm: &str) -> Result<Option<Answer>> {
        if self.method != HttpMethod::PUT {
            return self.member(
                api,
                METHOD_RULES,
                |d| d.method_mut(rid, hm),
                |d| {
                    d.method(rid, hm)?;
                    d.resource_mut(rid)?.resource_methods.remove(hm);
                    Ok(())
                },
            );
        }
        let b = &self.body;
        let Some(authorization_type) = string(b, "authorizationType") else {
            return Err(GatewayError::BadRequest(
                "Invalid authorization type specified".into(),
            ));
        };
        let method = Method {
            http_method: hm.to_owned(),
            authorization_type,
            authorizer_id: string(b, "authorizerId"),
            api_key_required: b
                .get("apiKeyRequired")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            request_validator_id: string(b, "requestValidatorId"),
            operation_name: string(b, "operationName"),
            request_parameters: typed_member(b, "requestParameters")?,
            request_models: string_map(b, "requestModels")?,
            authorization_scopes: typed_member(b, "authorizationScopes")?,
            method_responses: BTreeMap::new(),
            method_integration: None,
        };
        created(self.gateway.update(api, |d| {
            let r = d.resource_mut(rid)?;
            if r.resource_methods.contains_key(hm) {
                return Err(GatewayError::Conflict(
                    "Method already exists for this resource".into(),
                ));
            }
            r.resource_methods.insert(hm.to_owned(), method.clone());
            Ok(method)
        })?)
    }

    fn method_response(
        &self,
        api: &str,
        rid: &str,
        hm: &str,
        status: &str,
    ) -> Result<Option<Answer>> {
        let missing = || GatewayError::NotFound(NO_RESPONSE.into());
        if self.method != HttpMethod::PUT {
            return self.member(
                api,
                METHOD_RESPONSE_RULES,
                |d| {
                    let responses = &mut d.method_mut(rid, hm)?.method_responses;
                    responses.get_mut(status).ok_or_else(missing)
                },
                |d| {
                    let responses = &mut d.method_mut(rid, hm)?.method_responses;
                    responses.remove(status).map(drop).ok_or_else(missing)
                },
            );
        }
        let response = MethodResponse {
            status_code: status.to_owned(),
            response_parameters: typed_member(&self.body, "responseParameters")?,
            response_models: string_map(&self.body, "responseModels")?,
        };
        created(self.gateway.update(api, |d| {
            let m = d.method_mut(rid, hm)?;
            if m.method_responses.contains_key(status) {
                return Err(GatewayError::Conflict(
                    "Response already exists for this resource".into(),
                ));
            }
            m.method_responses
                .insert(status.to_owned(), response.clone());
            Ok(response)
        })?)
    }

    fn integration(&self, api: &str, rid: &str, hm: &str) -> Result<Option<Answer>> {
        if self.method != HttpMethod::PUT {
            return self.member(
                api,
                INTEGRATION_RULES,
                |d| d.integration_mut(rid, hm),
                |d| {
                    d.integration_mut(rid, hm)?;
                    d.method_mut(rid, hm)?.method_integration = None;
                    Ok(())
                },
            );
        }
        let integration = new_integration(&self.body, rid)?;
        created(self.gateway.update(api, |d| {
            let m = d.method_mut(rid, hm)?;
            let mut integration = integration.clone();
            // Responses already defined stay with the method's integration.
            if let Some(old) = m.method_integration.take() {
                integration.integration_responses = old.integration_responses;
            }
            m.method_integration = Some(integration.clone());
            Ok(integration)
        })?)
    }

    fn integration_response(
        &self,
        api: &str,
        rid: &str,
        hm: &str,
        status: &str,
    ) -> Result<Option<Answer>> {
        let missing = || GatewayError::NotFound(NO_RESPONSE.into());
        if self.method != HttpMethod::PUT {
            return self.member(
                api,
                INTEGRATION_RESPONSE_RULES,
                |d| {
                    let i = d.integration_mut(rid, hm)?;
                    i.integration_responses.get_mut(status).ok_or_else(missing)
                },
                |d| {
                    let i = d.integration_mut(rid, hm)?;
                    i.integration_responses
                        .remove(status)
                        .map(drop)
                        .ok_or_else(missing)
                },
            );
        }
        let b = &self.body;
        let response = IntegrationResponse {
            status_code: status.to_owned(),
            selection_pattern: string(b, "selectionPattern"),
            response_parameters: string_map(b, "responseParameters")?,
            response_templates: string_map(b, "responseTemplates")?,
            content_handling: string(b, "contentHandling"),
        };
        created(self.gateway.update(api, |d| {
            let m = d.method_mut(rid, hm)?;
            if !m.method_responses.contains_key(status) {
                return Err(missing());
            }
            let i = m
                .method_integration
                .as_mut()
                .ok_or_else(|| GatewayError::NotFound(NO_INTEGRATION.into()))?;
            i.integration_responses
                .insert(status.to_owned(), response.clone());
            Ok(response)
        })?)
    }

    fn deployments(&self, api: &str) -> Result<Option<Answer>> {
        match self.method {
            HttpMethod::GET => {
                let doc = self.gateway.load(api)?;
                let items: Vec<Value> = doc.deployments.values().map(|d| d.view()).collect();
                ok(json!({ "item": items }))
            }
            HttpMethod::POST => {
                let b = &self.body;
                let stage_name = string(b, "stageName").filter(|s| !s.is_empty());
                let variables = string_map(b, "variables")?;
                let stage_description = string(b, "stageDescription");
                let d = self.gateway.update(api, |doc| {
                    let d = doc.deploy(string(b, "description"))?;
                    if let Some(name) = &stage_name {
                        let now = gateway::now_seconds();
                        let stage = doc
                            .stages
                            .entry(name.clone())
                            .or_insert_with(|| gateway::new_stage(name, &d.id));
                        stage.deployment_id = d.id.clone();
                        stage.last_updated_date = now;
                        stage.variables.extend(variables.clone());
                        if stage_description.is_some() {
                            stage.description = stage_description.clone();
                        }
                    }
                    Ok(d)
                })?;
                created(d.view())
            }
            _ => Ok(None),
        }
    }

    fn deployment(&self, api: &str, id: &str) -> Result<Option<Answer>> {
        let missing = || GatewayError::NotFound(gateway::NO_DEPLOYMENT.into());
        match self.method {
            HttpMethod::GET => {
                let doc = self.gateway.load(api)?;
                ok(doc.deployments.get(id).ok_or_else(missing)?.view())
            }
            HttpMethod::PATCH => {
                let ops = self.ops()?;
                ok(self.gateway.update(api, |d| {
                    let dep = d.deployments.get_mut(id).ok_or_else(missing)?;
                    patch::apply(dep, &ops, DEPLOYMENT_RULES)?;
                    Ok(dep.view())
                })?)
            }
            HttpMethod::DELETE => {
                self.gateway.update(api, |d| d.remove_deployment(id))?;
                gone(StatusCode::ACCEPTED)
            }
            _ => Ok(None),
        }
    }

    fn stages(&self, api: &str) -> Result<Option<Answer>> {
        match self.method {
            HttpMethod::GET => {
                let doc = self.gateway.load(api)?;
                let wanted = self
                    .query
                    .iter()
                    .find(|(k, _)| k == "deploymentId")
                    .map(|(_, v)| v.clone());
                let items: Vec<Value> = doc
                    .stages
                    .values()
                    .filter(|s| wanted.as_ref().is_none_or(|w| *w == s.deployment_id))
                    .map(to_json)
                    .collect();
                ok(json!({ "item": items }))
            }
            HttpMethod::POST => {
                let b = &self.body;
                let (Some(name), Some(deployment)) =
                    (string(b, "stageName"), string(b, "deploymentId"))
                else {
                    return Err(GatewayError::BadRequest(
                        "Stage name and deployment id must be provided".into(),
                    ));
                };
                let mut stage = gateway::new_stage(&name, &deployment);
                stage.description = string(b, "description");
                stage.cache_cluster_enabled = b
                    .get("cacheClusterEnabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                stage.cache_cluster_size = string(b, "cacheClusterSize");
                stage.variables = string_map(b, "variables")?;
                stage.documentation_version = string(b, "documentationVersion");
                stage.canary_settings = b.get("canarySettings").cloned();
                stage.tracing_enabled = b
                    .get("tracingEnabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                stage.tags = string_map(b, "tags")?;
                created(self.gateway.update(api, |d| d.add_stage(stage))?)
            }
            _ => Ok(None),
        }
    }

    fn stage(&self, api: &str, name: &str) -> Result<Option<Answer>> {
        let missing = || GatewayError::NotFound(NO_STAGE.into());
        match self.method {
            HttpMethod::GET => {
                let doc = self.gateway.load(api)?;
                ok(doc.stages.get(name).ok_or_else(missing)?)
            }
            HttpMethod::PATCH => {
                let ops = self.ops()?;
                ok(self.gateway.update(api, |d| {
                    let mut stage = d.stages.get(name).ok_or_else(missing)?.clone();
                    patch_stage(&mut stage, &ops)?;
                    if !d.deployments.contains_key(&stage.deployment_id) {
                        return Err(GatewayError::BadRequest(format!(
                            "Deployment id does not exist: {}",
                            stage.deployment_id
                        )));
                    }
                    stage.last_updated_date = gateway::now_seconds();
                    d.stages.insert(name.to_owned(), stage.clone());
                    Ok(stage)
                })?)
            }
            HttpMethod::DELETE => {
                self.gateway
                    .update(api, |d| d.stages.remove(name).ok_or_else(missing))?;
                gone(StatusCode::ACCEPTED)
            }
            _ => Ok(None),
        }
    }

    /// `GET/PUT/DELETE /tags/{arn}` for an API or a stage.
    fn tags(&self, arn: &str) -> Result<Option<Answer>> {
        let prefix = format!("arn:aws:apigateway:{}::/restapis/", self.region);
        let rest = arn.strip_prefix(&prefix).ok_or_else(|| {
            GatewayError::BadRequest(format!("Invalid resource ARN specified: {arn}"))
        })?;
        let (api, stage) = match rest.split('/').collect::<Vec<_>>().as_slice() {
            [api] => (api.to_string(), None),
            [api, "stages", stage] => (api.to_string(), Some(stage.to_string())),
            _ => {
                return Err(GatewayError::BadRequest(format!(
                    "Invalid resource ARN specified: {arn}"
                )));
            }
        };
        match self.method {
            HttpMethod::GET => {
                let doc = self.gateway.load(&api)?;
                let tags = match &stage {
                    None => doc.api.tags,
                    Some(s) => doc
                        .stages
                        .get(s)
                        .ok_or_else(|| GatewayError::NotFound(NO_STAGE.into()))?
                        .tags
                        .clone(),
                };
                ok(json!({ "tags": tags }))
            }
            HttpMethod::PUT => {
                let new = string_map(&self.body, "tags")?;
                self.gateway.update(&api, |d| {
                    tags_mut(d, stage.as_deref())?.extend(new);
                    Ok(())
                })?;
                gone(StatusCode::NO_CONTENT)
            }
            HttpMethod::DELETE => {
                let keys: Vec<&String> = self
                    .query
                    .iter()
                    .filter(|(k, _)| k == "tagKeys")
                    .map(|(_, v)| v)
                    .collect();
                self.gateway.update(&api, |d| {
                    let tags = tags_mut(d, stage.as_deref())?;
                    for k in keys {
                        tags.remove(k);
                    }
                    Ok(())
                })?;
                gone(StatusCode::NO_CONTENT)
            }
            _ => Ok(None),
        }
    }
}

fn tags_mut<'a>(
    d: &'a mut ApiDoc,
    stage: Option<&str>,
) -> Result<&'a mut BTreeMap<String, String>> {
    Ok(match stage {
        None => &mut d.api.tags,
        Some(s) => {
            &mut d
                .stages
                .get_mut(s)
                .ok_or_else(|| GatewayError::NotFound(NO_STAGE.into()))?
                .tags
        }
    })
}

/// A resource as `GetResource(s)` answers it: its methods in full with
/// `embed=methods`, else only their names.
fn resource_view(r: &Resource, embed: bool) -> Value {
    let mut v = to_json(r);
    if !embed && let Some(Value::Object(methods)) = v.get_mut("resourceMethods") {
        for m in methods.values_mut() {
            *m = json!({});
        }
    }
    v
}

/// `PutIntegration`'s body, with API Gateway's defaults.
fn new_integration(b: &Value, resource_id: &str) -> Result<Integration> {
    let Some(kind) = string(b, "type") else {
        return Err(GatewayError::BadRequest(
            "Enumeration value for IntegrationType must be non-empty".into(),
        ));
    };
    if !matches!(
        kind.as_str(),
        "AWS" | "AWS_PROXY" | "HTTP" | "HTTP_PROXY" | "MOCK"
    ) {
        return Err(GatewayError::BadRequest(format!(
            "Invalid integration type specified: {kind}"
        )));
    }
    let uri = string(b, "uri");
    let http_method = string(b, "httpMethod");
    if kind != "MOCK" {
        if http_method.is_none() {
            return Err(GatewayError::BadRequest(
                "Enumeration value for HttpMethod must be non-empty".into(),
            ));
        }
        if uri.as_deref().is_none_or(str::is_empty) {
            return Err(GatewayError::BadRequest(
                "Invalid ARN specified in the request".into(),
            ));
        }
    }
    Ok(Integration {
        kind,
        http_method,
        uri,
        connection_type: string(b, "connectionType"),
        connection_id: string(b, "connectionId"),
        credentials: string(b, "credentials"),
        request_parameters: string_map(b, "requestParameters")?,
        request_templates: string_map(b, "requestTemplates")?,
        passthrough_behavior: Some(
            string(b, "passthroughBehavior").unwrap_or_else(|| "WHEN_NO_MATCH".into()),
        ),
        content_handling: string(b, "contentHandling"),
        timeout_in_millis: b
            .get("timeoutInMillis")
            .and_then(Value::as_i64)
            .unwrap_or(29_000),
        cache_namespace: Some(
            string(b, "cacheNamespace").unwrap_or_else(|| resource_id.to_owned()),
        ),
        cache_key_parameters: typed_member(b, "cacheKeyParameters")?,
        integration_responses: BTreeMap::new(),
        tls_config: b.get("tlsConfig").cloned(),
    })
}

/// A stage's patch: `/{resourcePath}/{method}/{group}/{setting}` paths (`/*/*/metrics/enabled`)
/// go to `methodSettings`, the rest to the stage's own members.
fn patch_stage(stage: &mut Stage, ops: &[patch::PatchOp]) -> Result<()> {
    let mut own = Vec::new();
    for op in ops {
        let segs = patch::segments(&op.path)?;
        if segs.len() == 4 {
            let key = format!("{}/{}", segs[0], segs[1]);
            let Some((name, kind)) = method_setting(&segs[2], &segs[3]) else {
                return Err(GatewayError::BadRequest(format!(
                    "Invalid method setting path: {}",
                    op.path
                )));
            };
            let entry = stage
                .method_settings
                .entry(key)
                .or_insert_with(default_method_settings);
            let raw = op.value.clone().unwrap_or_default();
            let value = match kind {
                'b' => Value::Bool(raw.eq_ignore_ascii_case("true")),
                'i' => raw.parse::<i64>().map(Value::from).unwrap_or(Value::Null),
                'f' => raw.parse::<f64>().map(Value::from).unwrap_or(Value::Null),
                _ => Value::String(raw),
            };
            if op.op == "remove" {
                stage
                    .method_settings
                    .remove(&format!("{}/{}", segs[0], segs[1]));
            } else {
                entry[name] = value;
            }
        } else {
            own.push(op.clone());
        }
    }
    patch::apply(stage, &own, STAGE_RULES)
}

/// A method setting's member name and type (`b`ool, `i`nteger, `f`loat, `s`tring).
fn method_setting(group: &str, setting: &str) -> Option<(&'static str, char)> {
    Some(match (group, setting) {
        ("metrics", "enabled") => ("metricsEnabled", 'b'),
        ("logging", "loglevel") => ("loggingLevel", 's'),
        ("logging", "dataTrace") => ("dataTraceEnabled", 'b'),
        ("throttling", "burstLimit") => ("throttlingBurstLimit", 'i'),
        ("throttling", "rateLimit") => ("throttlingRateLimit", 'f'),
        ("caching", "enabled") => ("cachingEnabled", 'b'),
        ("caching", "ttlInSeconds") => ("cacheTtlInSeconds", 'i'),
        ("caching", "dataEncrypted") => ("cacheDataEncrypted", 'b'),
        ("caching", "requireAuthorizationForCacheControl") => {
            ("requireAuthorizationForCacheControl", 'b')
        }
        ("caching", "unauthorizedCacheControlHeaderStrategy") => {
            ("unauthorizedCacheControlHeaderStrategy", 's')
        }
        _ => return None,
    })
}

fn default_method_settings() -> Value {
    json!({
        "metricsEnabled": false,
        "loggingLevel": "OFF",
        "dataTraceEnabled": false,
        "throttlingBurstLimit": 5000,
        "throttlingRateLimit": 10000.0,
        "cachingEnabled": false,
        "cacheTtlInSeconds": 300,
        "cacheDataEncrypted": false,
        "requireAuthorizationForCacheControl": true,
        "unauthorizedCacheControlHeaderStrategy": "SUCCEED_WITH_RESPONSE_HEADER",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_patches_reach_method_settings_and_members() {
        let mut s = gateway::new_stage("dev", "d1");
        let op = |op: &str, path: &str, value: &str| patch::PatchOp {
            op: op.into(),
            path: path.into(),
            value: Some(value.into()),
            from: None,
        };
        patch_stage(
            &mut s,
            &[
                op("replace", "/*/*/metrics/enabled", "true"),
                op("replace", "/~1items/GET/throttling/burstLimit", "10"),
                op("replace", "/variables/stream", "s2"),
                op("replace", "/deploymentId", "d2"),
            ],
        )
        .unwrap();
        assert_eq!(s.method_settings["*/*"]["metricsEnabled"], json!(true));
        assert_eq!(s.method_settings["*/*"]["loggingLevel"], json!("OFF"));
        assert_eq!(
            s.method_settings["/items/GET"]["throttlingBurstLimit"],
            json!(10)
        );
        assert_eq!(s.variables["stream"], "s2");
        assert_eq!(s.deployment_id, "d2");
        assert!(patch_stage(&mut s, &[op("replace", "/a/b/c/d", "x")]).is_err());
    }

    #[test]
    fn integrations_take_api_gateways_defaults() {
        let i = new_integration(
            &json!({"type": "AWS", "httpMethod": "POST", "uri": "arn:aws:apigateway:us-east-1:kinesis:action/PutRecord"}),
            "r1",
        )
        .unwrap();
        assert_eq!(i.passthrough_behavior.as_deref(), Some("WHEN_NO_MATCH"));
        assert_eq!(i.timeout_in_millis, 29_000);
        assert_eq!(i.cache_namespace.as_deref(), Some("r1"));
        let v = to_json(&i);
        assert_eq!(v["cacheKeyParameters"], json!([]));
        assert!(new_integration(&json!({"type": "AWS"}), "r1").is_err());
        assert!(new_integration(&json!({"type": "MOCK"}), "r1").is_ok());
        assert!(new_integration(&json!({}), "r1").is_err());
    }
}
