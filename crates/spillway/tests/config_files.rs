//! The config forgives: a file holds only what it changes, and the README's examples run
//! as they are written.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// The ```toml blocks of README.md, with the line each starts on.
fn readme_toml_blocks() -> Vec<(usize, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in readme.lines().enumerate() {
        match (&mut current, line.trim()) {
            (None, "```toml") => current = Some((n + 1, String::new())),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn every_readme_config_example_starts_a_server() {
    let blocks = readme_toml_blocks();
    assert!(blocks.len() >= 5, "found {} examples", blocks.len());
    for (line, text) in blocks {
        let dir = tempfile::tempdir().unwrap();
        // Server::start panics with the server's stderr when it does not start.
        let mut s = Server::start(&dir.path().join("data"), Some(&text));
        assert!(!s.base.is_empty(), "README line {line}");
        s.kill9();
    }
}

#[tokio::test]
async fn a_one_key_config_runs_the_reference_setup() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        Some("[storage]\ndurability = \"os\"\n"),
    );
    let c = client();
    post(&c, &s, r#"{"message": "hello"}"#).await;
    wait_until(20, "the item in example-table", || async {
        item_count(&c, &s, "example-table").await == 1
    })
    .await;
}

#[tokio::test]
async fn an_empty_mapping_list_runs_no_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), Some("mappings = []\n"));
    let c = client();
    let (_, mappings) = get_json(&c, &s.url("/_spillway/mappings")).await;
    assert_eq!(mappings.as_array().unwrap().len(), 0);
    post(&c, &s, r#"{"message": "kept in the stream"}"#).await;
}

#[test]
fn a_reference_error_names_the_line_and_the_closest_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spillway.toml");
    std::fs::write(
        &path,
        "[[routes]]\nmethod = \"POST\"\npath = \"/in\"\nstream = \"exmaple-stream\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spillway.toml"), "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("did you mean `example-stream`?"), "{err}");
}
