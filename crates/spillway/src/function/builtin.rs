//! The reference function, built in: Kinesis records to DynamoDB items.
//!
//! As the reference's Python function: base64-decode each record, UTF-8, parse as JSON or
//! fall back to `{"message": text}`, and write `{ID, Message}` with Message the `message`
//! field or `NoMessage`. Unlike the reference (a random uuid4), ID is a UUID v5 of the
//! record's eventID, so a retried or replayed record rewrites the same item instead of
//! adding a duplicate. Writes are handed back as one batch, which the mapping commits
//! with its checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::value::RawValue;

use super::event::{BatchItemFailure, BatchResponse, KinesisEvent};
use super::{Function, FunctionError, InvokeFuture, TableWrites};
use crate::config::{FailMode, FunctionConfig};
use crate::table::{AttributeValue, Item, Number, Tables};

/// The namespace of item ids: UUID v5(namespace, eventID).
pub const ITEM_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5b1a_7e0c_8f0d_4a7e_9c53_2f6b_d1e4_a9c7);

/// The built-in `kinesis-to-dynamo` function.
pub struct KinesisToDynamo {
    tables: Arc<Tables>,
    table: String,
    keep_body: bool,
    delay: Duration,
    fail_containing: Option<String>,
    fail_mode: FailMode,
}

impl std::fmt::Debug for KinesisToDynamo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KinesisToDynamo")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// The item ID the built-in function gives the record with this eventID.
pub fn item_id(event_id: &str) -> String {
    uuid::Uuid::new_v5(&ITEM_ID_NAMESPACE, event_id.as_bytes()).to_string()
}

/// A JSON text as an attribute value, numbers digit for digit (N where DynamoDB can hold
/// them, else S). It walks `RawValue`s, so no number ever passes through an `f64`:
/// exactness without serde_json's `arbitrary_precision`, a workspace-wide feature that
/// would break other crates' untagged number enums (the Lambda event types').
fn attribute_from_json(raw: &RawValue) -> AttributeValue {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'{') => serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(text).map_or(
            AttributeValue::Null,
            |fields| {
                AttributeValue::M(
                    fields
                        .iter()
                        .map(|(k, v)| (k.clone(), attribute_from_json(v)))
                        .collect(),
                )
            },
        ),
        Some(b'[') => serde_json::from_str::<Vec<Box<RawValue>>>(text)
            .map_or(AttributeValue::Null, |items| {
                AttributeValue::L(items.iter().map(|v| attribute_from_json(v)).collect())
            }),
        Some(b'"') => serde_json::from_str(text).map_or(AttributeValue::Null, AttributeValue::S),
        Some(b't') => AttributeValue::Bool(true),
        Some(b'f') => AttributeValue::Bool(false),
        Some(b'n') | None => AttributeValue::Null,
        Some(_) => Number::parse(text)
            .map(AttributeValue::N)
            .unwrap_or_else(|_| AttributeValue::S(text.to_owned())),
    }
}

/// The `Message` attribute for a body's `message` field: text as is, a number as written,
/// anything else as compact JSON; null or absent: `NoMessage`.
fn message_from(field: Option<&RawValue>) -> String {
    let Some(raw) = field else {
        return "NoMessage".to_owned();
    };
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str(text).unwrap_or_default(),
        Some(b'n') | None => "NoMessage".to_owned(),
        Some(b'{' | b'[') => serde_json::from_str::<serde_json::Value>(text)
            .map_or_else(|_| text.to_owned(), |v| v.to_string()),
        Some(_) => text.to_owned(),
    }
}

impl KinesisToDynamo {
    pub fn new(tables: Arc<Tables>, fc: &FunctionConfig) -> Self {
        Self {
            tables,
            table: fc.table.clone().unwrap_or_default(),
            keep_body: fc.keep_body,
            delay: Duration::from_millis(fc.delay_ms),
            fail_containing: Some(fc.fail_records_containing.clone()).filter(|s| !s.is_empty()),
            fail_mode: fc.fail_mode,
        }
    }

    /// The item for one record's decoded data.
    fn item_for(&self, event_id: &str, text: &str) -> Item {
        let mut item = Item::new();
        let message = match serde_json::from_str::<Box<RawValue>>(text) {
            // Not JSON: the text is the message.
            Err(_) => text.to_owned(),
            Ok(raw) => {
                // JSON, but only an object has fields; any other JSON has no message.
                let fields: BTreeMap<String, Box<RawValue>> =
                    serde_json::from_str(raw.get()).unwrap_or_default();
                if self.keep_body {
                    for (k, v) in &fields {
                        item.insert(k.clone(), attribute_from_json(v));
                    }
                }
                message_from(fields.get("message").map(AsRef::as_ref))
            }
        };
        item.insert("ID".into(), AttributeValue::S(item_id(event_id)));
        item.insert("Message".into(), AttributeValue::S(message));
        item
    }

    async fn run(&self, payload: Bytes, writes: &mut TableWrites) -> Result<Bytes, FunctionError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let unhandled = |error_type: &str, message: String| FunctionError::Unhandled {
            error_type: error_type.to_owned(),
            message,
        };
        let value: serde_json::Value = serde_json::from_slice(&payload)
            .map_err(|e| unhandled("JSONDecodeError", format!("event is not JSON: {e}")))?;
        if value.get("Records").is_none() && value.get("requestContext").is_some() {
            return self.run_proxy(&value, writes);
        }
        let event: KinesisEvent = serde_json::from_value(value)
            .map_err(|e| unhandled("KeyError", format!("not a Kinesis event: {e}")))?;
        let table = self
            .tables
            .get(&self.table)
            .map_err(|e| unhandled("ResourceNotFoundException", e.to_string()))?;
        let mut failures = Vec::new();
        for r in &event.records {
            let data = base64::engine::general_purpose::STANDARD
                .decode(&r.kinesis.data)
                .map_err(|e| unhandled("binascii.Error", e.to_string()))?;
            let text = String::from_utf8(data)
                .map_err(|e| unhandled("UnicodeDecodeError", e.to_string()))?;
            if let Some(poison) = &self.fail_containing
                && text.contains(poison.as_str())
            {
                match self.fail_mode {
                    FailMode::Error => {
                        writes.ops.clear();
                        return Err(unhandled(
                            "PoisonRecordError",
                            format!("record {} contains {poison:?}", r.kinesis.sequence_number),
                        ));
                    }
                    FailMode::Report => {
                        failures.push(BatchItemFailure {
                            item_identifier: r.kinesis.sequence_number.clone(),
                        });
                        continue;
                    }
                }
            }
            match table.prepare_put(&self.item_for(&r.event_id, &text)) {
                Ok(op) => writes.ops.push(op),
                Err(e) => {
                    tracing::warn!(error = %e, event_id = %r.event_id, "item refused");
                    failures.push(BatchItemFailure {
                        item_identifier: r.kinesis.sequence_number.clone(),
                    });
                }
            }
        }
        let response = BatchResponse {
            batch_item_failures: failures,
        };
        Ok(Bytes::from(
            serde_json::to_vec(&response).expect("responses serialize"),
        ))
    }
}

impl KinesisToDynamo {
    /// The same function behind a direct route: API Gateway's proxy event carries one
    /// request; its body becomes one item (ID from the request id).
    fn run_proxy(
        &self,
        event: &serde_json::Value,
        writes: &mut TableWrites,
    ) -> Result<Bytes, FunctionError> {
        let unhandled = |error_type: &str, message: String| FunctionError::Unhandled {
            error_type: error_type.to_owned(),
            message,
        };
        let request_id = event["requestContext"]["requestId"]
            .as_str()
            .unwrap_or_default();
        let body = event["body"].as_str().unwrap_or_default();
        if let Some(poison) = &self.fail_containing
            && body.contains(poison.as_str())
        {
            return Err(unhandled(
                "PoisonRecordError",
                format!("request {request_id} contains {poison:?}"),
            ));
        }
        let table = self
            .tables
            .get(&self.table)
            .map_err(|e| unhandled("ResourceNotFoundException", e.to_string()))?;
        let op = table
            .prepare_put(&self.item_for(request_id, body))
            .map_err(|e| unhandled("ValidationException", e.to_string()))?;
        writes.ops.push(op);
        let response = serde_json::json!({
            "statusCode": 200,
            "body": serde_json::json!({"result": "ok"}).to_string(),
        });
        Ok(Bytes::from(response.to_string()))
    }
}

impl Function for KinesisToDynamo {
    fn invoke<'a>(&'a self, payload: Bytes, writes: &'a mut TableWrites) -> InvokeFuture<'a> {
        Box::pin(self.run(payload, writes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::storage::Store;
    use crate::storage::fjall_engine::FjallStore;

    fn function(dir: &std::path::Path, keep_body: bool) -> KinesisToDynamo {
        let config = Config::default();
        let store: Arc<dyn Store> = Arc::new(FjallStore::open(dir).unwrap());
        let tables = Arc::new(Tables::open(store, &config.tables_settings()).unwrap());
        let mut fc = config.functions[0].clone();
        fc.keep_body = keep_body;
        KinesisToDynamo::new(tables, &fc)
    }

    #[test]
    fn items_as_the_reference_function_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let f = function(dir.path(), false);
        let it = f.item_for(
            "shardId-000000000000:49",
            r#"{"index": 1, "message": "Test message 1"}"#,
        );
        assert_eq!(it.len(), 2);
        assert_eq!(it["Message"], AttributeValue::S("Test message 1".into()));
        assert_eq!(
            it["ID"],
            AttributeValue::S(item_id("shardId-000000000000:49"))
        );
        // Not JSON: the text is the message. JSON without a message: NoMessage.
        assert_eq!(
            f.item_for("e", "plain")["Message"],
            AttributeValue::S("plain".into())
        );
        assert_eq!(
            f.item_for("e", r#"{"a": 1}"#)["Message"],
            AttributeValue::S("NoMessage".into())
        );
        // Deterministic and distinct ids.
        assert_eq!(item_id("x"), item_id("x"));
        assert_ne!(item_id("x"), item_id("y"));
        // Pinned as a literal, the same as the Rust function's (functions/
        // kinesis-to-dynamodb): a replay after an upgrade, or through the other
        // function, must rewrite the same item.
        assert_eq!(
            item_id("shardId-000000000000:1"),
            "a644a297-ed93-5cae-9107-771641702931"
        );
    }

    #[test]
    fn keep_body_keeps_every_field_with_exact_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let f = function(dir.path(), true);
        let it = f.item_for("e", r#"{"message": "m", "n": 12345678901234567890123, "ok": true, "tags": ["a"], "m": {"x": null}}"#);
        assert_eq!(
            it["n"],
            AttributeValue::N(Number::parse("12345678901234567890123").unwrap())
        );
        assert_eq!(it["ok"], AttributeValue::Bool(true));
        assert_eq!(
            it["tags"],
            AttributeValue::L(vec![AttributeValue::S("a".into())])
        );
        assert_eq!(it["Message"], AttributeValue::S("m".into()));
        assert_eq!(
            it["m"],
            AttributeValue::M([("x".to_owned(), AttributeValue::Null)].into())
        );
    }

    #[test]
    fn messages_follow_the_reference_rules() {
        let dir = tempfile::tempdir().unwrap();
        let f = function(dir.path(), false);
        let message = |text: &str| f.item_for("e", text)["Message"].clone();
        assert_eq!(
            message(r#"{"message": "hi"}"#),
            AttributeValue::S("hi".into())
        );
        assert_eq!(
            message(r#"{"message": 12345678901234567890123.5}"#),
            AttributeValue::S("12345678901234567890123.5".into())
        );
        assert_eq!(
            message(r#"{"message": {"a": 1}}"#),
            AttributeValue::S(r#"{"a":1}"#.into())
        );
        assert_eq!(
            message(r#"{"message": null}"#),
            AttributeValue::S("NoMessage".into())
        );
        assert_eq!(
            message(r#"{"other": 1}"#),
            AttributeValue::S("NoMessage".into())
        );
        assert_eq!(message("5"), AttributeValue::S("NoMessage".into()));
        assert_eq!(
            message("plain text"),
            AttributeValue::S("plain text".into())
        );
    }
}
