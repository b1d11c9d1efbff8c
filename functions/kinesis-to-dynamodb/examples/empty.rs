//! An empty Lambda function (answers `{}` to any event), built with the same runtime
//! client as the reference function. `bench/functions.sh` uses it to measure what the
//! Runtime API host itself costs per invocation.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        Ok::<_, Error>(serde_json::json!({}))
    }))
    .await
}
