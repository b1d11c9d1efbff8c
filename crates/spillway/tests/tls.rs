//! HTTPS: spillway's own listener, judged by the AWS CLI and by a Rust HTTPS client that
//! trust a self-signed certificate; clients that do not trust it are refused and the
//! server keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, config_with, item_count, self_signed, wait_until};

/// The default config with an HTTPS listener on a free port.
fn https_config(cert: &Path, key: &Path) -> String {
    config_with(|t| {
        t.replace(
            "# tls_listen = \"0.0.0.0:4443\"\n# tls_cert = \"/etc/spillway/cert.pem\"\n# tls_key = \"/etc/spillway/key.pem\"",
            &format!(
                "tls_listen = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"",
                cert.display(),
                key.display()
            ),
        )
    })
}

#[tokio::test]
async fn the_https_listener_serves_the_pipeline_to_clients_that_trust_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let s = Server::start(&dir.path().join("data"), Some(&https_config(&cert, &key)));
    let https = s.https.clone().expect("an HTTPS address");
    let port = https.rsplit(':').next().unwrap().to_owned();
    let endpoint = format!("https://localhost:{port}");

    // The AWS CLI, trusting the certificate, writes a record over HTTPS.
    let (ok, stdout, stderr) = common::aws_cli(&[
        "--endpoint-url",
        &endpoint,
        "--ca-bundle",
        cert.to_str().unwrap(),
        "kinesis",
        "put-record",
        "--stream-name",
        "example-stream",
        "--partition-key",
        "cli",
        "--data",
        "aGVsbG8=",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("SequenceNumber"), "{stdout}");
    // URLs handed back over HTTPS say https (here a queue's).
    let (ok, stdout, stderr) = common::aws_cli(&[
        "--endpoint-url",
        &endpoint,
        "--ca-bundle",
        cert.to_str().unwrap(),
        "sqs",
        "create-queue",
        "--queue-name",
        "over-tls",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("https://localhost:{port}/000000000000/over-tls")),
        "{stdout}"
    );
    // Without trusting it, the CLI refuses the server, as it would any unknown issuer.
    let (ok, _, stderr) =
        common::aws_cli(&["--endpoint-url", &endpoint, "dynamodb", "list-tables"]);
    assert!(!ok, "an untrusted certificate was accepted");
    assert!(
        stderr.contains("SSL") || stderr.contains("certificate"),
        "{stderr}"
    );

    // The ingest route over HTTPS: acknowledged records reach the table.
    let trusted = reqwest::Client::builder()
        .tls_certs_merge(
            reqwest::Certificate::from_pem_bundle(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    for i in 0..20 {
        let r = trusted
            .post(format!("{endpoint}/dev"))
            .body(common::reference_body(i))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let c = common::client();
    wait_until(
        30,
        "the 20 records posted over HTTPS in the table",
        || async { item_count(&c, &s, "example-table").await >= 20 },
    )
    .await;

    // Plain HTTP, or a handshake abandoned, at the HTTPS port gets no answer and
    // stops nothing: the server goes on serving both listeners.
    let plain = c
        .get(format!("http://127.0.0.1:{port}/_spillway/health"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered on the HTTPS port");
    {
        use tokio::io::AsyncWriteExt;
        let mut half = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        half.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc")
            .await
            .unwrap();
        drop(half);
    }
    let r = trusted
        .get(format!("{endpoint}/_spillway/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(s.url("/_spillway/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// A slim container may hold no CA certificates at all: what speaks plain HTTP (here the
/// CLI's `spillway stream`) must not need them.
#[tokio::test]
async fn plain_http_clients_work_on_a_machine_without_ca_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), None);
    let empty = dir.path().join("no-certs");
    std::fs::create_dir(&empty).unwrap();
    let out = Command::new(common::BIN)
        .args(["stream", "--endpoint", &s.base])
        // Where rustls looks for the system's roots: nowhere with any.
        .env("SSL_CERT_FILE", empty.join("none.pem"))
        .env("SSL_CERT_DIR", &empty)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("example-stream"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_https_listener_without_its_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed(dir.path());
    let config = https_config(&cert, &dir.path().join("missing-key.pem"));
    let path = dir.path().join("spillway.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(common::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing-key.pem"), "{stderr}");
}
