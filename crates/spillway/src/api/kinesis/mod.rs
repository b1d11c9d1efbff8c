//! The Kinesis edge: AWS JSON 1.1 (`X-Amz-Target: Kinesis_20131202.<Action>`) on `POST /`,
//! so that boto3, the AWS CLI and the SDKs work against spillway unchanged.
//!
//! Requests are decoded into `serde_json::Value` (CBOR into the same form), checked
//! against Kinesis' service model by the shared request layer ([`crate::api::model`]:
//! types, then every constraint, with AWS's messages), and only then handed to the
//! action; every error leaves through [`KinesisError`]'s one mapping, as
//! `{"__type": ..., "message": ...}`.

mod actions;
pub mod cbor;
pub mod iterator;
mod subscribe;

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use self::iterator::IteratorCodec;
use crate::stream::{StreamError, Streams};

/// What the Kinesis edge needs.
#[derive(Debug, Clone)]
pub struct KinesisService {
    pub streams: Arc<Streams>,
    pub iterators: IteratorCodec,
}

/// Every error the Kinesis API answers, mapped to the wire once, here.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    ExpiredIterator(String),
    #[error("{0}")]
    ProvisionedThroughputExceeded(String),
    /// Messages of each failed constraint.
    #[error("{}", crate::api::model::render(.0))]
    Validation(Vec<String>),
    /// A member of the wrong type; AWS names this message's key `Message`.
    #[error("{0}")]
    Serialization(String),
    /// A body that is not JSON (or CBOR) at all: AWS answers the type alone.
    #[error("")]
    MalformedBody,
    #[error("")]
    UnknownOperation,
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    #[error("{0}")]
    InternalFailure(String),
    /// Storage cannot take writes now (a full disk, the append queue full): 503 with
    /// Retry-After, which SDKs retry.
    #[error("{0}")]
    ServiceUnavailable(String),
}

impl KinesisError {
    fn type_name(&self) -> &'static str {
        match self {
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::ResourceInUse(_) => "ResourceInUseException",
            Self::InvalidArgument(_) => "InvalidArgumentException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::ExpiredIterator(_) => "ExpiredIteratorException",
            Self::ProvisionedThroughputExceeded(_) => "ProvisionedThroughputExceededException",
            Self::Validation(_) => "ValidationException",
            Self::Serialization(_) | Self::MalformedBody => "SerializationException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::InternalFailure(_) => "InternalFailure",
            Self::ServiceUnavailable(_) => "ServiceUnavailable",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::InternalFailure(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<StreamError> for KinesisError {
    fn from(e: StreamError) -> Self {
        let message = e.to_string();
        match e {
            StreamError::StreamNotFound { .. }
            | StreamError::ShardNotFound { .. }
            | StreamError::ResourceNotFound(_) => Self::ResourceNotFound(message),
            StreamError::InvalidArgument(_) => Self::InvalidArgument(message),
            StreamError::RecordTooLarge { .. } => Self::Validation(vec![message]),
            StreamError::ThroughputExceeded { .. } => Self::ProvisionedThroughputExceeded(message),
            StreamError::ResourceInUse(_) => Self::ResourceInUse(message),
            StreamError::LimitExceeded(_) => Self::LimitExceeded(message),
            StreamError::Overloaded
            | StreamError::ShuttingDown
            | StreamError::Storage(
                crate::storage::StorageError::Full(_) | crate::storage::StorageError::Io(_),
            ) => Self::ServiceUnavailable(message),
            StreamError::Storage(_) => Self::InternalFailure(message),
            StreamError::Config(_) => Self::InternalFailure(message),
        }
    }
}

impl From<crate::api::model::RequestError> for KinesisError {
    fn from(e: crate::api::model::RequestError) -> Self {
        use crate::api::model::RequestError;
        match e {
            RequestError::UnknownOperation => Self::UnknownOperation,
            RequestError::Serialization(m) => Self::Serialization(m),
            RequestError::Validation(v) => Self::Validation(v),
        }
    }
}

impl KinesisError {
    /// The error's body: `__type`, and its message under the key AWS uses.
    fn body(&self) -> Value {
        let mut body = serde_json::Map::new();
        body.insert("__type".into(), Value::String(self.type_name().into()));
        match self {
            Self::UnknownOperation | Self::MalformedBody => {}
            Self::Serialization(m) => {
                body.insert("Message".into(), Value::String(m.clone()));
            }
            _ => {
                body.insert("message".into(), Value::String(self.to_string()));
            }
        }
        Value::Object(body)
    }
}

impl IntoResponse for KinesisError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = status == StatusCode::SERVICE_UNAVAILABLE;
        let mut r = json_response(status, &self.body());
        if retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

/// Adds the identifiers Kinesis puts on every answer: `x-amzn-RequestId` (a UUID) and
/// `x-amz-id-2` (64 opaque bytes, base64), which clients log and some tools expect.
pub fn request_ids(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        crate::api::names::X_AMZN_REQUEST_ID,
        crate::api::uuid_request_id(),
    );
    let mut raw = [0u8; 64];
    for chunk in raw.chunks_mut(16) {
        chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    let mut id2 = [0u8; 88];
    if let Ok(n) =
        base64::Engine::encode_slice(&base64::engine::general_purpose::STANDARD, raw, &mut id2)
        && let Ok(v) = HeaderValue::from_bytes(&id2[..n])
    {
        headers.insert(crate::api::names::X_AMZ_ID_2, v);
    }
}

/// An AWS JSON 1.1 response.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    request_ids(r.headers_mut());
    r
}

/// The two encodings of the Kinesis API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-amz-json-1.1`.
    Json,
    /// `application/x-amz-cbor-1.1`.
    Cbor,
}

impl Encoding {
    /// The encoding a request's Content-Type asks for: JSON 1.1 only when it says so
    /// (parameters and surrounding spaces aside); anything else is answered in CBOR, as
    /// Kinesis answers a request without a Content-Type.
    pub fn of(content_type: &str) -> Self {
        if media_type(content_type) == "application/x-amz-json-1.1" {
            Self::Json
        } else {
            Self::Cbor
        }
    }

    fn respond_empty(self) -> Response {
        let mut r = StatusCode::OK.into_response();
        let ct = match self {
            Self::Json => "application/x-amz-json-1.1",
            Self::Cbor => "application/x-amz-cbor-1.1",
        };
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        request_ids(r.headers_mut());
        r
    }

    fn respond(self, status: StatusCode, body: &Value) -> Response {
        match self {
            Self::Json => json_response(status, body),
            Self::Cbor => {
                let mut r = (status, cbor::encode_response(body)).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-amz-cbor-1.1"),
                );
                request_ids(r.headers_mut());
                r
            }
        }
    }
}

impl KinesisError {
    /// The error in the given encoding.
    pub fn respond(self, encoding: Encoding) -> Response {
        match encoding {
            Encoding::Json => self.into_response(),
            Encoding::Cbor => {
                let status = self.status();
                encoding.respond(status, &self.body())
            }
        }
    }
}

/// A Content-Type's media type: before any `;`, without surrounding spaces.
pub fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// The protocol a request to `POST /` speaks, as Kinesis tells it from the Content-Type
/// and the body, before anything else is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// JSON 1.1 or CBOR 1.1 (CBOR also when there is no Content-Type and no body).
    Api(Encoding),
    /// `application/json` with a body: the old JSON 1.0 envelope (`Output`, `Version`).
    Legacy,
    /// Anything else with a body (a form post, say): Kinesis cannot tell the operation
    /// and answers in XML.
    Unrecognised,
}

impl Front {
    pub fn of(content_type: Option<&str>, body: &[u8]) -> Self {
        let media = content_type.map(media_type).unwrap_or_default();
        match media {
            "application/x-amz-json-1.1" => Self::Api(Encoding::Json),
            "application/x-amz-cbor-1.1" => Self::Api(Encoding::Cbor),
            "application/json" if !body.is_empty() => Self::Legacy,
            _ if body.is_empty() || content_type.is_none() => Self::Api(Encoding::Cbor),
            _ => Self::Unrecognised,
        }
    }
}

/// An XML error (`<Type>\n  <Message>..</Message>\n</Type>`), as Kinesis answers requests
/// it cannot attribute to an operation: no Content-Type.
pub fn xml_error(status: StatusCode, kind: &str, message: Option<&str>) -> Response {
    let body = match message {
        Some(m) => format!("<{kind}>\n  <Message>{m}</Message>\n</{kind}>\n"),
        None => format!("<{kind}/>\n"),
    };
    let mut r = (status, body).into_response();
    r.headers_mut().remove(header::CONTENT_TYPE);
    request_ids(r.headers_mut());
    r
}

/// The JSON 1.0 envelope of `application/json` requests.
pub fn legacy_error(status: StatusCode, kind: &str) -> Response {
    let body = serde_json::json!({"Output": {"__type": format!("com.amazon.coral.service#{kind}")}, "Version": "1.0"});
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    request_ids(r.headers_mut());
    r
}

/// Decodes a request body in its encoding: an object, or `MalformedBody`.
pub fn decode_body(body: &[u8], encoding: Encoding) -> Result<Value, KinesisError> {
    match encoding {
        _ if body.is_empty() => Err(KinesisError::MalformedBody),
        Encoding::Cbor => match cbor::decode_request(body)? {
            v @ Value::Object(_) => Ok(v),
            _ => Err(KinesisError::MalformedBody),
        },
        Encoding::Json => match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(KinesisError::MalformedBody),
        },
    }
}

/// Handles one JSON 1.1 Kinesis request: `action` from the target header, `body` as sent.
pub async fn handle(service: &KinesisService, action: &str, body: &[u8]) -> Response {
    handle_encoded(service, action, body, Encoding::Json).await
}

/// Handles one Kinesis request in either encoding.
pub async fn handle_encoded(
    service: &KinesisService,
    action: &str,
    body: &[u8],
    encoding: Encoding,
) -> Response {
    let request = match decode_body(body, encoding) {
        Ok(v) => v,
        Err(e) => return e.respond(encoding),
    };
    handle_decoded(service, action, request, encoding).await
}

/// Handles one Kinesis request already decoded: the model check, then the action.
pub async fn handle_decoded(
    service: &KinesisService,
    action: &str,
    request: Value,
    encoding: Encoding,
) -> Response {
    if let Err(e) = crate::api::model::kinesis().check(action, &request) {
        tracing::debug!(action, error = %e, "kinesis request refused by the model");
        return KinesisError::from(e).respond(encoding);
    }
    if action == "SubscribeToShard" {
        return match subscribe::subscribe(service, &request, encoding).await {
            Ok(r) => r,
            Err(e) => e.respond(encoding),
        };
    }
    match actions::dispatch(service, action, &request).await {
        // Operations without output (CreateStream, PutRecord's siblings that return
        // nothing) answer an empty body, as Kinesis does.
        Ok(Value::Object(m)) if m.is_empty() => encoding.respond_empty(),
        Ok(v) => encoding.respond(StatusCode::OK, &v),
        Err(e) => {
            tracing::debug!(action, error = %e, "kinesis request refused");
            e.respond(encoding)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::storage::fjall_engine::FjallStore;
    use proptest::prelude::*;

    fn service(dir: &std::path::Path) -> KinesisService {
        let store = Arc::new(FjallStore::open(dir).unwrap());
        KinesisService {
            streams: Arc::new(Streams::open(store, &Config::default().streams_settings()).unwrap()),
            iterators: IteratorCodec::new([1u8; 32]),
        }
    }

    const ACTIONS: [&str; 17] = [
        "CreateStream",
        "DeleteStream",
        "DescribeStream",
        "DescribeStreamSummary",
        "ListStreams",
        "ListShards",
        "PutRecord",
        "PutRecords",
        "GetShardIterator",
        "GetRecords",
        "AddTagsToStream",
        "RemoveTagsFromStream",
        "ListTagsForStream",
        "IncreaseStreamRetentionPeriod",
        "DecreaseStreamRetentionPeriod",
        "DescribeLimits",
        "Nope",
    ];

    /// Any JSON value, a few levels deep, with the field names the actions read.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
                .map(Value::Number)),
            "\\PC{0,40}".prop_map(Value::String),
            prop_oneof![
                Just("example-stream"),
                Just("shardId-000000000000"),
                Just("TRIM_HORIZON"),
                Just("AAAA")
            ]
            .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("StreamName".to_owned()),
                        Just("StreamARN".to_owned()),
                        Just("ShardCount".to_owned()),
                        Just("ShardId".to_owned()),
                        Just("ShardIteratorType".to_owned()),
                        Just("ShardIterator".to_owned()),
                        Just("Data".to_owned()),
                        Just("PartitionKey".to_owned()),
                        Just("Records".to_owned()),
                        Just("Limit".to_owned()),
                        Just("Tags".to_owned()),
                        Just("TagKeys".to_owned()),
                        Just("NextToken".to_owned()),
                        Just("ShardFilter".to_owned()),
                        Just("Timestamp".to_owned()),
                        Just("RetentionPeriodHours".to_owned()),
                        Just("StartingSequenceNumber".to_owned()),
                        "\\PC{0,10}",
                    ],
                    inner,
                    0..6,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn well_formed(resp: Response) -> Result<(), TestCaseError> {
        let status = resp.status();
        prop_assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "status {status}"
        );
        let body = futures_util::FutureExt::now_or_never(axum::body::to_bytes(
            resp.into_body(),
            usize::MAX,
        ))
        .expect("body is ready")
        .expect("body reads");
        // A void operation that succeeded (DeleteStream of the configured stream, say)
        // answers an empty body, as Kinesis does.
        if status == StatusCode::OK && body.is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(&body).expect("the answer is JSON");
        if status == StatusCode::BAD_REQUEST {
            prop_assert!(
                v["__type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("Exception")),
                "{v}"
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_get_a_well_formed_answer(action in 0usize..ACTIONS.len(), body in prop::collection::vec(any::<u8>(), 0..200)) {
            let dir = tempfile::tempdir().unwrap();
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let s = service(dir.path());
            let resp = rt.block_on(handle(&s, ACTIONS[action], &body));
            well_formed(resp)?;
            s.streams.shutdown();
        }

        #[test]
        fn arbitrary_json_gets_a_well_formed_answer(action in 0usize..ACTIONS.len(), body in json_value()) {
            let dir = tempfile::tempdir().unwrap();
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let s = service(dir.path());
            let resp = rt.block_on(handle(&s, ACTIONS[action], body.to_string().as_bytes()));
            well_formed(resp)?;
            s.streams.shutdown();
        }
    }
}
