//! Line charts as inline SVG, so the demo report is one self-contained file that works
//! offline (no scripts, no CDN).

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, f64)>,
}

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 40.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" axis maximum and tick step for values up to `max`.
fn nice(max: f64) -> (f64, f64) {
    if max <= 0.0 {
        return (1.0, 0.25);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn fmt_tick(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Renders a line chart with axes, ticks and a legend.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (x_max, x_step) = nice(xs.fold(0.0, f64::max));
    let (y_max, y_step) = nice(ys.fold(0.0, f64::max));
    let px = |x: f64| LEFT + x / x_max * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y / y_max * (H - TOP - BOTTOM);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title><text x="{LEFT}" y="18" font-size="14" font-weight="bold">{t}</text>"##,
        t = escape(title)
    );
    let mut y = 0.0;
    while y <= y_max + 1e-9 {
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{py}" y2="{py}" stroke="#e5e5e5"/><text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            py(y) + 3.0,
            fmt_tick(y),
            py = py(y)
        );
        y += y_step;
    }
    let mut x = 0.0;
    while x <= x_max + 1e-9 {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>"##,
            px(x),
            H - BOTTOM + 14.0,
            fmt_tick(x)
        );
        x += x_step;
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{}" stroke="#333"/><line x1="{LEFT}" x2="{}" y1="{b}" y2="{b}" stroke="#333"/><text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text><text x="12" y="{}" font-size="11" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>"##,
        H - BOTTOM,
        W - RIGHT,
        (LEFT + W - RIGHT) / 2.0,
        H - 6.0,
        escape(x_label),
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0,
        escape(y_label),
        b = H - BOTTOM
    );
    for (i, s) in series.iter().enumerate() {
        // Few points (a burst over in an instant): mark each one, or a line of one
        // point would not show at all.
        if s.points.len() <= 40 {
            for (x, y) in &s.points {
                let _ = write!(
                    svg,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"##,
                    px(*x),
                    py(*y),
                    s.color
                );
            }
        }
        let points: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/><rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" font-size="11">{}</text>"##,
            s.color,
            points.join(" "),
            W - RIGHT - 150.0,
            TOP + 4.0 + i as f64 * 14.0,
            s.color,
            W - RIGHT - 136.0,
            TOP + 13.0 + i as f64 * 14.0,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series_and_escapes_names() {
        let svg = line_chart(
            "a <b>",
            "s",
            "n",
            &[
                Series {
                    name: "x & y".into(),
                    color: "#f00",
                    points: vec![(0.0, 1.0), (1.0, 3.0)],
                },
                Series {
                    name: "z".into(),
                    color: "#00f",
                    points: vec![],
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("x &amp; y") && svg.contains("a &lt;b&gt;"));
    }

    #[test]
    fn nice_axes() {
        assert_eq!(nice(9.0), (10.0, 2.5));
        assert_eq!(nice(1800.0), (2000.0, 500.0));
    }
}
