//! SQS, CloudWatch Logs and CloudWatch alarms through the AWS CLI against a real
//! `spillway serve`: queues and messages (durable across a restart), a mapping's
//! on-failure record delivered to a queue, a function's output in its log group, and
//! metric alarms stored and described. Skipped, with the reason printed, when the
//! `aws` command is missing.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// Whether the AWS CLI is here; says why not when it is not.
fn have_aws() -> bool {
    let ok = Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: the `aws` command (AWS CLI) is not installed");
    }
    ok
}

/// Runs `aws LINE --endpoint-url SERVER` (LINE split at white space); (success, stdout
/// as JSON or text, stderr).
fn aws(s: &Server, line: &str) -> (bool, Value, String) {
    aws_at(&s.base, &line.split_whitespace().collect::<Vec<_>>())
}

/// [`aws`] against an endpoint given by its URL.
fn aws_at(endpoint: &str, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new("aws")
        .args(args)
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("run aws");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout));
    (
        out.status.success(),
        value,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A server on a fresh data dir (and the dir), unless the AWS CLI is missing.
fn start(config: Option<&str>) -> Option<(tempfile::TempDir, std::path::PathBuf, Server)> {
    if !have_aws() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let s = Server::start(&data, config);
    Some((dir, data, s))
}

/// `aws ARGS` that must succeed.
fn aws_ok(s: &Server, line: &str) -> Value {
    let (ok, v, err) = aws(s, line);
    assert!(ok, "aws {line} failed: {err}");
    v
}

#[test]
fn queues_and_messages_through_the_cli_survive_a_restart() {
    let Some((_dir, data, mut s)) = start(None) else {
        return;
    };
    let created = aws_ok(
        &s,
        "sqs create-queue --queue-name orders --attributes VisibilityTimeout=2 --tags team=spillway",
    );
    let url = created["QueueUrl"].as_str().unwrap().to_owned();
    assert!(url.ends_with("/000000000000/orders"), "{url}");
    // The same attributes again: the same queue; others: QueueAlreadyExists.
    aws_ok(
        &s,
        "sqs create-queue --queue-name orders --attributes VisibilityTimeout=2",
    );
    let (ok, _, err) = aws(
        &s,
        "sqs create-queue --queue-name orders --attributes VisibilityTimeout=9",
    );
    assert!(!ok && err.contains("QueueAlreadyExists"), "{err}");
    let (ok, _, err) = aws(&s, "sqs get-queue-url --queue-name missing");
    assert!(
        !ok && err.contains("AWS.SimpleQueueService.NonExistentQueue"),
        "{err}"
    );

    let sent = aws_ok(
        &s,
        &format!("sqs send-message --queue-url {} --message-body first", url),
    );
    assert_eq!(sent["MD5OfMessageBody"], "8b04d5e3775d298e78455efc5ca404d5");
    let attrs = aws_ok(
        &s,
        &format!(
            "sqs get-queue-attributes --queue-url {} --attribute-names All",
            url
        ),
    )["Attributes"]
        .clone();
    assert_eq!(
        attrs["QueueArn"],
        "arn:aws:sqs:us-east-1:000000000000:orders"
    );
    assert_eq!(attrs["ApproximateNumberOfMessages"], "1");
    assert_eq!(attrs["VisibilityTimeout"], "2");

    let got = aws_ok(
        &s,
        &format!(
            "sqs receive-message --queue-url {} --attribute-names All --max-number-of-messages 10",
            url
        ),
    );
    let m = &got["Messages"][0];
    assert_eq!(m["Body"], "first");
    assert_eq!(m["Attributes"]["ApproximateReceiveCount"], "1");
    // In flight: not visible to another receive until its timeout passes.
    let attrs = aws_ok(
        &s,
        &format!(
            "sqs get-queue-attributes --queue-url {} --attribute-names ApproximateNumberOfMessagesNotVisible",
            url
        ),
    );
    assert_eq!(
        attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"],
        "1"
    );
    // Long polling waits for it to come back.
    let again = aws_ok(
        &s,
        &format!(
            "sqs receive-message --queue-url {} --wait-time-seconds 10 --attribute-names All",
            url
        ),
    );
    assert_eq!(
        again["Messages"][0]["Attributes"]["ApproximateReceiveCount"],
        "2"
    );
    let handle = again["Messages"][0]["ReceiptHandle"]
        .as_str()
        .unwrap()
        .to_owned();
    aws_ok(
        &s,
        &format!(
            "sqs delete-message --queue-url {} --receipt-handle {}",
            url, handle
        ),
    );
    let none = aws_ok(&s, &format!("sqs receive-message --queue-url {}", url));
    assert!(none.get("Messages").is_none(), "{none}");

    // A message sent before a restart is there after it, and so are the queue and tags.
    aws_ok(
        &s,
        &format!(
            "sqs send-message --queue-url {} --message-body durable",
            url
        ),
    );
    assert!(s.terminate().success());
    let s = Server::start(&data, None);
    let url = aws_ok(&s, "sqs get-queue-url --queue-name orders")["QueueUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let tags = aws_ok(&s, &format!("sqs list-queue-tags --queue-url {}", url));
    assert_eq!(tags["Tags"]["team"], "spillway");
    let got = aws_ok(&s, &format!("sqs receive-message --queue-url {}", url));
    assert_eq!(got["Messages"][0]["Body"], "durable");

    aws_ok(&s, &format!("sqs delete-queue --queue-url {}", url));
    let listed = aws_ok(&s, "sqs list-queues");
    assert!(listed.get("QueueUrls").is_none(), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_mapping_sends_its_on_failure_record_to_a_queue_and_its_output_to_logs() {
    let function = "\n[[functions]]\nname = \"always-fails\"\nkind = \"process\"\n\
        command = [\"sh\", \"-c\", \"echo spillway-test-output-line >&2; exit 1\"]\n";
    let config = config_before_mappings(|t| t)
        + function
        + &mapping_block(
            "always-fails",
            "MaximumRetryAttempts = 0\nStartingPosition = \"TRIM_HORIZON\"\n\
             DestinationConfig = { OnFailure = { Destination = \"arn:aws:sqs:us-east-1:000000000000:failures\" } }",
        );
    let Some((_dir, _data, s)) = start(Some(&config)) else {
        return;
    };
    let url = aws_ok(&s, "sqs create-queue --queue-name failures")["QueueUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = client();
    let seq = post(&c, &s, "{\"message\": \"doomed\"}").await;

    let (base, queue_url) = (s.base.clone(), url.clone());
    let got = tokio::task::spawn_blocking(move || receive_within_a_minute(&base, &queue_url))
        .await
        .unwrap();
    let record: Value = serde_json::from_str(got["Messages"][0]["Body"].as_str().unwrap()).unwrap();
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(
        record["KinesisBatchInfo"]["startSequenceNumber"],
        seq.as_str()
    );
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    // The local dead letter stays too.
    assert_eq!(dead_letters(&c, &s).await.len(), 1);

    // The function's output is in its log group.
    let groups = aws_ok(
        &s,
        "logs describe-log-groups --log-group-name-prefix /aws/lambda/",
    );
    let names: Vec<&str> = groups["logGroups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["logGroupName"].as_str())
        .collect();
    assert!(names.contains(&"/aws/lambda/always-fails"), "{groups}");
    let events = aws_ok(
        &s,
        "logs filter-log-events --log-group-name /aws/lambda/always-fails --filter-pattern spillway-test-output-line",
    );
    let events = events["events"].as_array().unwrap();
    assert!(!events.is_empty(), "no events");
    let stream = events[0]["logStreamName"].as_str().unwrap();
    assert!(stream.contains("/[$LATEST]"), "{stream}");
    let read = aws_ok(
        &s,
        &format!(
            "logs get-log-events --log-group-name /aws/lambda/always-fails --log-stream-name {} --start-from-head",
            stream
        ),
    );
    assert!(
        read["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"] == "spillway-test-output-line"),
        "{read}"
    );
}

/// Receives from `url` at `endpoint`, waiting up to 60 s in 20 s long polls.
fn receive_within_a_minute(endpoint: &str, url: &str) -> Value {
    for _ in 0..3 {
        let args = [
            "sqs",
            "receive-message",
            "--queue-url",
            url,
            "--wait-time-seconds",
            "20",
        ];
        let (ok, v, err) = aws_at(endpoint, &args);
        assert!(ok, "{err}");
        if v.get("Messages").is_some() {
            return v;
        }
    }
    panic!("no on-failure record reached the queue");
}

#[test]
fn log_groups_and_metric_alarms_through_the_cli() {
    let Some((_dir, data, mut s)) = start(None) else {
        return;
    };
    aws_ok(&s, "logs create-log-group --log-group-name /app/orders");
    aws_ok(
        &s,
        "logs put-retention-policy --log-group-name /app/orders --retention-in-days 7",
    );
    let (ok, _, err) = aws(&s, "logs create-log-group --log-group-name /app/orders");
    assert!(
        !ok && err.contains("ResourceAlreadyExistsException"),
        "{err}"
    );
    aws_ok(
        &s,
        "cloudwatch put-metric-alarm --alarm-name iterator-age --namespace AWS/Lambda --metric-name IteratorAge --statistic Maximum --period 60 --evaluation-periods 1 --threshold 60000 --comparison-operator GreaterThanThreshold --dimensions Name=FunctionName,Value=f",
    );
    assert!(s.terminate().success());
    let s = Server::start(&data, None);
    let groups = aws_ok(&s, "logs describe-log-groups --log-group-name-prefix /app/");
    assert_eq!(groups["logGroups"][0]["logGroupName"], "/app/orders");
    assert_eq!(groups["logGroups"][0]["retentionInDays"], 7);
    let alarms = aws_ok(&s, "cloudwatch describe-alarms --alarm-names iterator-age");
    let a = &alarms["MetricAlarms"][0];
    assert_eq!(a["AlarmName"], "iterator-age");
    assert_eq!(a["StateValue"], "INSUFFICIENT_DATA");
    assert_eq!(a["Threshold"], 60000.0);
    assert_eq!(a["Dimensions"][0]["Value"], "f");
    aws_ok(&s, "cloudwatch delete-alarms --alarm-names iterator-age");
    let alarms = aws_ok(&s, "cloudwatch describe-alarms");
    assert_eq!(alarms["MetricAlarms"], serde_json::json!([]));
}
