//! `spillway demo` end to end, with a small spike.

#![allow(clippy::unwrap_used)] // tests fail loudly on any surprise

mod common;

use common::BIN;

#[test]
fn demo_shows_the_spike_absorbed_and_writes_a_report_with_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("report.html");
    let out = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "demo",
            "--requests",
            "200",
            "--concurrency",
            "50",
            "--function-concurrency",
            "2",
            "--delay-ms",
            "50",
            "--limits-rate",
            "3000",
            "--limits-seconds",
            // 6,000 requests: one shard (1,000/s plus 1,000 of burst) is over its limit
            // whenever the load reaches 1,200/s, a margin for a busy 2-core machine.
            "2",
            "--json",
            "--out",
        ])
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = |act: &str, code: &str| r[act]["load"]["status"][code].as_u64().unwrap_or(0);

    // Act 1: the direct route throttles, the buffered one takes everything and drains it.
    assert!(status("direct", "429") > 0, "{}", r["direct"]);
    assert_eq!(status("direct", "200") + status("direct", "429"), 200);
    assert_eq!(status("buffered", "200"), 200);
    assert_eq!(r["buffered"]["load"]["verify"]["landed"], 200);
    assert_eq!(r["buffered"]["load"]["verify"]["missing"], 0);
    assert_eq!(
        r["direct"]["load"]["verify"]["landed"].as_u64().unwrap(),
        status("direct", "200")
    );

    // Act 2: one shard is over its limit, four are not.
    assert!(status("one_shard", "400") > 0);
    assert_eq!(status("four_shards", "400"), 0);
    assert_eq!(status("four_shards", "200"), 6000);

    // The report stands alone and carries the figures behind its charts.
    let html = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(html.matches("<svg").count(), 8);
    assert!(
        !html.contains("http://") || !html.contains("<script src"),
        "no external scripts"
    );
    let start = html
        .find(r#"<script type="application/json" id="demo-data">"#)
        .unwrap();
    let json = &html[start..];
    let json = &json[json.find('>').unwrap() + 1..json.find("</script>").unwrap()];
    let embedded: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        embedded["buffered"]["load"]["status"],
        r["buffered"]["load"]["status"]
    );
    assert!(
        !embedded["buffered"]["load"]["timeline"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        !embedded["buffered"]["load"]["verify"]["drain_curve"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
