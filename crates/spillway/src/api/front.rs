//! One endpoint for every service: a request signed for a control-plane service (its
//! SigV4 credential scope names `sts`, `iam`, `lambda`, `apigateway`, `logs`, `sqs` or
//! `monitoring`) is answered by that service, whatever its path, so that one
//! `AWS_ENDPOINT_URL` serves a whole deploy tool. Everything else goes on to the routes
//! (`/` for Kinesis and DynamoDB, the ingest routes, `/_spillway/...`) as before.
//!
//! An operation spillway does not implement is answered 400 in the service's own error
//! shape, naming the operation: never a 5xx (SDKs retry those for minutes) and never a
//! route's 404 (which a client cannot attribute).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::Services;
use crate::storage::ResourceStore;

/// The control-plane services the shared endpoint answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlService {
    Sts,
    Iam,
    Lambda,
    ApiGateway,
    Logs,
    Sqs,
    Monitoring,
}

impl ControlService {
    /// Every service, with the name its SigV4 credential scope carries.
    const SCOPES: [(Self, &'static str); 7] = [
        (Self::Sts, "sts"),
        (Self::Iam, "iam"),
        (Self::Lambda, "lambda"),
        (Self::ApiGateway, "apigateway"),
        (Self::Logs, "logs"),
        (Self::Sqs, "sqs"),
        (Self::Monitoring, "monitoring"),
    ];

    /// The service of a SigV4 credential scope, when it is one of ours.
    pub fn from_scope(service: &str) -> Option<Self> {
        Self::SCOPES
            .iter()
            .find(|(_, scope)| *scope == service)
            .map(|(s, _)| *s)
    }

    /// The name this service's credential scope carries.
    pub fn scope(self) -> &'static str {
        Self::SCOPES
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("", |(_, scope)| scope)
    }

    /// The name clients know the service by, for messages.
    pub fn title(self) -> &'static str {
        match self {
            Self::Sts => "STS",
            Self::Iam => "IAM",
            Self::Lambda => "Lambda",
            Self::ApiGateway => "API Gateway",
            Self::Logs => "CloudWatch Logs",
            Self::Sqs => "SQS",
            Self::Monitoring => "CloudWatch",
        }
    }

    /// Largest request body taken: Lambda's direct zip upload (50 MB, in base64 inside
    /// JSON) or the AWS JSON APIs' 16 MB.
    fn max_body(self) -> usize {
        match self {
            Self::Lambda => 70 * 1024 * 1024,
            _ => super::MAX_AWS_REQUEST_BYTES,
        }
    }
}

/// A control-plane request, read whole.
#[derive(Debug)]
pub struct ControlRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ControlRequest {
    /// `https://HOST` or `http://HOST` as the client reached this server (the HTTPS
    /// listener sets `X-Forwarded-Proto: https`, as a TLS-terminating proxy would), for
    /// URLs handed back to it (a queue's URL, a function's code location).
    pub fn origin(&self) -> String {
        let host = self
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| h.len() <= 255)
            .unwrap_or("localhost:4566");
        let secure = self
            .headers
            .get("x-forwarded-proto")
            .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
        format!("{}://{host}", if secure { "https" } else { "http" })
    }

    /// The `Action` of an awsQuery request (form-encoded body, or the query string).
    pub fn query_action(&self) -> Option<String> {
        form_value(&self.body, "Action")
            .or_else(|| form_value(self.uri.query().unwrap_or_default().as_bytes(), "Action"))
    }

    /// The operation of an AWS JSON request (`X-Amz-Target: Prefix.Operation`).
    pub fn json_target(&self) -> Option<&str> {
        let target = self
            .headers
            .get(&super::names::X_AMZ_TARGET)?
            .to_str()
            .ok()?;
        Some(target.rsplit_once('.').map_or(target, |(_, op)| op))
    }

    /// The signature verified; the refusal, in the service's shape, when it fails.
    fn authenticate(&self, cp: &ControlPlane, service: &'static str) -> Option<Response> {
        let verifier = cp.verifier.as_ref()?;
        let request = super::sigv4::Request {
            method: self.method.as_str(),
            uri: &self.uri,
            headers: &self.headers,
            body: &self.body,
        };
        verifier
            .verify(super::sigv4::Api::Control(service), &request)
            .err()
            .map(|e| e.respond(super::sigv4::Api::Control(service)))
    }
}

/// One value of an `application/x-www-form-urlencoded` text, decoded.
pub fn form_value(form: &[u8], name: &str) -> Option<String> {
    form_pairs(form)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Every pair of an `application/x-www-form-urlencoded` text, decoded, in order.
pub fn form_pairs(form: &[u8]) -> Vec<(String, String)> {
    form.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = it.next().unwrap_or_default();
            let v = it.next().unwrap_or_default();
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// One form-encoded text: `+` is a space, then `%XX` escapes are decoded (invalid
/// ones kept as they are).
fn form_decode(text: &[u8]) -> String {
    let spaced: Vec<u8> = text
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced)
}

/// `%XX` escapes decoded (invalid ones kept as they are), as in a URL path, where `+`
/// stands for itself.
pub fn percent_decode(text: &[u8]) -> String {
    String::from_utf8_lossy(&super::sigv4::percent_decode(text)).into_owned()
}

/// What the control-plane services share: the domain, where their resources are kept,
/// and who this account is.
pub struct ControlPlane {
    pub services: Services,
    pub resources: Arc<dyn ResourceStore>,
    pub lambda: Arc<crate::lambda::Lambda>,
    pub region: String,
    pub account_id: String,
    verifier: Option<super::sigv4::Verifier>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    pub fn new(
        config: &crate::config::Config,
        services: Services,
        resources: Arc<dyn ResourceStore>,
        lambda: Arc<crate::lambda::Lambda>,
    ) -> Self {
        Self {
            services,
            resources,
            lambda,
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            verifier: super::sigv4::Verifier::from_config(&config.region, &config.security),
        }
    }
}

/// The service a request is signed for, from its `Authorization` header or its
/// presigned query (`X-Amz-Credential`).
fn signed_service(headers: &HeaderMap, uri: &Uri) -> Option<ControlService> {
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return super::connection::signed_service(auth).and_then(ControlService::from_scope);
    }
    let query = uri.query()?;
    let credential = form_value(query.as_bytes(), "X-Amz-Credential")?;
    credential
        .split('/')
        .nth(3)
        .and_then(ControlService::from_scope)
}

/// In front of every route: control-plane requests and deployed stages are answered
/// here, everything else by `next`.
pub async fn route_by_service<F, Fut>(cp: &ControlPlane, request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let Some(service) = signed_service(request.headers(), request.uri()) else {
        if let Some(target) = super::apigateway::stage_target(request.headers(), request.uri()) {
            return super::apigateway::execute(cp, target, request).await;
        }
        return next(request).await;
    };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, service.max_body()).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                service,
                &parts.headers,
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                "Request must be smaller than the service's limit",
            );
        }
    };
    let request = ControlRequest {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    };
    if let Some(refusal) = request.authenticate(cp, service.scope()) {
        return refusal;
    }
    dispatch(cp, service, request).await
}

/// Each service's handler; services not built yet answer every operation as
/// unimplemented.
async fn dispatch(cp: &ControlPlane, service: ControlService, request: ControlRequest) -> Response {
    match service {
        ControlService::Sts | ControlService::Iam => super::iam::handle(cp, service, request).await,
        ControlService::Lambda => super::lambda::handle(cp, request).await,
        ControlService::ApiGateway => super::apigateway::handle(cp, request).await,
        ControlService::Sqs => super::sqs::handle(cp, request).await,
        ControlService::Logs => super::logs::handle(cp, request).await,
        ControlService::Monitoring => super::monitoring::handle(cp, request).await,
    }
}

/// The operation a request names, as well as its protocol tells it: the awsQuery
/// `Action`, the JSON target, or for REST protocols the method and path.
pub fn operation_of(request: &ControlRequest) -> String {
    if let Some(op) = request.json_target() {
        return op.to_string();
    }
    if let Some(op) = request.query_action() {
        return op;
    }
    format!("{} {}", request.method, request.uri.path())
}

/// 400 naming an operation spillway does not implement, in the service's error shape.
pub fn unimplemented(service: ControlService, request: &ControlRequest) -> Response {
    let operation = operation_of(request);
    tracing::warn!(service = service.title(), %operation, "unimplemented operation requested");
    let message = format!(
        "spillway does not implement the {} operation {operation}",
        service.title()
    );
    let code = if uses_query_protocol(service, &request.headers) {
        "InvalidAction"
    } else {
        "UnknownOperationException"
    };
    error(
        service,
        &request.headers,
        StatusCode::BAD_REQUEST,
        code,
        &message,
    )
}

/// Whether the request speaks awsQuery (form in, XML out) rather than JSON.
fn uses_query_protocol(service: ControlService, headers: &HeaderMap) -> bool {
    match service {
        ControlService::Sts | ControlService::Iam => true,
        ControlService::Sqs | ControlService::Monitoring => {
            !headers.contains_key(&super::names::X_AMZ_TARGET)
                && !headers.contains_key("smithy-protocol")
        }
        _ => false,
    }
}

/// An error in the service's protocol: awsQuery's `ErrorResponse` XML, restJson1's
/// `x-amzn-ErrorType` with a JSON message, or AWS JSON's `__type`.
pub fn error(
    service: ControlService,
    headers: &HeaderMap,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut r = if uses_query_protocol(service, headers) {
        let fault = if status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        let body = format!(
            "<ErrorResponse xmlns=\"{}\">\n  <Error>\n    <Type>{fault}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
            query_namespace(service),
            xml_escape(code),
            xml_escape(message)
        );
        let mut r = (status, body).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
        r
    } else {
        let json_protocol = headers.contains_key(&super::names::X_AMZ_TARGET);
        let body = if json_protocol {
            serde_json::json!({ "__type": code, "message": message })
        } else {
            serde_json::json!({ "Type": "User", "message": message })
        };
        let mut r = (status, body.to_string()).into_response();
        let content_type = if json_protocol {
            "application/x-amz-json-1.1"
        } else {
            "application/json"
        };
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(v) = HeaderValue::from_str(code) {
            r.headers_mut().insert("x-amzn-errortype", v);
        }
        r
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert(super::names::X_AMZN_REQUEST_ID, v);
    }
    r
}

/// The XML namespace of an awsQuery service's documents.
pub fn query_namespace(service: ControlService) -> &'static str {
    match service {
        ControlService::Sts => "https://sts.amazonaws.com/doc/2011-06-15/",
        ControlService::Iam => "https://iam.amazonaws.com/doc/2010-05-08/",
        ControlService::Sqs => "http://queue.amazonaws.com/doc/2012-11-05/",
        ControlService::Monitoring => "http://monitoring.amazonaws.com/doc/2010-08-01/",
        _ => "",
    }
}

/// Text made safe for XML element content and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_pluses_and_escapes() {
        let pairs = form_pairs(b"Action=GetRole&RoleName=a%2Fb+c&Bad=%zz&Empty=");
        assert_eq!(
            pairs,
            [
                ("Action".to_string(), "GetRole".to_string()),
                ("RoleName".to_string(), "a/b c".to_string()),
                ("Bad".to_string(), "%zz".to_string()),
                ("Empty".to_string(), String::new()),
            ]
        );
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"%4"), "%4");
        // In a path, `+` is itself.
        assert_eq!(percent_decode(b"a+b%20c"), "a+b c");
    }

    #[test]
    fn the_scope_names_the_service() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0",
            ),
        );
        let uri: Uri = "/2015-03-31/functions".parse().expect("uri");
        assert_eq!(signed_service(&h, &uri), Some(ControlService::Lambda));
        let presigned: Uri = "/?Action=GetCallerIdentity&X-Amz-Credential=AKID%2F20261201%2Fus-east-1%2Fsts%2Faws4_request"
            .parse()
            .expect("uri");
        assert_eq!(
            signed_service(&HeaderMap::new(), &presigned),
            Some(ControlService::Sts)
        );
        // Kinesis and DynamoDB stay with their routes.
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0",
            ),
        );
        assert_eq!(signed_service(&h, &uri), None);
    }

    #[test]
    fn unimplemented_operations_are_named_in_the_services_shape() {
        let request = |uri: &str, target: Option<&'static str>, body: &'static [u8]| {
            let mut headers = HeaderMap::new();
            if let Some(t) = target {
                headers.insert(
                    &super::super::names::X_AMZ_TARGET,
                    HeaderValue::from_static(t),
                );
            }
            ControlRequest {
                method: Method::POST,
                uri: uri.parse().expect("uri"),
                headers,
                body: Bytes::from_static(body),
            }
        };
        let q = request("/", None, b"Action=CreateUser&Version=2010-05-08");
        assert_eq!(operation_of(&q), "CreateUser");
        let r = unimplemented(ControlService::Iam, &q);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/xml");

        let j = request("/", Some("Logs_20140328.PutQueryDefinition"), b"{}");
        assert_eq!(operation_of(&j), "PutQueryDefinition");
        let r = unimplemented(ControlService::Logs, &j);
        assert_eq!(r.headers()["x-amzn-errortype"], "UnknownOperationException");

        let rest = request("/2015-03-31/layers", None, b"");
        assert_eq!(operation_of(&rest), "POST /2015-03-31/layers");
    }
}
