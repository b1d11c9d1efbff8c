//! STS and IAM through the AWS CLI against a real `spillway serve`: the caller's
//! identity, a role with an inline policy read back (the CLI decodes the URL-encoded
//! documents into JSON), durable across a restart, IAM's DeleteConflict, paging by
//! Marker, an assumed role's identity, and a 400 naming an operation spillway does not
//! implement. Without the `aws` command on PATH the test prints why and passes.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use std::process::Command;

use common::*;
use serde_json::{Value, json};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const WRITE_ITEMS: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:BatchWriteItem"], "Resource": "arn:aws:dynamodb:us-east-1:000000000000:table/events"}]
}"#;

/// What one `aws` run gave.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert!(self.ok, "aws failed: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// `aws --endpoint-url <server> ARGS --output json` with dummy credentials (or the ones
/// given), printing the command and its answer as a transcript.
fn aws_as(s: &Server, credentials: (&str, &str, Option<&str>), args: &[&str]) -> Run {
    let mut command = Command::new("aws");
    command
        .arg("--endpoint-url")
        .arg(&s.base)
        .args(args)
        .args(["--output", "json"])
        .env("AWS_ACCESS_KEY_ID", credentials.0)
        .env("AWS_SECRET_ACCESS_KEY", credentials.1)
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_PAGER", "");
    if let Some(token) = credentials.2 {
        command.env("AWS_SESSION_TOKEN", token);
    }
    let out = command.output().unwrap();
    let run = Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    println!("$ aws {}\n{}{}", args.join(" "), run.stdout, run.stderr);
    run
}

fn aws(s: &Server, args: &[&str]) -> Run {
    aws_as(s, ("test", "test", None), args)
}

/// Runs `aws ARGS` and checks that it succeeded.
fn succeeds(s: &Server, args: &[&str]) {
    let run = aws(s, args);
    assert!(run.ok, "aws failed: {}", run.stderr);
}

/// Runs `aws ARGS` and checks that it failed with the error `code`; its message.
fn fails_with(s: &Server, args: &[&str], code: &str) -> String {
    let run = aws(s, args);
    assert!(!run.ok, "aws succeeded: {}", run.stdout);
    assert!(run.stderr.contains(&format!("({code})")), "{}", run.stderr);
    run.stderr
}

fn aws_installed() -> bool {
    Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn iam_roles_and_sts_through_the_aws_cli() {
    if !aws_installed() {
        println!(
            "skipped: the AWS CLI (`aws`) is not installed (pip install awscli, or https://aws.amazon.com/cli/)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, None);

    let me = aws(&s, &["sts", "get-caller-identity"]).json();
    assert_eq!(me["Account"], "000000000000");
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:root");
    assert_eq!(me["UserId"], "000000000000");

    let created = aws(
        &s,
        &[
            "iam",
            "create-role",
            "--role-name",
            "spill-exec",
            "--path",
            "/service/",
            "--assume-role-policy-document",
            TRUST,
            "--description",
            "runs the function",
            "--tags",
            "Key=team,Value=data",
        ],
    )
    .json();
    let role = &created["Role"];
    assert_eq!(
        role["Arn"],
        "arn:aws:iam::000000000000:role/service/spill-exec"
    );
    assert_eq!(role["Path"], "/service/");
    let role_id = role["RoleId"].as_str().unwrap().to_owned();
    assert!(
        role_id.starts_with("AROA") && role_id.len() == 21,
        "{role_id}"
    );
    // The CLI URL-decodes the document and parses it.
    assert_eq!(role["AssumeRolePolicyDocument"], document(TRUST));
    let create_upper = ["iam", "create-role", "--role-name", "SPILL-EXEC"];
    fails_with(
        &s,
        &[&create_upper[..], &["--assume-role-policy-document", TRUST]].concat(),
        "EntityAlreadyExists",
    );

    let put = [
        "iam",
        "put-role-policy",
        "--role-name",
        "spill-exec",
        "--policy-name",
    ];
    succeeds(
        &s,
        &[&put[..], &["write-items", "--policy-document", WRITE_ITEMS]].concat(),
    );
    let names = aws(
        &s,
        &["iam", "list-role-policies", "--role-name", "spill-exec"],
    )
    .json();
    assert_eq!(names["PolicyNames"], json!(["write-items"]));
    let not_json = [&put[..], &["bad", "--policy-document", "this is not json"]].concat();
    fails_with(&s, &not_json, "MalformedPolicyDocument");

    // Durable: the same role and policy after a restart.
    assert!(s.terminate().success());
    let s = Server::start(&data, None);
    let got = aws(&s, &["iam", "get-role", "--role-name", "spill-exec"]).json();
    assert_eq!(got["Role"]["RoleId"], role_id.as_str());
    assert_eq!(got["Role"]["CreateDate"], role["CreateDate"]);
    assert_eq!(got["Role"]["Description"], "runs the function");
    assert_eq!(got["Role"]["MaxSessionDuration"], 3600);
    assert_eq!(
        got["Role"]["Tags"],
        json!([{"Key": "team", "Value": "data"}])
    );
    let role_policy = ["--role-name", "spill-exec", "--policy-name", "write-items"];
    let policy = aws(
        &s,
        &[&["iam", "get-role-policy"][..], &role_policy].concat(),
    )
    .json();
    assert_eq!(policy["RoleName"], "spill-exec");
    assert_eq!(policy["PolicyDocument"], document(WRITE_ITEMS));

    // IAM refuses to delete a role that still has a policy.
    let delete = ["iam", "delete-role", "--role-name", "spill-exec"];
    let refused = fails_with(&s, &delete, "DeleteConflict");
    assert!(refused.contains("must delete policies first"), "{refused}");

    // Paging: the CLI follows Marker through pages of one.
    for name in ["b-role", "a-role"] {
        let create = ["iam", "create-role", "--role-name", name];
        succeeds(
            &s,
            &[&create[..], &["--assume-role-policy-document", TRUST]].concat(),
        );
    }
    let all = aws(&s, &["iam", "list-roles", "--page-size", "1"]).json();
    let names: Vec<&str> = all["Roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["RoleName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a-role", "b-role", "spill-exec"]);
    let scoped = aws(&s, &["iam", "list-roles", "--path-prefix", "/service/"]).json();
    assert_eq!(scoped["Roles"].as_array().unwrap().len(), 1);

    // An assumed role is who its credentials say.
    let role_arn = "arn:aws:iam::000000000000:role/service/spill-exec";
    let assume = ["sts", "assume-role", "--role-arn", role_arn];
    let assumed = aws(&s, &[&assume[..], &["--role-session-name", "ci"]].concat()).json();
    let c = &assumed["Credentials"];
    let key = c["AccessKeyId"].as_str().unwrap();
    let secret = c["SecretAccessKey"].as_str().unwrap();
    let token = c["SessionToken"].as_str();
    let who = aws_as(&s, (key, secret, token), &["sts", "get-caller-identity"]).json();
    assert_eq!(
        who["Arn"],
        "arn:aws:sts::000000000000:assumed-role/spill-exec/ci"
    );
    assert_eq!(who["UserId"], format!("{role_id}:ci"));

    // An operation spillway does not implement: 400, naming it.
    let unknown = fails_with(&s, &["iam", "list-users"], "InvalidAction");
    assert!(unknown.contains("ListUsers"), "{unknown}");
    let r = client()
        .post(s.url("/"))
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body("Action=ListUsers&Version=2010-05-08")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "text/xml");
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<Code>InvalidAction</Code>") && body.contains("ListUsers"),
        "{body}"
    );

    // With its policy gone, the role goes.
    succeeds(
        &s,
        &[&["iam", "delete-role-policy"][..], &role_policy].concat(),
    );
    succeeds(&s, &delete);
    let gone = fails_with(
        &s,
        &["iam", "get-role", "--role-name", "spill-exec"],
        "NoSuchEntity",
    );
    assert!(
        gone.contains("The role with name spill-exec cannot be found."),
        "{gone}"
    );
}

#[tokio::test]
async fn managed_policies_through_the_aws_cli() {
    if !aws_installed() {
        println!("skipped: the AWS CLI (`aws`) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), None);
    let create = [
        "iam",
        "create-policy",
        "--policy-name",
        "writer",
        "--policy-document",
    ];
    let created = aws(&s, &[&create[..], &[WRITE_ITEMS]].concat()).json();
    let arn = created["Policy"]["Arn"].as_str().unwrap().to_owned();
    assert_eq!(arn, "arn:aws:iam::000000000000:policy/writer");
    assert_eq!(created["Policy"]["DefaultVersionId"], "v1");
    let get_version = [
        "iam",
        "get-policy-version",
        "--version-id",
        "v1",
        "--policy-arn",
    ];
    let version = aws(&s, &[&get_version[..], &[arn.as_str()]].concat()).json();
    assert_eq!(version["PolicyVersion"]["Document"], document(WRITE_ITEMS));

    let create_role = ["iam", "create-role", "--role-name", "r"];
    succeeds(
        &s,
        &[&create_role[..], &["--assume-role-policy-document", TRUST]].concat(),
    );
    let role_and_policy = ["--role-name", "r", "--policy-arn", arn.as_str()];
    succeeds(
        &s,
        &[&["iam", "attach-role-policy"][..], &role_and_policy].concat(),
    );
    let attached = aws(
        &s,
        &["iam", "list-attached-role-policies", "--role-name", "r"],
    )
    .json();
    assert_eq!(
        attached["AttachedPolicies"],
        json!([{"PolicyName": "writer", "PolicyArn": arn}])
    );
    let got = aws(&s, &["iam", "get-policy", "--policy-arn", &arn]).json();
    assert_eq!(got["Policy"]["AttachmentCount"], 1);
    fails_with(
        &s,
        &["iam", "delete-role", "--role-name", "r"],
        "DeleteConflict",
    );
    fails_with(
        &s,
        &["iam", "delete-policy", "--policy-arn", &arn],
        "DeleteConflict",
    );
    succeeds(
        &s,
        &[&["iam", "detach-role-policy"][..], &role_and_policy].concat(),
    );
    let profiles = aws(
        &s,
        &["iam", "list-instance-profiles-for-role", "--role-name", "r"],
    )
    .json();
    assert_eq!(profiles["InstanceProfiles"], json!([]));
    succeeds(&s, &["iam", "delete-role", "--role-name", "r"]);
    let versions = aws(&s, &["iam", "list-policy-versions", "--policy-arn", &arn]).json();
    assert_eq!(versions["Versions"][0]["IsDefaultVersion"], true);
    succeeds(&s, &["iam", "delete-policy", "--policy-arn", &arn]);
    fails_with(
        &s,
        &["iam", "get-policy", "--policy-arn", &arn],
        "NoSuchEntity",
    );
}

/// A policy document as JSON, as the CLI shows a decoded one.
fn document(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}
