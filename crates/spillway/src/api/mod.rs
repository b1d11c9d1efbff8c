//! The HTTP edges. Each submodule decodes one wire format, calls the domain and encodes
//! the answer; each maps domain errors to its protocol's error shape in one place.
//!
//! - [`ingest`]: the configured routes (`POST /dev`), playing API Gateway's AWS
//!   integration with Kinesis PutRecord.
//! - [`direct`]: routes that invoke a function synchronously, playing API Gateway's
//!   Lambda proxy integration (the design the pattern replaces).
//! - [`inspect`]: `/_spillway/...`, a small JSON API for looking at streams without AWS
//!   tools; `spillway stream` is its client.

pub mod apigateway;
pub mod connection;
pub mod direct;
pub mod dynamodb;
pub mod edge;
pub mod front;
pub mod iam;
pub mod ingest;
pub mod inspect;
pub mod kinesis;
pub mod lambda;
pub mod logs;
pub mod model;
pub mod monitoring;
pub mod prometheus;
pub mod routes;
pub mod sqs;

/// Header names the edges read or write on every request, parsed once: a name given as
/// text is parsed and validated again on each lookup or insert.
pub mod names {
    use axum::http::HeaderName;

    pub const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");
    pub const X_AMZN_REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
    pub const X_AMZ_CRC32: HeaderName = HeaderName::from_static("x-amz-crc32");
    pub const X_AMZ_ID_2: HeaderName = HeaderName::from_static("x-amz-id-2");
    pub const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
    pub const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
}
pub mod sigv4;

/// A fresh `x-amzn-RequestId` value in the form most AWS services use: a lower-case
/// hyphenated UUID, encoded on the stack (every answer carries one). DynamoDB's own
/// 52-character form is [`dynamodb::request_id`].
pub fn uuid_request_id() -> axum::http::HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    axum::http::HeaderValue::from_str(id)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("0"))
}

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::config::Config;
use crate::function::Functions;
use crate::mapping::Mappings;
use crate::stream::Streams;
use crate::table::Tables;

/// The domain services the edges call.
#[derive(Debug, Clone)]
pub struct Services {
    pub streams: Arc<Streams>,
    pub tables: Arc<Tables>,
    pub mappings: Arc<Mappings>,
    pub functions: Arc<Functions>,
    /// Signs the Kinesis API's shard iterators.
    pub iterators: kinesis::iterator::IteratorCodec,
    /// A worker's shared engines: the ingest routes append there, and the Kinesis and
    /// DynamoDB APIs are answered from there (`crate::remote`).
    pub remote: Option<Arc<crate::remote::RemoteEngines>>,
    /// This process as a worker over those engines (`/_spillway/worker`).
    pub worker: Option<Arc<crate::worker::Worker>>,
}

/// What the AWS endpoint at `/` holds, built once and shared by every request (one
/// reference count per request rather than a clone of each service).
#[derive(Debug)]
struct AwsEdge {
    services: Services,
    kinesis: kinesis::KinesisService,
    verifier: Option<sigv4::Verifier>,
    /// Names DynamoDB's health line.
    region: String,
}

/// A JSON error body in the AWS shape, `{"__type": ..., "message": ...}`.
pub fn aws_error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "__type": kind, "message": message.into() });
    (status, axum::Json(body)).into_response()
}

/// Largest AWS JSON request body accepted.
pub const MAX_AWS_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// `POST /` with `X-Amz-Target`: the AWS JSON APIs, told apart by the target's prefix.
/// With a [`sigv4::Verifier`] every request's signature is checked before its action
/// runs; without one only the signature's shape is checked (an unsigned or malformed
/// request is refused as AWS refuses it).
async fn aws_json(
    edge: &AwsEdge,
    request: sigv4::Request<'_>,
    json: Option<serde_json::Value>,
) -> Response {
    let (services, verifier) = (&edge.services, edge.verifier.as_ref());
    let headers = request.headers;
    let target = headers
        .get(&crate::api::names::X_AMZ_TARGET)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (service, action) = target.split_once('.').unwrap_or((target, ""));
    let remote = services.remote.as_deref();
    if service != "DynamoDB_20120810" {
        return kinesis_front(&edge.kinesis, verifier, remote, request, service, action).await;
    }
    let api = sigv4::Api::DynamoDb;
    let authenticated = match verifier {
        Some(v) => v.verify(api, &request),
        // Unverified, DynamoDB still refuses a signature of the wrong shape.
        None if api == sigv4::Api::DynamoDb => sigv4::check_shape(api, &request),
        None if sigv4::is_signed(headers, request.uri) => Ok(()),
        None => Err(sigv4::AuthError::MissingToken),
    };
    if let Err(e) = authenticated {
        tracing::debug!(service, action, error = %e, "aws request not authenticated");
        return e.respond(api);
    }
    if let Some(remote) = remote {
        return match remote.tables.dynamodb() {
            Some(db) => forward(db.api(), &request, None).await,
            None => aws_error(
                StatusCode::BAD_REQUEST,
                "com.amazon.coral.validate#ValidationException",
                "This worker keeps its tables in PostgreSQL; the DynamoDB API is not served here",
            ),
        };
    }
    match json {
        Some(json) => dynamodb::handle_json(&services.tables, action, json).await,
        None => dynamodb::handle(&services.tables, action, request.body).await,
    }
}

/// Kinesis' order of checks, which clients observe: the protocol (from Content-Type and
/// body), a body that does not decode, the operation, an empty body, the signature, and
/// only then the request's members (the model layer) and the action.
async fn kinesis_front(
    k: &kinesis::KinesisService,
    verifier: Option<&sigv4::Verifier>,
    remote: Option<&crate::remote::RemoteEngines>,
    request: sigv4::Request<'_>,
    service: &str,
    action: &str,
) -> Response {
    use kinesis::{Front, KinesisError};
    let content_type = request
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let body = request.body;
    let encoding = match Front::of(content_type, body) {
        Front::Api(e) => e,
        Front::Legacy => {
            return if serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.is_object())
            {
                kinesis::legacy_error(StatusCode::NOT_FOUND, "UnknownOperationException")
            } else {
                kinesis::legacy_error(StatusCode::BAD_REQUEST, "SerializationException")
            };
        }
        Front::Unrecognised => return unattributed(&request),
    };
    let decoded = if body.is_empty() {
        None
    } else {
        match kinesis::decode_body(body, encoding) {
            Ok(v) => Some(v),
            Err(e) => return e.respond(encoding),
        }
    };
    if service != "Kinesis_20131202" || !model::kinesis().has_operation(action) {
        return KinesisError::UnknownOperation.respond(encoding);
    }
    let Some(decoded) = decoded else {
        return KinesisError::MalformedBody.respond(encoding);
    };
    let api = sigv4::Api::Kinesis(encoding);
    let authenticated = match verifier {
        Some(v) => v.verify(api, &request),
        None => sigv4::check_shape(api, &request),
    };
    if let Err(e) = authenticated {
        tracing::debug!(action, error = %e, "kinesis request not authenticated");
        return e.respond(api);
    }
    if let Some(remote) = remote {
        if action == "SubscribeToShard" {
            return forward(remote.kinesis.api(), &request, Some(k.streams.draining())).await;
        }
        return forward(remote.kinesis.api(), &request, None).await;
    }
    kinesis::handle_decoded(k, action, decoded, encoding).await
}

/// A worker's Kinesis or DynamoDB request, answered by the shared engine: sent on as it
/// came (signed again with the worker's credentials), the answer passed back. With
/// `until`, the answer is an event stream (SubscribeToShard) relayed as it arrives, for
/// as long as a subscription lasts (five minutes) and a little more, or until the
/// worker stops, so a graceful shutdown does not wait it out.
async fn forward(
    api: &crate::remote::AwsJsonClient,
    request: &sigv4::Request<'_>,
    until: Option<tokio::sync::watch::Receiver<bool>>,
) -> Response {
    use futures_util::TryStreamExt;
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let (target, content_type) = (header("x-amz-target"), header("content-type"));
    let body = bytes::Bytes::copy_from_slice(request.body);
    let answer = match until {
        None => api
            .forward(target, content_type, body)
            .await
            .map(|a| (a.status, a.content_type, axum::body::Body::from(a.body))),
        Some(mut draining) => {
            let limit = std::time::Duration::from_secs(330);
            api.forward_stream(target, content_type, body, limit)
                .await
                .map(|(status, content_type, stream)| {
                    let stopping = async move {
                        let _ = draining.wait_for(|d| *d).await;
                    };
                    let stream = futures_util::StreamExt::take_until(
                        stream.map_err(std::io::Error::other),
                        Box::pin(stopping),
                    );
                    (status, content_type, axum::body::Body::from_stream(stream))
                })
        }
    };
    match answer {
        Ok((status, content_type, body)) => {
            let mut r = Response::new(body);
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            if let Some(ct) =
                content_type.and_then(|ct| axum::http::HeaderValue::from_str(&ct).ok())
            {
                r.headers_mut().insert(axum::http::header::CONTENT_TYPE, ct);
            }
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "the engine did not answer a forwarded request");
            aws_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                e.to_string(),
            )
        }
    }
}

/// A request on `/` that names no operation AWS can attribute (another method, a form
/// post): 403 in XML, as AWS's front end answers.
fn unattributed(request: &sigv4::Request<'_>) -> Response {
    if sigv4::is_signed(request.headers, request.uri) {
        kinesis::xml_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            Some("Unable to determine service/operation name to be authorized"),
        )
    } else {
        kinesis::xml_error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            Some("Missing Authentication Token"),
        )
    }
}

/// The kinds of control-plane resource a person looks for, in the order they are listed.
const LISTED_KINDS: &[&str] = &[
    crate::iam::ROLE_KIND,
    crate::iam::POLICY_KIND,
    crate::lambda::FUNCTION_KIND,
    crate::lambda::MAPPING_KIND,
    crate::gateway::API_KIND,
    crate::queue::QUEUE_KIND,
    crate::logs::GROUP_KIND,
    monitoring::ALARM_KIND,
];

pub use crate::inspection::ResourceView;

/// `GET /_spillway/resources`: what the control-plane APIs created (IAM roles and
/// policies, Lambda functions and API-created mappings, REST APIs, queues, log groups,
/// alarms), by kind and name.
async fn resource_list(resources: Arc<dyn crate::storage::ResourceStore>) -> Response {
    let listed = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for kind in LISTED_KINDS {
            for (name, _) in resources.list_resources(kind)? {
                out.push(ResourceView {
                    kind: (*kind).to_owned(),
                    name,
                });
            }
        }
        Ok::<_, crate::storage::StorageError>(out)
    })
    .await;
    match listed {
        Ok(Ok(list)) => axum::Json(list).into_response(),
        Ok(Err(e)) => aws_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            e.to_string(),
        ),
        Err(_) => edge::internal_error(edge::Protocol::Route),
    }
}

/// The whole HTTP surface of `spillway serve` behind one entry, [`Endpoint::handle`].
///
/// A plain value rather than axum middleware around a router: every request passes
/// through it, and each `from_fn` layer cost a boxed, cloned inner service per request.
/// The AWS endpoint `/` (every Kinesis and DynamoDB call) is answered without the
/// router; other paths go through it.
#[derive(Clone)]
pub struct Endpoint {
    parts: Arc<EndpointParts>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("aws", &self.parts.aws.is_some())
            .finish_non_exhaustive()
    }
}

struct EndpointParts {
    /// The control plane: requests signed for its services, and deployed stages.
    control: front::ControlPlane,
    /// Kinesis and DynamoDB on `/`, unless a configured route took that path.
    aws: Option<AwsEdge>,
    /// Everything else: ingest routes, `/_spillway/*`, `/metrics`.
    routes: Router,
}

impl Endpoint {
    /// Answers one request.
    pub async fn handle(&self, request: axum::extract::Request) -> Response {
        let parts = &*self.parts;
        front::route_by_service(&parts.control, request, |request| async move {
            match &parts.aws {
                Some(edge) if request.uri().path() == "/" => aws_endpoint(edge, request).await,
                _ => {
                    use tower::ServiceExt;
                    let routes = parts.routes.clone();
                    routes.oneshot(request).await.unwrap_or_else(|e| match e {})
                }
            }
        })
        .await
    }
}

/// `/`: the AWS JSON (and CBOR) data-plane APIs, after what the endpoint answers before
/// any API sees a request (`connection::admit`).
async fn aws_endpoint(edge: &AwsEdge, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let kinesis = connection::is_kinesis(&parts.headers);
    let admitted = connection::admit(&parts.method, &parts.headers, kinesis, body, &edge.region);
    let (body, json) = match admitted.await {
        connection::Outcome::Answer(r) => return connection::finish(&parts.headers, kinesis, r),
        connection::Outcome::Pass(b, json) => (b, json),
    };
    let request = sigv4::Request {
        method: parts.method.as_str(),
        uri: &parts.uri,
        headers: &parts.headers,
        body: &body,
    };
    let r = if parts.method == axum::http::Method::POST {
        aws_json(edge, request, json).await
    } else {
        unattributed(&request)
    };
    connection::finish(&parts.headers, kinesis, r)
}

/// Builds the whole HTTP surface of `spillway serve`.
pub fn endpoint(
    config: &Config,
    services: Services,
    resources: Arc<dyn crate::storage::ResourceStore>,
    lambda: Arc<crate::lambda::Lambda>,
) -> Endpoint {
    let mut app = inspect::router(services.clone());
    app = app.merge(routes::router(
        &config.routes,
        &config.security.api_keys,
        &services,
    ));
    let history = prometheus::History::start(&services);
    app = app.route(
        "/_spillway/history",
        axum::routing::get(move || {
            let history = std::sync::Arc::clone(&history);
            async move { axum::Json(history.to_json()) }
        }),
    );
    // Prometheus' conventional path, unless a configured route took it.
    if !config.routes.iter().any(|r| r.path == "/metrics") {
        let s = services.clone();
        app = app.route(
            "/metrics",
            axum::routing::get(move || prometheus::metrics(s.clone())),
        );
    }
    let aws = (!config.routes.iter().any(|r| r.path == "/")).then(|| AwsEdge {
        kinesis: kinesis::KinesisService {
            streams: Arc::clone(&services.streams),
            iterators: services.iterators.clone(),
        },
        services: services.clone(),
        verifier: sigv4::Verifier::from_config(&config.region, &config.security),
        region: config.region.clone(),
    });
    {
        let resources = Arc::clone(&resources);
        app = app.route(
            "/_spillway/resources",
            axum::routing::get(move || {
                let resources = Arc::clone(&resources);
                async move { resource_list(resources).await }
            }),
        );
    }
    let control = front::ControlPlane::new(config, services, resources, lambda);
    let routes = app.fallback(|| async {
        aws_error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            "No route matches this path",
        )
    });
    Endpoint {
        parts: Arc::new(EndpointParts {
            control,
            aws,
            routes,
        }),
    }
}
