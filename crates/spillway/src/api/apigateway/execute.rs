//! A request to a deployed stage, run as API Gateway runs it: the resource and method
//! of the stage's deployment snapshot, the request template chosen by Content-Type
//! (with the integration's passthrough behaviour) and rendered by `spillway-vtl`, the
//! integration (spillway's own Kinesis or DynamoDB API called in process, a function,
//! or a mock), then the integration response whose `selectionPattern` matches the
//! backend's status (or the function's error message), its template and header
//! mappings. Configuration mistakes answer as API Gateway answers them, with its
//! execution-log line at warn.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};
use spillway_vtl::Context;

use super::StageTarget;
use crate::api::front::{self, ControlPlane};
use crate::api::model::pattern::Pattern;
use crate::api::{dynamodb, kinesis};
use crate::function::{FunctionError, TableWrites};
use crate::gateway::model::{Integration, IntegrationResponse};
use crate::gateway::{Deployed, Gateway, routing};
use crate::storage::SyncMode;

/// API Gateway's payload limit.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// Log target of the execution log lines.
const LOG: &str = "spillway::apigateway";

/// Runs a request through a deployed stage.
pub async fn execute(cp: &ControlPlane, target: StageTarget, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut r = run(cp, &target, request, &request_id).await;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert(crate::api::names::X_AMZN_REQUEST_ID, v);
    }
    let apigw_id = format!("{}=", &crate::gateway::new_id(15));
    if let Ok(v) = HeaderValue::from_str(&apigw_id) {
        h.insert("x-amz-apigw-id", v);
    }
    r
}

/// `{"message": text}`, API Gateway's own error body.
fn message(status: StatusCode, text: &str) -> Response {
    let mut r = (status, json!({ "message": text }).to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// What API Gateway answers for a path or method the stage does not have.
fn missing_token() -> Response {
    let mut r = message(StatusCode::FORBIDDEN, "Missing Authentication Token");
    r.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static("MissingAuthenticationTokenException"),
    );
    r
}

fn internal_error() -> Response {
    message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

/// A configuration error, logged as API Gateway's execution log words it.
fn configuration_error(what: &str) -> Response {
    tracing::warn!(target: LOG, "Execution failed due to configuration error: {what}");
    internal_error()
}

/// What a backend answered, and what the integration responses are selected on
/// (`None`: only the default response applies, as for a function that succeeded).
struct Backend {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    subject: Option<String>,
}

/// Where an integration's `uri` points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `arn:aws:apigateway:{region}:{service}:action/{Action}`.
    Action { service: String, action: String },
    /// `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations`.
    Function(String),
}

fn parse_uri(uri: &str) -> Option<Target> {
    let rest = uri.strip_prefix("arn:aws:apigateway:")?;
    let mut it = rest.splitn(3, ':');
    let (_region, service, path) = (it.next()?, it.next()?, it.next()?);
    if let Some(action) = path.strip_prefix("action/") {
        let action = action.split(['&', '?']).next().unwrap_or(action);
        return Some(Target::Action {
            service: service.to_owned(),
            action: action.to_owned(),
        });
    }
    if service == "lambda" {
        let (_, after) = path.split_once("/functions/")?;
        let arn = after.strip_suffix("/invocations").unwrap_or(after);
        let name = crate::lambda::Lambda::resolve_name(arn);
        return Some(Target::Function(name.to_owned()));
    }
    None
}

/// One request on its way through the stage.
struct Exchange<'a> {
    cp: &'a ControlPlane,
    deployed: &'a Deployed,
    integration: &'a Integration,
    ctx: Context,
    content_type: String,
}

async fn run(
    cp: &ControlPlane,
    target: &StageTarget,
    request: Request,
    request_id: &str,
) -> Response {
    let gateway = Gateway::new(Arc::clone(&cp.resources));
    let deployed = match gateway.deployed(&target.api_id, &target.stage) {
        Ok(Some(d)) => d,
        Ok(None) => return missing_token(),
        Err(e) => {
            tracing::warn!(target: LOG, error = %e, "reading the stage failed");
            return internal_error();
        }
    };
    let Some(matched) = routing::match_path(&deployed.resources, &target.path) else {
        return missing_token();
    };
    let (parts, body) = request.into_parts();
    let methods = &matched.resource.resource_methods;
    let Some(method) = methods
        .get(parts.method.as_str())
        .or_else(|| methods.get("ANY"))
    else {
        return missing_token();
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD).await else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Too Long");
    };
    let Some(integration) = &method.method_integration else {
        return configuration_error("No integration defined for method");
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/json".to_owned());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
        .collect();
    let querystring = front::form_pairs(parts.uri.query().unwrap_or_default().as_bytes());
    let source_ip = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map_or_else(|| "127.0.0.1".to_owned(), |v| v.trim().to_owned());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let domain = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let context = json!({
        "requestId": request_id,
        "extendedRequestId": request_id,
        "stage": deployed.stage.stage_name,
        "httpMethod": parts.method.as_str(),
        "resourcePath": matched.resource.path,
        "resourceId": matched.resource.id,
        "path": format!("/{}{}", deployed.stage.stage_name, target.path),
        "apiId": deployed.api_id,
        "accountId": cp.account_id,
        "domainName": domain,
        "domainPrefix": domain.split('.').next().unwrap_or_default(),
        "protocol": "HTTP/1.1",
        "requestTime": request_time(now_ms),
        "requestTimeEpoch": now_ms,
        "identity": {
            "sourceIp": source_ip,
            "userAgent": user_agent,
            "accountId": null,
            "caller": null,
            "user": null,
            "userArn": null,
            "apiKey": null,
        },
    });
    let ctx = Context {
        body: String::from_utf8_lossy(&body).into_owned(),
        path: matched.path_params.clone(),
        querystring,
        headers,
        context,
        stage_variables: to_object(&deployed.stage.variables),
    };
    let exchange = Exchange {
        cp,
        deployed: &deployed,
        integration,
        ctx,
        content_type,
    };
    match integration.kind.as_str() {
        "MOCK" => exchange.mock(),
        "AWS" => exchange.aws().await,
        "AWS_PROXY" => {
            exchange
                .proxy(&parts.method, &target.path, matched.resource)
                .await
        }
        other => {
            tracing::warn!(target: LOG, integration = other, "spillway does not run {other} integrations");
            internal_error()
        }
    }
}

fn to_object(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// `$context.requestTime`: `09/Apr/2015:12:34:56 +0000`.
fn request_time(ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms / 1000;
    let (y, m, d) = crate::mapping::dead_letter::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1).clamp(0, 11) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Why a request stops before (or after) its backend, answered as API Gateway answers.
#[derive(Debug)]
enum Stop {
    /// `$input.json`/`$input.path` on a body that is not JSON.
    InvalidJson(String),
    /// A template that does not parse or render.
    Template(String),
    /// No template for the Content-Type, and the passthrough behaviour refuses.
    Unsupported,
}

impl Stop {
    fn respond(self) -> Response {
        match self {
            Stop::InvalidJson(m) => message(
                StatusCode::BAD_REQUEST,
                &format!("Could not parse request body into json: {m}"),
            ),
            Stop::Template(e) => {
                tracing::warn!(target: LOG, "Execution failed due to a mapping template error: {e}");
                internal_error()
            }
            Stop::Unsupported => {
                message(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type")
            }
        }
    }
}

/// Which request template applies to a Content-Type.
#[derive(Debug, PartialEq, Eq)]
enum Selected<'a> {
    Template(&'a str),
    Passthrough,
    Unsupported,
}

fn select_request_template<'a>(integration: &'a Integration, content_type: &str) -> Selected<'a> {
    let templates = &integration.request_templates;
    if let Some((_, t)) = templates
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(content_type))
    {
        return Selected::Template(t);
    }
    match integration
        .passthrough_behavior
        .as_deref()
        .unwrap_or("WHEN_NO_MATCH")
    {
        "WHEN_NO_TEMPLATES" if templates.is_empty() => Selected::Passthrough,
        "WHEN_NO_TEMPLATES" | "NEVER" => Selected::Unsupported,
        _ => Selected::Passthrough,
    }
}

/// The integration response for a backend's answer: the first whose `selectionPattern`
/// matches the whole subject, else the default (no pattern).
fn select_response<'a>(
    responses: &'a BTreeMap<String, IntegrationResponse>,
    subject: Option<&str>,
) -> Option<&'a IntegrationResponse> {
    let pattern = |r: &IntegrationResponse| {
        r.selection_pattern
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
    };
    if let Some(subject) = subject {
        let matched = responses.values().find(|r| {
            pattern(r).is_some_and(|p| match Pattern::compile(&p) {
                Ok(p) => p.is_match(subject),
                Err(e) => {
                    tracing::warn!(target: LOG, error = %e, "a selection pattern could not be compiled");
                    false
                }
            })
        });
        if matched.is_some() {
            return matched;
        }
    }
    responses.values().find(|r| pattern(r).is_none())
}

/// Templates parsed once and kept by their text, since a stage renders the same few on
/// every request. Bounded: past `MAX_CACHED` the cache starts again empty.
fn parsed(source: &str) -> Result<std::sync::Arc<spillway_vtl::Template>, spillway_vtl::Error> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    const MAX_CACHED: usize = 1024;
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<spillway_vtl::Template>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(t) = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(source)
    {
        return Ok(Arc::clone(t));
    }
    let template = Arc::new(spillway_vtl::Template::parse(source)?);
    let mut cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(source.to_owned(), Arc::clone(&template));
    Ok(template)
}

impl Exchange<'_> {
    /// Renders a template of this deployment.
    fn render(&self, source: &str, ctx: &Context) -> Result<String, Stop> {
        let to_stop = |e| match e {
            spillway_vtl::Error::InvalidJsonBody { message: m, .. } => Stop::InvalidJson(m),
            e => Stop::Template(e.to_string()),
        };
        parsed(source)
            .map_err(to_stop)?
            .render(ctx)
            .map_err(to_stop)
    }

    /// The integration request's body: the chosen template rendered, or the body.
    fn request_payload(&self) -> Result<String, Stop> {
        match select_request_template(self.integration, &self.content_type) {
            Selected::Template(t) => self.render(t, &self.ctx),
            Selected::Passthrough => Ok(self.ctx.body.clone()),
            Selected::Unsupported => Err(Stop::Unsupported),
        }
    }

    fn mock(&self) -> Response {
        let payload = match self.request_payload() {
            Ok(p) => p,
            Err(stop) => return stop.respond(),
        };
        let status = serde_json::from_str::<Value>(&payload)
            .ok()
            .and_then(|v| v.get("statusCode").and_then(Value::as_u64))
            .unwrap_or(200) as u16;
        self.respond(Backend {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            subject: Some(status.to_string()),
        })
    }

    async fn aws(&self) -> Response {
        let uri = self.integration.uri.as_deref().unwrap_or_default();
        let Some(target) = parse_uri(uri) else {
            return configuration_error(&format!("spillway cannot call the integration URI {uri}"));
        };
        let payload = match self.request_payload() {
            Ok(p) => p,
            Err(stop) => return stop.respond(),
        };
        let backend = match target {
            Target::Action { service, action } => {
                let response = match service.as_str() {
                    "kinesis" => self.kinesis(&action, &payload).await,
                    "dynamodb" => self.dynamodb(&action, payload).await,
                    other => {
                        return configuration_error(&format!(
                            "spillway does not serve the {other} service to integrations"
                        ));
                    }
                };
                let (parts, body) = response.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                Backend {
                    status: parts.status.as_u16(),
                    headers: parts.headers,
                    subject: Some(parts.status.as_u16().to_string()),
                    body,
                }
            }
            Target::Function(name) => {
                let payload = if payload.is_empty() {
                    "{}".to_owned()
                } else {
                    payload
                };
                match self.invoke(&name, payload).await {
                    Err(r) => return r,
                    Ok(Ok(body)) => Backend {
                        status: 200,
                        headers: HeaderMap::new(),
                        body,
                        subject: None,
                    },
                    Ok(Err(e)) => {
                        let (error_type, error_message) = match e {
                            FunctionError::Unhandled {
                                error_type,
                                message,
                            } => (error_type, message),
                            other => ("Unhandled".to_owned(), other.to_string()),
                        };
                        let body =
                            json!({ "errorMessage": error_message, "errorType": error_type });
                        Backend {
                            status: 200,
                            headers: HeaderMap::new(),
                            body: Bytes::from(body.to_string()),
                            subject: Some(error_message),
                        }
                    }
                }
            }
        };
        self.respond(backend)
    }

    /// spillway's own Kinesis API, in process, as `Kinesis_20131202.{action}` in JSON 1.1.
    async fn kinesis(&self, action: &str, payload: &str) -> Response {
        let service = kinesis::KinesisService {
            streams: Arc::clone(&self.cp.services.streams),
            iterators: self.cp.services.iterators.clone(),
        };
        let encoding = kinesis::Encoding::Json;
        match kinesis::decode_body(payload.as_bytes(), encoding) {
            Ok(request) => kinesis::handle_decoded(&service, action, request, encoding).await,
            Err(e) => e.respond(encoding),
        }
    }

    /// spillway's own DynamoDB API, in process, as `DynamoDB_20120810.{action}`.
    async fn dynamodb(&self, action: &str, payload: String) -> Response {
        let tables = &self.cp.services.tables;
        match serde_json::from_str::<Value>(&payload) {
            Ok(request) => dynamodb::handle_json(tables, action, request).await,
            Err(_) => dynamodb::handle(tables, action, payload.as_bytes()).await,
        }
    }

    /// Invokes a function, committing the table writes a built-in function hands back.
    /// The outer error is the answer when the function cannot be invoked at all.
    async fn invoke(
        &self,
        name: &str,
        payload: String,
    ) -> Result<Result<Bytes, FunctionError>, Response> {
        let Some(function) = self.cp.services.functions.get(name) else {
            return Err(configuration_error(&format!(
                "Invalid permissions on Lambda function (function {name} not found)"
            )));
        };
        let tables = Arc::clone(&self.cp.services.tables);
        // A task of its own: a client that hangs up does not stop the function.
        let invocation = tokio::spawn(async move {
            let mut writes = TableWrites::default();
            let out = function
                .try_invoke(Bytes::from(payload), &mut writes)
                .await?;
            if !writes.ops.is_empty() {
                tables
                    .commit(&writes.ops, SyncMode::SyncData)
                    .map_err(|e| {
                        FunctionError::Start(format!("committing the function's writes: {e}"))
                    })?;
            }
            Ok(out)
        });
        match invocation.await {
            Ok(Err(FunctionError::Throttled)) => {
                Err(message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"))
            }
            Ok(result) => Ok(result),
            Err(_) => Err(internal_error()),
        }
    }

    /// `AWS_PROXY`: the whole request as Lambda's proxy event; the function's answer is
    /// the response.
    async fn proxy(
        &self,
        method: &axum::http::Method,
        path: &str,
        resource: &crate::gateway::model::Resource,
    ) -> Response {
        let uri = self.integration.uri.as_deref().unwrap_or_default();
        let Some(Target::Function(name)) = parse_uri(uri) else {
            return configuration_error(&format!("spillway cannot call the proxy URI {uri}"));
        };
        let event = self.proxy_event(method, path, resource);
        match self.invoke(&name, event.to_string()).await {
            Err(r) => r,
            Ok(Ok(payload)) => proxy_response(&payload),
            Ok(Err(e)) => {
                tracing::warn!(target: LOG, function = %name, error = %e, "Lambda execution failed");
                message(StatusCode::BAD_GATEWAY, "Internal server error")
            }
        }
    }

    fn proxy_event(
        &self,
        method: &axum::http::Method,
        path: &str,
        resource: &crate::gateway::model::Resource,
    ) -> Value {
        let single = |pairs: &[(String, String)]| -> Value {
            if pairs.is_empty() {
                return Value::Null;
            }
            Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        let multi = |pairs: &[(String, String)]| -> Value {
            if pairs.is_empty() {
                return Value::Null;
            }
            let mut m = serde_json::Map::new();
            for (k, v) in pairs {
                let entry = m.entry(k.clone()).or_insert_with(|| json!([]));
                if let Value::Array(a) = entry {
                    a.push(Value::String(v.clone()));
                }
            }
            Value::Object(m)
        };
        let ctx = &self.ctx;
        let stage_variables = if self.deployed.stage.variables.is_empty() {
            Value::Null
        } else {
            ctx.stage_variables.clone()
        };
        let mut request_context = ctx.context.clone();
        request_context["resourcePath"] = resource.path.clone().into();
        json!({
            "resource": resource.path,
            "path": path,
            "httpMethod": method.as_str(),
            "headers": single(&ctx.headers),
            "multiValueHeaders": multi(&ctx.headers),
            "queryStringParameters": single(&ctx.querystring),
            "multiValueQueryStringParameters": multi(&ctx.querystring),
            "pathParameters": single(&ctx.path),
            "stageVariables": stage_variables,
            "requestContext": request_context,
            "body": if ctx.body.is_empty() { Value::Null } else { Value::String(ctx.body.clone()) },
            "isBase64Encoded": false,
        })
    }

    /// The method response for a backend's answer, through the selected integration
    /// response.
    fn respond(&self, backend: Backend) -> Response {
        let responses = &self.integration.integration_responses;
        let Some(chosen) = select_response(responses, backend.subject.as_deref()) else {
            return configuration_error(&format!(
                "No match for output mapping and no default output mapping configured. Endpoint Response Status Code: {}",
                backend.status
            ));
        };
        let status = chosen
            .status_code
            .parse::<u16>()
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        let templates = &chosen.response_templates;
        let template = templates
            .get_key_value("application/json")
            .or_else(|| templates.iter().next());
        let (content_type, body) = match template {
            Some((ct, source)) if !source.trim().is_empty() => {
                let mut ctx = self.ctx.clone();
                ctx.body = String::from_utf8_lossy(&backend.body).into_owned();
                match self.render(source, &ctx) {
                    Ok(out) => (ct.clone(), Bytes::from(out)),
                    Err(stop) => return stop.respond(),
                }
            }
            Some((ct, _)) => (ct.clone(), backend.body.clone()),
            None => ("application/json".to_owned(), backend.body.clone()),
        };
        let mut r = (status, body.clone()).into_response();
        if let Ok(v) = HeaderValue::from_str(&content_type) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        for (target, source) in &chosen.response_parameters {
            let Some(name) = target.strip_prefix("method.response.header.") else {
                continue;
            };
            let value = response_parameter(source, &backend);
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.as_deref().map(HeaderValue::from_str),
            ) {
                r.headers_mut().insert(name, value);
            }
        }
        r
    }
}

/// A response parameter's value: `'literal'`, `integration.response.header.X`,
/// `integration.response.body` or `integration.response.body.a.b`.
fn response_parameter(source: &str, backend: &Backend) -> Option<String> {
    if let Some(literal) = source.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Some(literal.to_owned());
    }
    if let Some(h) = source.strip_prefix("integration.response.header.") {
        return Some(backend.headers.get(h)?.to_str().ok()?.to_owned());
    }
    let path = source.strip_prefix("integration.response.body")?;
    let mut v: Value = serde_json::from_slice(&backend.body).ok()?;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        v = v.get(key)?.clone();
    }
    Some(match v {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// A Lambda proxy response (`statusCode`, `headers`, `multiValueHeaders`, `body`,
/// `isBase64Encoded`) as HTTP; anything else is API Gateway's 502.
fn proxy_response(payload: &[u8]) -> Response {
    let malformed = || {
        tracing::warn!(target: LOG, "Execution failed due to configuration error: Malformed Lambda proxy response");
        message(StatusCode::BAD_GATEWAY, "Internal server error")
    };
    let Ok(Value::Object(v)) = serde_json::from_slice::<Value>(payload) else {
        return malformed();
    };
    let status = match v.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let Some(status) = status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return malformed();
    };
    let text = v.get("body").and_then(Value::as_str).unwrap_or_default();
    let body = if v.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(b) => Bytes::from(b),
            Err(_) => return malformed(),
        }
    } else {
        Bytes::from(text.to_owned())
    };
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let single = v
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten();
    for (k, val) in single {
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::from_bytes(k.as_bytes()),
            val.as_str().map(HeaderValue::from_str),
        ) {
            r.headers_mut().insert(name, value);
        }
    }
    let multi = v
        .get("multiValueHeaders")
        .and_then(Value::as_object)
        .into_iter()
        .flatten();
    for (k, vals) in multi {
        let Ok(name) = HeaderName::from_bytes(k.as_bytes()) else {
            continue;
        };
        for val in vals.as_array().into_iter().flatten() {
            if let Some(Ok(value)) = val.as_str().map(HeaderValue::from_str) {
                r.headers_mut().append(name.clone(), value);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responses(list: &[(&str, Option<&str>)]) -> BTreeMap<String, IntegrationResponse> {
        list.iter()
            .map(|(status, pattern)| {
                (
                    status.to_string(),
                    IntegrationResponse {
                        status_code: status.to_string(),
                        selection_pattern: pattern.map(Into::into),
                        response_parameters: BTreeMap::new(),
                        response_templates: BTreeMap::new(),
                        content_handling: None,
                    },
                )
            })
            .collect()
    }

    fn chosen(r: &BTreeMap<String, IntegrationResponse>, subject: Option<&str>) -> Option<String> {
        select_response(r, subject).map(|r| r.status_code.clone())
    }

    #[test]
    fn selection_patterns_match_the_whole_status() {
        let r = responses(&[
            ("200", None),
            ("400", Some(r"4\d{2}")),
            ("500", Some(r"5\d{2}")),
        ]);
        assert_eq!(chosen(&r, Some("200")).as_deref(), Some("200"));
        assert_eq!(chosen(&r, Some("400")).as_deref(), Some("400"));
        assert_eq!(chosen(&r, Some("404")).as_deref(), Some("400"));
        assert_eq!(chosen(&r, Some("503")).as_deref(), Some("500"));
        // Whole-string: "4000" is not 4\d{2}; it falls back to the default.
        assert_eq!(chosen(&r, Some("4000")).as_deref(), Some("200"));
        // A successful function: only the default applies.
        assert_eq!(chosen(&r, None).as_deref(), Some("200"));
    }

    #[test]
    fn alternation_wildcards_and_no_default() {
        let r = responses(&[("200", Some(r"2\d{2}")), ("502", Some(".*Error.*|timeout"))]);
        assert_eq!(chosen(&r, Some("201")).as_deref(), Some("200"));
        assert_eq!(chosen(&r, Some("Some Error here")).as_deref(), Some("502"));
        assert_eq!(chosen(&r, Some("timeout")).as_deref(), Some("502"));
        // No match and no default: the caller answers AWS's 500.
        assert_eq!(chosen(&r, Some("400")), None);
        // An empty pattern is the default, as Terraform writes it.
        let r = responses(&[("200", Some("")), ("400", Some(r"4\d{2}"))]);
        assert_eq!(chosen(&r, Some("500")).as_deref(), Some("200"));
    }

    fn integration(templates: &[(&str, &str)], passthrough: Option<&str>) -> Integration {
        Integration {
            kind: "AWS".into(),
            http_method: Some("POST".into()),
            uri: None,
            connection_type: None,
            connection_id: None,
            credentials: None,
            request_parameters: BTreeMap::new(),
            request_templates: templates
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            passthrough_behavior: passthrough.map(Into::into),
            content_handling: None,
            timeout_in_millis: 29_000,
            cache_namespace: None,
            cache_key_parameters: vec![],
            integration_responses: BTreeMap::new(),
            tls_config: None,
        }
    }

    #[test]
    fn passthrough_behaviours() {
        let json_only = [("application/json", "T")];
        let i = integration(&json_only, None);
        assert_eq!(
            select_request_template(&i, "application/json"),
            Selected::Template("T")
        );
        assert_eq!(
            select_request_template(&i, "Application/JSON"),
            Selected::Template("T")
        );
        assert_eq!(
            select_request_template(&i, "text/plain"),
            Selected::Passthrough
        );
        let i = integration(&json_only, Some("WHEN_NO_TEMPLATES"));
        assert_eq!(
            select_request_template(&i, "text/plain"),
            Selected::Unsupported
        );
        let i = integration(&[], Some("WHEN_NO_TEMPLATES"));
        assert_eq!(
            select_request_template(&i, "text/plain"),
            Selected::Passthrough
        );
        let i = integration(&json_only, Some("NEVER"));
        assert_eq!(
            select_request_template(&i, "text/plain"),
            Selected::Unsupported
        );
        assert_eq!(
            select_request_template(&i, "application/json"),
            Selected::Template("T")
        );
        let i = integration(&[], Some("NEVER"));
        assert_eq!(
            select_request_template(&i, "application/json"),
            Selected::Unsupported
        );
    }

    #[test]
    fn integration_uris() {
        assert_eq!(
            parse_uri("arn:aws:apigateway:us-east-1:kinesis:action/PutRecord"),
            Some(Target::Action {
                service: "kinesis".into(),
                action: "PutRecord".into()
            })
        );
        assert_eq!(
            parse_uri("arn:aws:apigateway:us-east-1:dynamodb:action/PutItem"),
            Some(Target::Action {
                service: "dynamodb".into(),
                action: "PutItem".into()
            })
        );
        assert_eq!(
            parse_uri(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:writer/invocations"
            ),
            Some(Target::Function("writer".into()))
        );
        assert_eq!(parse_uri("https://example.com"), None);
    }

    #[test]
    fn request_time_is_api_gateways_format() {
        assert_eq!(
            request_time(1_428_582_896_000),
            "09/Apr/2015:12:34:56 +0000"
        );
    }

    #[test]
    fn proxy_responses() {
        let r = proxy_response(br#"{"statusCode": 201, "headers": {"x-a": "1"}, "body": "hi"}"#);
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()["x-a"], "1");
        let r =
            proxy_response(br#"{"statusCode": "200", "body": "aGk=", "isBase64Encoded": true}"#);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            proxy_response(b"not json").status(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            proxy_response(br#"{"body": "x"}"#).status(),
            StatusCode::BAD_GATEWAY
        );
    }
}
