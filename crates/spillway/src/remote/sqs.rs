//! A worker's queue engine: SQS's JSON protocol (`AmazonSQS.*`), for mappings whose
//! on-failure destination is an SQS queue (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
//!
//! Embedded, a mapping hands its on-failure record to spillway's own queues; a worker
//! keeps nothing of its own, so it sends the record to the queue engine named by
//! `[workers] queue_engine` (another spillway, AWS SQS by region, any SQS-API endpoint).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;

use super::{AwsJsonClient, Endpoint, RemoteError};

/// A client of one SQS-API endpoint.
#[derive(Debug)]
pub struct SqsClient {
    api: AwsJsonClient,
    /// Queue URLs by ARN, as GetQueueUrl answered them.
    urls: Mutex<HashMap<String, String>>,
}

impl SqsClient {
    /// A client of the queue engine at `endpoint`, signing for its region or else
    /// `region`.
    pub fn new(endpoint: &Endpoint, region: &str) -> Result<Self, RemoteError> {
        Ok(Self {
            api: AwsJsonClient::new(
                endpoint,
                "sqs",
                "AmazonSQS",
                "application/x-amz-json-1.0",
                region,
            )?,
            urls: Mutex::default(),
        })
    }

    pub fn endpoint(&self) -> &str {
        self.api.endpoint()
    }

    /// Sends `body` to the queue `arn`. Tried up to three times while the engine is
    /// unreachable or busy; a try whose answer was lost may leave the message twice, as
    /// SQS's own at-least-once delivery may.
    pub async fn send(&self, arn: &str, body: &str) -> Result<(), RemoteError> {
        let url = self.queue_url(arn).await?;
        self.api
            .call_retrying(
                "SendMessage",
                &json!({"QueueUrl": url, "MessageBody": body}),
                3,
            )
            .await?;
        Ok(())
    }

    async fn queue_url(&self, arn: &str) -> Result<String, RemoteError> {
        if let Some(url) = self.urls.lock().unwrap_or_else(|p| p.into_inner()).get(arn) {
            return Ok(url.clone());
        }
        // arn:aws:sqs:REGION:ACCOUNT:NAME
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, _, "sqs", _, account, name] = parts[..] else {
            return Err(RemoteError::Decode {
                endpoint: self.endpoint().to_owned(),
                message: format!("{arn:?} is not an SQS queue ARN"),
            });
        };
        let answer = self
            .api
            .call_retrying(
                "GetQueueUrl",
                &json!({"QueueName": name, "QueueOwnerAWSAccountId": account}),
                3,
            )
            .await?;
        let url = answer
            .get("QueueUrl")
            .and_then(|u| u.as_str())
            .ok_or_else(|| RemoteError::Decode {
                endpoint: self.endpoint().to_owned(),
                message: format!("GetQueueUrl for {arn} answered no QueueUrl"),
            })?
            .to_owned();
        self.urls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(arn.to_owned(), url.clone());
        Ok(url)
    }
}
