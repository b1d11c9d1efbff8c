//! A table engine reached through DynamoDB's API: tables a worker's functions write
//! to, and the lease table where workers share the work (`crate::worker::lease`).
//! Conditional writes are the engine's, so two workers can never both win one lease.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{AwsJsonClient, Endpoint, RemoteError};
use crate::config::TableConfig;

/// At most this many writes go in one BatchWriteItem (DynamoDB's limit).
const BATCH_WRITE_MAX: usize = 25;

/// A client of one DynamoDB-API endpoint.
#[derive(Debug, Clone)]
pub struct DynamoDbClient {
    api: AwsJsonClient,
    /// Key attribute names of the tables [`Self::ensure_table`] saw: BatchWriteItem
    /// refuses a key twice in one request, so puts of one key keep the last.
    keys: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, Vec<String>>>>,
}

/// A conditional write lost: the item was not as the condition said.
#[derive(Debug, thiserror::Error)]
pub enum ConditionalError {
    #[error("the condition did not hold")]
    ConditionFailed,
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl DynamoDbClient {
    /// A client of the engine at `endpoint`, signing for its region or else `region`.
    pub fn new(endpoint: &Endpoint, region: &str) -> Result<Self, RemoteError> {
        Ok(Self {
            api: AwsJsonClient::new(
                endpoint,
                "dynamodb",
                "DynamoDB_20120810",
                "application/x-amz-json-1.0",
                region,
            )?,
            keys: Default::default(),
        })
    }

    /// The raw client, for forwarding clients' requests.
    pub fn api(&self) -> &AwsJsonClient {
        &self.api
    }

    /// Creates a table of the config's key schema (on demand) unless it exists, and
    /// waits until it is ACTIVE.
    pub async fn ensure_table(&self, table: &TableConfig) -> Result<(), RemoteError> {
        let mut keys = vec![(&table.hash_key, "HASH")];
        if let Some(range) = &table.range_key {
            keys.push((range, "RANGE"));
        }
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                table.name.clone(),
                keys.iter().map(|(k, _)| k.name.clone()).collect(),
            );
        let body = json!({
            "TableName": table.name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": keys.iter().map(|(k, t)| json!({"AttributeName": k.name, "KeyType": t})).collect::<Vec<_>>(),
            "AttributeDefinitions": keys.iter().map(|(k, _)| json!({"AttributeName": k.name, "AttributeType": k.kind})).collect::<Vec<_>>(),
        });
        self.create_and_wait(&table.name, &body).await
    }

    /// Creates the lease table (hash key `leaseKey`, a string) unless it exists.
    pub async fn ensure_lease_table(&self, name: &str) -> Result<(), RemoteError> {
        let body = json!({
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "leaseKey", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "leaseKey", "AttributeType": "S"}],
        });
        self.create_and_wait(name, &body).await
    }

    async fn create_and_wait(&self, name: &str, body: &Value) -> Result<(), RemoteError> {
        self.api
            .create_and_wait(
                &format!("table {name}"),
                ("CreateTable", body),
                ("DescribeTable", &json!({"TableName": name})),
                |d| (d["Table"]["TableStatus"].as_str() == Some("ACTIVE")).then_some(()),
            )
            .await
    }

    /// Puts every item (DynamoDB JSON), 25 to a BatchWriteItem, sending what the engine
    /// leaves unprocessed again until all is written. Puts are idempotent, so retrying
    /// a whole batch after a lost answer is safe.
    pub async fn put_items(&self, table: &str, items: Vec<Value>) -> Result<(), RemoteError> {
        // One key appears once (the last put of it), so the chunks are independent and
        // go at once.
        let items = self.last_of_each_key(table, items);
        let chunks = items
            .chunks(BATCH_WRITE_MAX)
            .map(|chunk| self.write_chunk(table, chunk));
        futures_util::future::try_join_all(chunks).await?;
        Ok(())
    }

    /// One BatchWriteItem of at most 25 puts, sending what the engine leaves
    /// unprocessed again until all is written.
    async fn write_chunk(&self, table: &str, chunk: &[Value]) -> Result<(), RemoteError> {
        let mut pending: Vec<Value> = chunk
            .iter()
            .map(|item| json!({"PutRequest": {"Item": item}}))
            .collect();
        let mut rounds = 0u32;
        while !pending.is_empty() {
            rounds += 1;
            let answer = self
                .api
                .call_retrying(
                    "BatchWriteItem",
                    &json!({"RequestItems": {table: pending}}),
                    6,
                )
                .await?;
            pending = answer["UnprocessedItems"][table]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis((50u64 << rounds.min(5)).min(1000))).await;
            }
        }
        Ok(())
    }

    /// The items with, of several of one key, only the last (in the place of the last):
    /// what sequential puts would leave, in the form BatchWriteItem takes.
    fn last_of_each_key(&self, table: &str, items: Vec<Value>) -> Vec<Value> {
        let names = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(table)
            .cloned();
        let Some(names) = names else {
            return items;
        };
        let key = |item: &Value| {
            names
                .iter()
                .map(|n| item.get(n).map(Value::to_string).unwrap_or_default())
                .collect::<Vec<_>>()
        };
        let mut last = std::collections::HashMap::new();
        for (i, item) in items.iter().enumerate() {
            last.insert(key(item), i);
        }
        items
            .into_iter()
            .enumerate()
            .filter(|(i, item)| last.get(&key(item)) == Some(i))
            .map(|(_, item)| item)
            .collect()
    }

    /// Every item of a table (small tables: the lease table), with a consistent read.
    pub async fn scan_all(&self, table: &str) -> Result<Vec<Map<String, Value>>, RemoteError> {
        let mut items = Vec::new();
        let mut start: Option<Value> = None;
        loop {
            let mut body = json!({"TableName": table, "ConsistentRead": true});
            if let Some(key) = start.take() {
                body["ExclusiveStartKey"] = key;
            }
            let page = self.api.call_retrying("Scan", &body, 5).await?;
            for item in page["Items"].as_array().into_iter().flatten() {
                if let Some(m) = item.as_object() {
                    items.push(m.clone());
                }
            }
            match page.get("LastEvaluatedKey") {
                Some(k) if k.is_object() => start = Some(k.clone()),
                _ => return Ok(items),
            }
        }
    }

    /// PutItem under a condition (`ConditionExpression` with its names and values).
    pub async fn put_if(
        &self,
        table: &str,
        item: Value,
        condition: &str,
        names: Value,
        values: Option<Value>,
    ) -> Result<(), ConditionalError> {
        let mut body = json!({
            "TableName": table,
            "Item": item,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        });
        if let Some(v) = values {
            body["ExpressionAttributeValues"] = v;
        }
        self.conditional("PutItem", &body).await
    }

    /// UpdateItem under a condition.
    pub async fn update_if(
        &self,
        table: &str,
        key: Value,
        update: &str,
        condition: &str,
        names: Value,
        values: Value,
    ) -> Result<(), ConditionalError> {
        let body = json!({
            "TableName": table,
            "Key": key,
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        });
        self.conditional("UpdateItem", &body).await
    }

    async fn conditional(&self, action: &str, body: &Value) -> Result<(), ConditionalError> {
        match self.api.call_retrying(action, body, 5).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == Some("ConditionalCheckFailedException") => {
                Err(ConditionalError::ConditionFailed)
            }
            Err(e) => Err(e.into()),
        }
    }
}
