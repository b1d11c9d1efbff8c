//! What the AWS endpoint at `/` answers before any action runs: CORS (a browser's
//! preflight, and `Access-Control-Allow-Origin` on every answer to a request with an
//! `Origin`), the health line of `GET /`, `404 <UnknownOperationException/>` for other
//! methods and for bodies of a content type the JSON protocol does not speak, 413 for
//! bodies over 16 MB, and DynamoDB's answers to bodies that are not JSON and to targets
//! it does not know.
//!
//! Kinesis and DynamoDB share the endpoint. Where their answers differ the request
//! decides: a `Kinesis_20131202.*` target, a CBOR body (which only Kinesis speaks) or a
//! signature scoped to any service but `dynamodb` (a signed GET, PUT or DELETE: Kinesis
//! answers 403) is left to the Kinesis edge; everything else, unsigned requests
//! included, is answered as DynamoDB answers.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::MAX_AWS_REQUEST_BYTES;

/// The media type of a request, without parameters: `application/json; charset=x` is
/// `application/json`.
fn media_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
}

fn target(headers: &HeaderMap) -> &str {
    headers
        .get(&crate::api::names::X_AMZ_TARGET)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Whether the request speaks Kinesis' protocol (its own rules apply).
pub fn is_kinesis(headers: &HeaderMap) -> bool {
    target(headers).starts_with("Kinesis_")
        || media_type(headers) == "application/x-amz-cbor-1.1"
        || headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| signed_service(a) != Some("dynamodb"))
}

/// The service of a SigV4 header's credential scope (`Credential=AKID/DATE/REGION/
/// SERVICE/aws4_request`), when it has one.
pub fn signed_service(authorization: &str) -> Option<&str> {
    const FIELD: &[u8] = b"Credential=";
    // Every request passes here, often twice: a byte scan, no str patterns. SDKs put
    // the credential right after the algorithm, so look there first; anything else is
    // searched for. Every cut is at an ASCII byte, so at a character boundary.
    let b = authorization.as_bytes();
    let after_algorithm = b.iter().position(|&c| c == b' ').map(|space| {
        space
            + b[space..]
                .iter()
                .take_while(|c| c.is_ascii_whitespace())
                .count()
    });
    let start = match after_algorithm.filter(|&at| b[at..].starts_with(FIELD)) {
        Some(at) => at + FIELD.len(),
        None => b.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len(),
    };
    let scope = &b[start..];
    let scope = &scope[..scope
        .iter()
        .position(|&c| c == b',' || c == b' ')
        .unwrap_or(scope.len())];
    // AKID/DATE/REGION/SERVICE/aws4_request: the fourth part.
    let mut slashes = scope
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'/')
        .map(|(i, _)| i);
    let from = slashes.nth(2)? + 1;
    let to = slashes.next().unwrap_or(scope.len());
    authorization.get(start + from..start + to)
}

use super::dynamodb::request_id;

/// A plain answer with DynamoDB's headers: the body's CRC32 and a request id.
fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut r = (status, text).into_response();
    let h = r.headers_mut();
    h.insert(
        crate::api::names::X_AMZ_CRC32,
        HeaderValue::from(crc32fast::hash(text.as_bytes())),
    );
    h.insert(crate::api::names::X_AMZN_REQUEST_ID, request_id());
    h.remove(header::CONTENT_TYPE);
    r
}

/// What DynamoDB answers to a request that is no JSON protocol request at all.
fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "<UnknownOperationException/>\n")
}

/// The content type DynamoDB answers with: the request's JSON type, `application/json`
/// unless it asked for `application/x-amz-json-1.0`.
fn answer_type(headers: &HeaderMap) -> &'static str {
    if media_type(headers) == "application/x-amz-json-1.0" {
        "application/x-amz-json-1.0"
    } else {
        "application/json"
    }
}

/// A DynamoDB error body holding only its type.
fn bare_error(headers: &HeaderMap, kind: &str) -> Response {
    let text = serde_json::json!({ "__type": kind }).to_string();
    let crc = crc32fast::hash(text.as_bytes());
    let mut r = (StatusCode::BAD_REQUEST, text).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(answer_type(headers)),
    );
    h.insert(crate::api::names::X_AMZ_CRC32, HeaderValue::from(crc));
    h.insert(crate::api::names::X_AMZN_REQUEST_ID, request_id());
    r
}

/// Why the root answers before any API sees the request.
#[derive(Debug)]
pub enum Outcome {
    /// Answered here.
    Answer(Response),
    /// For the APIs, with the whole body, and for DynamoDB its JSON, already parsed
    /// here (a body is parsed once per request).
    Pass(bytes::Bytes, Option<serde_json::Value>),
}

/// The checks of the root, in DynamoDB's order. `kinesis`: [`is_kinesis`] of these
/// headers (asked once per request); `region` names the health line.
pub async fn admit(
    method: &Method,
    headers: &HeaderMap,
    kinesis: bool,
    body: Body,
    region: &str,
) -> Outcome {
    if method == Method::OPTIONS && headers.contains_key(header::ORIGIN) {
        return Outcome::Answer(preflight(headers, kinesis));
    }
    let body = match axum::body::to_bytes(body, MAX_AWS_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            // Streamed (chunked), as AWS answers it, with nothing in it.
            let empty = futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
            let mut r = Response::new(Body::from_stream(empty));
            *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            r.headers_mut()
                .insert(crate::api::names::X_AMZN_REQUEST_ID, request_id());
            return Outcome::Answer(r);
        }
    };
    // Kinesis' front door has its own answers (api::kinesis), other methods included.
    if kinesis {
        return Outcome::Pass(body, None);
    }
    if method == Method::GET {
        let line = health_line(region);
        let mut r = (StatusCode::OK, line.clone()).into_response();
        let h = r.headers_mut();
        h.remove(header::CONTENT_TYPE);
        h.insert(
            crate::api::names::X_AMZ_CRC32,
            HeaderValue::from(crc32fast::hash(line.as_bytes())),
        );
        h.insert(crate::api::names::X_AMZN_REQUEST_ID, request_id());
        return Outcome::Answer(r);
    }
    if method != Method::POST {
        return Outcome::Answer(not_found());
    }
    if !body.is_empty()
        && !matches!(
            media_type(headers),
            "application/json" | "application/x-amz-json-1.0"
        )
    {
        return Outcome::Answer(not_found());
    }
    let json = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) => Some(v),
            Err(_) => {
                return Outcome::Answer(bare_error(
                    headers,
                    "com.amazon.coral.service#SerializationException",
                ));
            }
        }
    };
    let known = target(headers)
        .strip_prefix("DynamoDB_20120810.")
        .is_some_and(|op| crate::api::model::dynamodb().has_operation(op));
    if !known {
        return Outcome::Answer(bare_error(
            headers,
            "com.amazon.coral.service#UnknownOperationException",
        ));
    }
    Outcome::Pass(body, json)
}

/// `GET /`: DynamoDB's health line (its trailing space included).
fn health_line(region: &str) -> String {
    format!("healthy: dynamodb.{region}.amazonaws.com ")
}

/// A CORS preflight: any origin, the requested headers and method, cached two days.
fn preflight(headers: &HeaderMap, kinesis: bool) -> Response {
    let mut r = StatusCode::OK.into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if let Some(v) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
    }
    if let Some(v) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("172800"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    // Kinesis' request ids are UUIDs, DynamoDB's 52 characters.
    let id = if kinesis {
        super::uuid_request_id()
    } else {
        request_id()
    };
    h.insert(crate::api::names::X_AMZN_REQUEST_ID, id);
    r
}

/// What every answer of the root gets on its way out: CORS for a request with an
/// `Origin`, and DynamoDB's answers in the JSON type the request used.
pub fn finish(headers: &HeaderMap, kinesis: bool, mut r: Response) -> Response {
    if headers.contains_key(header::ORIGIN) {
        r.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    let dynamo_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/x-amz-json-1.0");
    if dynamo_json && !kinesis {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(answer_type(headers)),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn media_types_lose_their_parameters() {
        let h = headers(&[("content-type", "  application/json  ;   charset=x")]);
        assert_eq!(media_type(&h), "application/json");
        assert_eq!(answer_type(&h), "application/json");
        let h = headers(&[("content-type", "application/x-amz-json-1.0;x")]);
        assert_eq!(answer_type(&h), "application/x-amz-json-1.0");
    }

    #[test]
    fn kinesis_requests_are_told_by_target_or_type() {
        assert!(is_kinesis(&headers(&[(
            "x-amz-target",
            "Kinesis_20131202.ListStreams"
        )])));
        assert!(is_kinesis(&headers(&[(
            "content-type",
            "application/x-amz-cbor-1.1"
        )])));
        assert!(!is_kinesis(&headers(&[(
            "content-type",
            "application/x-amz-json-1.1"
        )])));
        assert!(!is_kinesis(&headers(&[(
            "x-amz-target",
            "DynamoDB_20120810.ListTables"
        )])));
        assert!(!is_kinesis(&headers(&[])));
        // By the signature's scope: DynamoDB's stays DynamoDB's, any other is Kinesis'.
        let signed = |service: &'static str| {
            let auth: &'static str = Box::leak(
                format!("AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00")
                    .into_boxed_str(),
            );
            is_kinesis(&headers(&[("authorization", auth)]))
        };
        assert!(!signed("dynamodb"));
        assert!(signed("kinesis"));
        assert!(signed(""));
        // The credential elsewhere than right after the algorithm is found too.
        assert_eq!(
            signed_service(
                "AWS4-HMAC-SHA256 SignedHeaders=host, Credential=A/D/R/dynamodb/aws4_request"
            ),
            Some("dynamodb")
        );
        assert_eq!(signed_service("AWS4-HMAC-SHA256"), None);
        // The scope ends at a comma or space; too few parts name no service.
        assert_eq!(
            signed_service("AWS4-HMAC-SHA256   Credential=A/D/R/sqs,SignedHeaders=host"),
            Some("sqs")
        );
        assert_eq!(signed_service("AWS4-HMAC-SHA256 Credential=A/D/R"), None);
        assert_eq!(
            signed_service("AWS4-HMAC-SHA256 Credential=A/D/R/, x"),
            Some("")
        );
        assert_eq!(signed_service("Credential=A/D/R/é/x"), Some("é"));
    }

    #[test]
    fn a_preflight_echoes_what_was_asked() {
        let r = preflight(
            &headers(&[
                ("origin", "http://app"),
                ("access-control-request-headers", "a, b"),
                ("access-control-request-method", "POST"),
            ]),
            false,
        );
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(h["access-control-allow-headers"], "a, b");
        assert_eq!(h["access-control-allow-methods"], "POST");
        assert_eq!(h["access-control-max-age"], "172800");
    }
}
