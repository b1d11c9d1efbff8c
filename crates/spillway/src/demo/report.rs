//! The demo's HTML report: one file, inline SVG charts, the raw figures embedded as JSON.

use super::chart::{ChartOptions, Series, chart};
use super::{Act, DemoReport};

const GREEN: &str = "#2a9d3f";
const RED: &str = "#d1495b";
const BLUE: &str = "#3066be";
const ORANGE: &str = "#e08a1e";
const GREY: &str = "#777777";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Requests per second by status class, from an act's timeline.
fn status_series(act: &Act, prefix: &str) -> Vec<Series> {
    let w = act.load.timeline_bucket_seconds.max(1e-3);
    let pick = |f: &dyn Fn(u16) -> bool| -> Vec<(f64, f64)> {
        act.load
            .timeline
            .iter()
            .map(|b| {
                let n: u64 = b
                    .status
                    .iter()
                    .filter(|(k, _)| f(**k))
                    .map(|(_, v)| v)
                    .sum();
                (b.t, n as f64 / w)
            })
            .collect()
    };
    vec![
        Series {
            name: format!("{prefix}2xx"),
            color: GREEN,
            points: pick(&|s| (200..300).contains(&s)),
        },
        Series {
            name: format!("{prefix}429 throttled"),
            color: RED,
            points: pick(&|s| s == 429),
        },
        Series {
            name: format!("{prefix}400 stream limit"),
            color: ORANGE,
            points: pick(&|s| s == 400),
        },
        Series {
            name: format!("{prefix}other"),
            color: GREY,
            points: pick(&|s| !(200..300).contains(&s) && s != 429 && s != 400),
        },
    ]
}

/// A per-sample series from the drain curve.
fn curve(act: &Act, f: impl Fn(&crate::load::verify::DrainSample) -> f64) -> Vec<(f64, f64)> {
    act.load
        .verify
        .as_ref()
        .map(|v| v.drain_curve.iter().map(|s| (s.t, f(s))).collect())
        .unwrap_or_default()
}

/// Per-second rate of a cumulative counter from the drain curve.
fn rate(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    points
        .windows(2)
        .map(|w| {
            let dt = (w[1].0 - w[0].0).max(1e-3);
            (w[1].0, (w[1].1 - w[0].1).max(0.0) / dt)
        })
        .collect()
}

/// The last time (s) any series of these acts has a point at: one time axis per act.
fn act_end(acts: &[&Act]) -> f64 {
    acts.iter()
        .flat_map(|a| {
            let timeline = a.load.timeline.iter().map(|b| b.t);
            let drain = a
                .load
                .verify
                .iter()
                .flat_map(|v| v.drain_curve.iter().map(|s| s.t));
            timeline.chain(drain).collect::<Vec<_>>()
        })
        .fold(0.0, f64::max)
}

/// The whole report.
pub fn html(r: &DemoReport) -> String {
    let act1 = ChartOptions {
        x_max: Some(act_end(&[&r.direct, &r.buffered])),
        ..ChartOptions::default()
    };
    let act2 = |limit: f64| ChartOptions {
        x_max: Some(act_end(&[&r.one_shard, &r.four_shards])),
        limit: Some((limit, format!("stream limit {limit:.0} records/s"))),
        ..ChartOptions::default()
    };
    let charts = [
        chart(
            "Direct route: requests/s by status (log scale)",
            "seconds",
            "requests/s",
            &status_series(&r.direct, ""),
            &ChartOptions {
                log_y: true,
                ..act1.clone()
            },
        ),
        chart(
            "Buffered route: requests/s by status",
            "seconds",
            "requests/s",
            &status_series(&r.buffered, ""),
            &act1,
        ),
        chart(
            "Records into the stream (buffered route)",
            "seconds",
            "records/s",
            &[Series {
                name: "records in".into(),
                color: BLUE,
                points: status_series(&r.buffered, "")[0].points.clone(),
            }],
            &act1,
        ),
        chart(
            "Function invocations/s",
            "seconds",
            "invocations/s",
            &[
                Series {
                    name: "direct".into(),
                    color: RED,
                    points: rate(curve(&r.direct, |s| s.function_invocations as f64)),
                },
                Series {
                    name: "buffered".into(),
                    color: GREEN,
                    points: rate(curve(&r.buffered, |s| s.function_invocations as f64)),
                },
            ],
            &act1,
        ),
        chart(
            "Iterator age (buffered route)",
            "seconds",
            "ms",
            &[Series {
                name: "iterator age".into(),
                color: ORANGE,
                points: curve(&r.buffered, |s| s.iterator_age_ms as f64),
            }],
            &act1,
        ),
        chart(
            "Items in the table",
            "seconds",
            "items",
            &[
                Series {
                    name: "direct".into(),
                    color: RED,
                    points: curve(&r.direct, |s| s.items as f64),
                },
                Series {
                    name: "buffered (after direct)".into(),
                    color: GREEN,
                    points: curve(&r.buffered, |s| s.items as f64),
                },
            ],
            &act1,
        ),
        chart(
            "1 shard, enforce_limits: requests/s by status",
            "seconds",
            "requests/s",
            &status_series(&r.one_shard, ""),
            &act2(1000.0),
        ),
        chart(
            "4 shards, enforce_limits: requests/s by status",
            "seconds",
            "requests/s",
            &status_series(&r.four_shards, ""),
            &act2(4000.0),
        ),
    ];
    let table = super::DemoReport::render_text(r);
    let mut rows = String::new();
    for line in table.lines() {
        if line.starts_with('|') && !line.starts_with("|---") {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            rows.push_str("<tr>");
            for c in cells {
                rows.push_str(&format!("<td>{}</td>", escape(c)));
            }
            rows.push_str("</tr>\n");
        } else if !line.trim().is_empty() && !line.starts_with("|---") {
            rows.push_str(&format!("</table><p>{}</p><table>\n", escape(line)));
        }
    }
    let data = serde_json::to_string(r)
        .expect("reports serialize")
        .replace("</", "<\\/");
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spillway demo: the spike, absorbed</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1340px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td {{ border: 1px solid #ccc; padding: 4px 10px; }}
tr:first-child td {{ font-weight: bold; background: #f4f4f4; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 16px; }}
</style></head><body>
<h1>spillway demo: the spike, absorbed</h1>
<p>The same spike, sent to a function directly and through a stream. The direct route
refuses what the function's concurrency cannot take at once (HTTP 429); the stream takes
everything, and the mapping drains it with shards x ParallelizationFactor invocations at
a time. Charts of one act share one time axis; the direct route's chart is on a log
scale so that its few successes show; Act 2's dashed lines are the stream's write
limit (1,000 records/s per shard).</p>
<table>
{rows}</table>
<div class="charts">
{charts}
</div>
<script type="application/json" id="demo-data">{data}</script>
</body></html>
"#,
        charts = charts.join("\n")
    )
}
