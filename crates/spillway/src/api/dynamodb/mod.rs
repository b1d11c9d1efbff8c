//! The DynamoDB edge: AWS JSON 1.0 (`X-Amz-Target: DynamoDB_20120810.<Action>`) on
//! `POST /`, so boto3 (`Table.put_item` as the reference function calls it), the AWS CLI
//! and the SDKs work against spillway's tables.
//!
//! Errors leave through [`DynamoError`]'s one mapping, with the `__type` namespaces
//! DynamoDB sends; every response carries `x-amzn-RequestId` and the `x-amz-crc32` of
//! its body, which botocore checks.

mod actions;
mod checks;
mod control;
mod keycond;
mod legacy;

/// The actions without the HTTP and thread-pool layers, for the fuzz targets.
#[doc(hidden)]
pub use actions::dispatch;

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::table::{TableError, Tables};

/// Every error the DynamoDB API answers.
#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    #[error("{0}")]
    Validation(String),
    #[error("Requested resource not found")]
    ResourceNotFound,
    /// Not found, naming the table (DescribeTable, DeleteTable, UpdateTable, TTL).
    #[error("Requested resource not found: Table: {0} not found")]
    TableNotFound(String),
    /// Not found, with its own message.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TableNotFoundException(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("The conditional request failed")]
    ConditionalCheckFailed(Option<Value>),
    #[error("{0}")]
    Serialization(String),
    #[error("")]
    UnknownOperation,
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,
    #[error("{0}")]
    InternalServerError(String),
    /// Storage cannot take writes now (a full disk): 503 with Retry-After.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// Per step: None, or (code, message, old item).
    #[error("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", .0.iter().map(|r| r.as_ref().map_or("None", |c| c.0.as_str())).collect::<Vec<_>>().join(", "))]
    TransactionCanceled(Vec<Option<(String, String, Option<Value>)>>),
}

impl DynamoError {
    fn type_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => "com.amazon.coral.validate#ValidationException",
            Self::ResourceNotFound | Self::TableNotFound(_) | Self::NotFound(_) => {
                "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
            }
            Self::TableNotFoundException(_) => {
                "com.amazonaws.dynamodb.v20120810#TableNotFoundException"
            }
            Self::AccessDenied(_) => "com.amazon.coral.service#AccessDeniedException",
            Self::ResourceInUse(_) => "com.amazonaws.dynamodb.v20120810#ResourceInUseException",
            Self::LimitExceeded(_) => "com.amazonaws.dynamodb.v20120810#LimitExceededException",
            Self::ConditionalCheckFailed(_) => {
                "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
            }
            Self::Serialization(_) => "com.amazon.coral.service#SerializationException",
            Self::UnknownOperation => "com.amazon.coral.service#UnknownOperationException",
            Self::MissingAuthenticationToken => {
                "com.amazon.coral.service#MissingAuthenticationTokenException"
            }
            Self::InternalServerError(_) => "com.amazonaws.dynamodb.v20120810#InternalServerError",
            Self::ServiceUnavailable(_) => "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
            Self::TransactionCanceled(_) => {
                "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"
            }
        }
    }
}

impl From<TableError> for DynamoError {
    fn from(e: TableError) -> Self {
        match e {
            TableError::TableNotFound(_) => Self::ResourceNotFound,
            TableError::Validation(m) => Self::Validation(m),
            TableError::ResourceInUse(t) => {
                Self::ResourceInUse(format!("Table already exists: {t}"))
            }
            TableError::ConditionalCheckFailed { old } => {
                Self::ConditionalCheckFailed(old.map(|i| crate::table::value::item_to_json(&i)))
            }
            TableError::LimitExceeded(m) => Self::LimitExceeded(m),
            TableError::InUse(m) => Self::ResourceInUse(m),
            TableError::Storage(
                e @ (crate::storage::StorageError::Full(_) | crate::storage::StorageError::Io(_)),
            ) => Self::ServiceUnavailable(e.to_string()),
            TableError::Storage(e) => Self::InternalServerError(e.to_string()),
            TableError::Config(m) => Self::InternalServerError(m),
        }
    }
}

impl From<crate::api::model::RequestError> for DynamoError {
    fn from(e: crate::api::model::RequestError) -> Self {
        use crate::api::model::RequestError;
        match e {
            RequestError::UnknownOperation => Self::UnknownOperation,
            RequestError::Serialization(m) => Self::Serialization(m),
            e @ RequestError::Validation(_) => Self::Validation(e.to_string()),
        }
    }
}

impl From<crate::table::expr::ExprError> for DynamoError {
    fn from(e: crate::table::expr::ExprError) -> Self {
        Self::Validation(e.0)
    }
}

impl IntoResponse for DynamoError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::InternalServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut body = json!({"__type": self.type_name()});
        match self {
            Self::UnknownOperation => {}
            // Coral's own exceptions spell it with a capital M.
            Self::Serialization(_) | Self::AccessDenied(_) => {
                body["Message"] = json!(self.to_string());
            }
            _ => body["message"] = json!(self.to_string()),
        }
        if let Self::ConditionalCheckFailed(Some(item)) = &self {
            body["Item"] = item.clone();
        }
        if let Self::TransactionCanceled(reasons) = &self {
            body["CancellationReasons"] = Value::Array(
                reasons
                    .iter()
                    .map(|r| match r {
                        None => json!({"Code": "None"}),
                        Some((code, message, item)) => {
                            let mut v = json!({"Code": code, "Message": message});
                            if let Some(i) = item {
                                v["Item"] = i.clone();
                            }
                            v
                        }
                    })
                    .collect(),
            );
        }
        let mut r = respond(status, &body);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

/// A DynamoDB request id: 52 characters of [0-9A-Z], as DynamoDB's are, ready for the
/// `x-amzn-RequestId` header (built on the stack: every answer carries one).
pub fn request_id() -> HeaderValue {
    let mut id = [0u8; 64];
    uuid::Uuid::new_v4().simple().encode_upper(&mut id[..32]);
    uuid::Uuid::new_v4().simple().encode_upper(&mut id[32..]);
    HeaderValue::from_bytes(&id[..52]).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// An AWS JSON 1.0 response with DynamoDB's headers.
fn respond(status: StatusCode, body: &Value) -> Response {
    // A void operation (TagResource, UntagResource) answers an empty body.
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let crc = crc32fast::hash(text.as_bytes());
    let mut r = (status, text).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    h.insert(crate::api::names::X_AMZ_CRC32, HeaderValue::from(crc));
    h.insert(crate::api::names::X_AMZN_REQUEST_ID, request_id());
    r
}

/// Handles one DynamoDB request.
pub async fn handle(tables: &Arc<Tables>, action: &str, body: &[u8]) -> Response {
    // AWS answers an empty body with a bare SerializationException; spillway reads it as
    // `{}` so that query-string (presigned) requests, which sign an empty body, work
    // (tests/conformance/DEVIATIONS.md).
    let request: Value = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return DynamoError::Serialization(e.to_string()).into_response(),
        }
    };
    handle_json(tables, action, request).await
}

/// Handles one DynamoDB request whose body is already parsed.
pub async fn handle_json(tables: &Arc<Tables>, action: &str, request: Value) -> Response {
    if !request.is_object() {
        return DynamoError::Serialization("Start of structure or map expected".into())
            .into_response();
    }
    let tables = Arc::clone(tables);
    let action = action.to_owned();
    // Storage work is blocking.
    let result =
        tokio::task::spawn_blocking(move || actions::dispatch(&tables, &action, &request)).await;
    match result {
        Ok(Ok(v)) => respond(StatusCode::OK, &v),
        Ok(Err(e)) => e.into_response(),
        // A panic: its text and backtrace are in the log, not on the wire.
        Err(_) => crate::api::edge::internal_error(crate::api::edge::Protocol::DynamoDb),
    }
}

/// For `MissingAuthenticationTokenException` at the dispatcher.
pub fn missing_auth() -> Response {
    DynamoError::MissingAuthenticationToken.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::storage::Store;
    use crate::storage::fjall_engine::FjallStore;
    use proptest::prelude::*;

    fn tables(dir: &std::path::Path) -> Arc<Tables> {
        let store: Arc<dyn Store> = Arc::new(FjallStore::open(dir).unwrap());
        Arc::new(Tables::open(store, &Config::default().tables_settings()).unwrap())
    }

    fn call(t: &Arc<Tables>, action: &str, req: Value) -> Value {
        actions::dispatch(t, action, &req).unwrap_or_else(|e| panic!("{action}: {e}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

        /// Query and Scan with a filter, page by page, return exactly the items a plain
        /// in-memory filter keeps, in order, none skipped or repeated.
        #[test]
        fn filtered_paging_matches_an_in_memory_filter(
            rows in prop::collection::vec((0u8..4, -50i64..50, "[a-c]{0,3}"), 1..60),
            limit in 1u64..9,
            threshold in -50i64..50,
            prefix in "[a-c]{0,2}",
            forward: bool,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let t = tables(dir.path());
            call(&t, "CreateTable", json!({
                "TableName": "props",
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
                "AttributeDefinitions": [{"AttributeName": "h", "AttributeType": "S"}, {"AttributeName": "r", "AttributeType": "N"}],
            }));
            // Distinct (h, r) pairs: later rows replace earlier ones, as puts do.
            let mut model: std::collections::BTreeMap<(String, i64), (i64, String)> = Default::default();
            for (i, (h, v, s)) in rows.iter().enumerate() {
                let (h, r) = (format!("h{h}"), i as i64 % 17);
                call(&t, "PutItem", json!({"TableName": "props", "Item": {
                    "h": {"S": h}, "r": {"N": r.to_string()}, "v": {"N": v.to_string()}, "s": {"S": s}
                }}));
                model.insert((h, r), (*v, s.clone()));
            }
            let filter = json!({
                "FilterExpression": "v > :t AND begins_with(s, :p)",
                "ExpressionAttributeValues": {":t": {"N": threshold.to_string()}, ":p": {"S": prefix}},
            });
            let keep = |(v, s): &(i64, String)| *v > threshold && s.starts_with(prefix.as_str());
            // Scan: key order (hash bytes, then range numerically).
            let want: Vec<(String, i64)> = model.iter().filter(|(_, x)| keep(x)).map(|(k, _)| k.clone()).collect();
            let mut got = Vec::new();
            let mut start: Option<Value> = None;
            loop {
                let mut req = json!({"TableName": "props", "Limit": limit});
                req.as_object_mut().unwrap().extend(filter.as_object().unwrap().clone());
                if let Some(k) = &start { req["ExclusiveStartKey"] = k.clone(); }
                let page = call(&t, "Scan", req);
                for i in page["Items"].as_array().unwrap() {
                    got.push((i["h"]["S"].as_str().unwrap().to_owned(), i["r"]["N"].as_str().unwrap().parse::<i64>().unwrap()));
                }
                match page.get("LastEvaluatedKey") { Some(k) => start = Some(k.clone()), None => break }
            }
            prop_assert_eq!(&got, &want);
            // Query of one partition, either direction.
            let h = "h1".to_owned();
            let mut want: Vec<i64> = model.iter().filter(|((hh, _), x)| *hh == h && keep(x)).map(|((_, r), _)| *r).collect();
            if !forward { want.reverse(); }
            let mut got = Vec::new();
            let mut start: Option<Value> = None;
            loop {
                let mut req = json!({"TableName": "props", "Limit": limit, "ScanIndexForward": forward,
                    "KeyConditionExpression": "h = :h"});
                req.as_object_mut().unwrap().extend(filter.as_object().unwrap().clone());
                req["ExpressionAttributeValues"][":h"] = json!({"S": h});
                if let Some(k) = &start { req["ExclusiveStartKey"] = k.clone(); }
                let page = call(&t, "Query", req);
                for i in page["Items"].as_array().unwrap() {
                    got.push(i["r"]["N"].as_str().unwrap().parse::<i64>().unwrap());
                }
                match page.get("LastEvaluatedKey") { Some(k) => start = Some(k.clone()), None => break }
            }
            prop_assert_eq!(got, want);
        }
    }
}
