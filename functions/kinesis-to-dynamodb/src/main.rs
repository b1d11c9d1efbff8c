//! `bootstrap`: the Lambda entry point of the reference function. See the library docs.
//!
//! Environment: `TABLE_NAME` (default `example-table`, the reference's table) and
//! `MAX_WRITE_ATTEMPTS` (BatchWriteItem calls per chunk of 25, default 8).

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use kinesis_to_dynamodb::{RetryPolicy, write_records};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // lambda_runtime panics on a missing runtime address; say what is wrong instead.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        eprintln!(
            "bootstrap: AWS_LAMBDA_RUNTIME_API is not set. This is a Lambda function: deploy it \
             to AWS Lambda (provided.al2023) or run it under `spillway serve` as a \
             kind = \"runtime\" function."
        );
        std::process::exit(2);
    }
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "example-table".to_owned());
    let mut policy = RetryPolicy::default();
    if let Some(n) = std::env::var("MAX_WRITE_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        policy.attempts = n.max(1);
    }
    // Built once per instance (cold start), reused by every invocation it serves.
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<KinesisEvent>| {
        let (client, table) = (&client, &table);
        async move {
            let policy = RetryPolicy {
                deadline: Some(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::from_millis(event.context.deadline),
                ),
                ..policy
            };
            let response: KinesisEventResponse =
                write_records(client, table, &event.payload.records, policy).await;
            Ok::<_, Error>(response)
        }
    }))
    .await
}
