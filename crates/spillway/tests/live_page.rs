//! The live page at `/_spillway/`, in a real headless browser: it loads, shows the
//! pipeline's resources, and its numbers move under load. A screenshot is kept at
//! target/test-artifacts/live-page.png.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;

fn browser() -> &'static str {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
        .expect("a Chromium browser (apt-get install chromium)")
}

/// The page's DOM after its scripts ran for a few seconds of virtual time.
fn dump_dom(url: &str, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number in `data-NAME="N"` of the element with id `id`.
fn data_value(dom: &str, id: &str, name: &str) -> f64 {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"));
    let tag_end = start + dom[start..].find('>').unwrap();
    let tag = &dom[..tag_end];
    let open = tag.rfind('<').unwrap();
    let tag = &tag[open..];
    let key = format!("data-{name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no data-{name} on #{id}: {tag}"));
    let rest = &tag[at + key.len()..];
    rest[..rest.find('"').unwrap()].parse().unwrap()
}

#[tokio::test]
#[cfg_attr(
    not(spillway_has_chromium),
    ignore = "needs a headless Chromium: apt-get install chromium (.ci/run installs it)"
)]
async fn the_live_page_shows_the_pipeline_and_moves_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), None);
    let c = client();
    for i in 0..10 {
        post(&c, &s, &reference_body(i)).await;
    }
    wait_until(20, "10 items", || async {
        item_count(&c, &s, "example-table").await == 10
    })
    .await;
    let url = s.url("/_spillway/");
    let before = tokio::task::spawn_blocking({
        let url = url.clone();
        move || dump_dom(&url, &[])
    })
    .await
    .unwrap();
    for needle in [
        "example-stream",
        "example-table",
        "kinesis-to-dynamo",
        "/metrics",
    ] {
        assert!(
            before.contains(needle),
            "{needle} not on the page:\n{before}"
        );
    }
    assert_eq!(
        data_value(&before, "stream-example-stream", "records"),
        10.0
    );
    assert_eq!(data_value(&before, "table-example-table", "items"), 10.0);

    // Under load, the numbers move.
    spike(&s, 200, 20).await;
    wait_until(20, "210 items", || async {
        item_count(&c, &s, "example-table").await == 210
    })
    .await;
    let artifacts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("live-page.png");
    let after = tokio::task::spawn_blocking({
        let shot = format!("--screenshot={}", shot.display());
        move || {
            // One run for the screenshot, one for the DOM (Chromium does one per run).
            let _ = dump_dom(&url, &[&shot, "--window-size=1280,1500"]);
            dump_dom(&url, &[])
        }
    })
    .await
    .unwrap();
    assert_eq!(
        data_value(&after, "stream-example-stream", "records"),
        210.0
    );
    assert!(data_value(&after, "table-example-table", "items") >= 200.0);
    // The charts start from the server's history, not from when the page opened: the
    // server sampled every 2 s while the test ran.
    wait_until(10, "a second history sample", || async {
        let (_, history) = get_json(&c, &s.url("/_spillway/history")).await;
        history.as_array().unwrap().len() >= 2
    })
    .await;
    let (_, history) = get_json(&c, &s.url("/_spillway/history")).await;
    let samples = history.as_array().unwrap().len();
    assert!(
        history[0]["metrics"]
            .as_str()
            .unwrap()
            .contains("spillway_stream_incoming_records_total")
    );
    assert!(data_value(&after, "stream-example-stream", "points") >= samples as f64 - 1.0);
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "no screenshot at {}",
        shot.display()
    );
}
