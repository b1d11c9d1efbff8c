//! The direct edge: a route that invokes a function synchronously with API Gateway's
//! Lambda proxy event, as the reference's original design (API Gateway -> Lambda ->
//! DynamoDB) did. It exists to show what the buffered pattern avoids: when every slot of
//! the function's reserved concurrency is busy, the request is refused at once with
//! Lambda's 429 `TooManyRequestsException`, not queued.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ingest::read_body;
use super::{Services, aws_error};
use crate::function::{FunctionError, FunctionHandle, TableWrites};
use crate::storage::SyncMode;
use crate::table::Tables;

/// A `function = "..."` route.
#[derive(Debug)]
pub struct DirectRoute {
    function: Arc<FunctionHandle>,
    tables: Arc<Tables>,
}

impl DirectRoute {
    pub fn new(function: &str, services: &Services) -> Self {
        Self {
            function: services
                .functions
                .get(function)
                .expect("config validation checked the function"),
            tables: Arc::clone(&services.tables),
        }
    }

    pub async fn handle(&self, req: Request) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (parts, body) = req.into_parts();
        let body = match read_body(&parts.headers, body).await {
            Ok(b) => b,
            Err(e) => return e.into_response(),
        };
        let headers: serde_json::Map<String, serde_json::Value> = parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.into())))
            .collect();
        let event = serde_json::json!({
            "resource": parts.uri.path(),
            "path": parts.uri.path(),
            "httpMethod": parts.method.as_str(),
            "headers": headers,
            "queryStringParameters": null,
            "requestContext": {
                "requestId": request_id,
                "httpMethod": parts.method.as_str(),
                "path": parts.uri.path(),
            },
            "body": String::from_utf8_lossy(&body),
            "isBase64Encoded": false,
        });
        // The invocation runs in a task of its own: a client that hangs up must not
        // cancel a function halfway through its work (Lambda lets it finish).
        let (function, tables) = (Arc::clone(&self.function), Arc::clone(&self.tables));
        let payload = bytes::Bytes::from(event.to_string());
        let invocation = tokio::spawn(async move {
            let mut writes = TableWrites::default();
            let result = function.try_invoke(payload, &mut writes).await;
            let committed = match &result {
                Ok(_) => tables.commit(&writes.ops, SyncMode::SyncData),
                Err(_) => Ok(()),
            };
            (result, committed)
        });
        let mut resp = match invocation.await {
            Err(_) => internal_error(),
            Ok((Err(FunctionError::Throttled), _)) => too_many_requests(),
            Ok((Err(e), _)) => {
                tracing::debug!(error = %e, "direct invocation failed");
                internal_error()
            }
            Ok((Ok(_), Err(e))) => aws_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                e.to_string(),
            ),
            Ok((Ok(payload), Ok(()))) => proxy_response(&payload),
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut()
                .insert(crate::api::names::X_AMZN_REQUEST_ID, v);
        }
        resp
    }
}

/// Lambda's throttling answer.
fn too_many_requests() -> Response {
    let body = serde_json::json!({
        "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
        "Type": "User",
        "message": "Rate Exceeded.",
    });
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    r.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static("TooManyRequestsException"),
    );
    r
}

/// API Gateway's answer when the function failed or answered something malformed.
fn internal_error() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        axum::Json(serde_json::json!({"message": "Internal server error"})),
    )
        .into_response()
}

/// A proxy integration response (`{"statusCode", "headers", "body"}`) as HTTP.
fn proxy_response(payload: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return internal_error();
    };
    let status = v["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let body = v["body"].as_str().unwrap_or_default().to_owned();
    let mut r = (status, body).into_response();
    if let Some(h) = v["headers"].as_object() {
        for (k, val) in h {
            if let (Ok(name), Some(Ok(value))) = (
                axum::http::HeaderName::from_bytes(k.as_bytes()),
                val.as_str().map(HeaderValue::from_str),
            ) {
                r.headers_mut().insert(name, value);
            }
        }
    }
    r
}
