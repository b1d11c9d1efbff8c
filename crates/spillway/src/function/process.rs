//! A function that is any program: one process per invocation, the event JSON on its
//! stdin, the response JSON on its stdout. A non-zero exit is a function error whose
//! message is the last line of stderr. Stopped (killed) at the function's timeout.

use std::process::Stdio;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::{Function, FunctionError, InvokeFuture, TableWrites};
use crate::config::{Config, FunctionConfig};

/// A `kind = "process"` function.
#[derive(Debug)]
pub struct ProcessFunction {
    name: String,
    command: Vec<String>,
    region: String,
    /// Names the function's log stream (one for all of its processes).
    instance: String,
}

impl ProcessFunction {
    pub fn new(fc: &FunctionConfig, config: &Config) -> Self {
        Self {
            name: fc.name.clone(),
            command: fc.command.clone(),
            region: config.region.clone(),
            instance: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    async fn run(&self, payload: Bytes) -> Result<Bytes, FunctionError> {
        let (program, args) = self
            .command
            .split_first()
            .ok_or_else(|| FunctionError::Start("empty command".into()))?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.name)
            .env("AWS_REGION", &self.region)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Through the spawner thread, so that the process dies with spillway.
        let mut child = super::child::spawn(command)
            .await
            .map_err(|e| FunctionError::Start(format!("{program}: {e}")))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // A function may exit without reading all of its input; that is its business.
        let _ = stdin.write_all(&payload).await;
        drop(stdin);
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| FunctionError::Start(e.to_string()))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in super::runtime_api::split_output_lines(&stderr) {
            tracing::info!(function = %self.name, "{line}");
            crate::logs::function_output(&self.name, &self.instance, line);
        }
        if out.status.success() {
            Ok(Bytes::from(out.stdout))
        } else {
            Err(FunctionError::Unhandled {
                error_type: "Runtime.ExitError".into(),
                message: stderr
                    .lines()
                    .last()
                    .map_or_else(|| format!("exited with {}", out.status), str::to_owned),
            })
        }
    }
}

impl Function for ProcessFunction {
    fn invoke<'a>(&'a self, payload: Bytes, _writes: &'a mut TableWrites) -> InvokeFuture<'a> {
        Box::pin(self.run(payload))
    }
}
