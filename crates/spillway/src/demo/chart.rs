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

/// How a chart is drawn beyond its series.
#[derive(Debug, Clone, Default)]
pub struct ChartOptions {
    /// The time axis' end, shared by the charts of one act (default: the data's).
    pub x_max: Option<f64>,
    /// A logarithmic value axis (1, 10, 100, ...), so that 5 successes stay visible
    /// beside 2,000 refusals.
    pub log_y: bool,
    /// A dashed horizontal line and its label (a shard's write limit).
    pub limit: Option<(f64, String)>,
}

/// Renders a line chart with axes, ticks and a legend.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    chart(title, x_label, y_label, series, &ChartOptions::default())
}

/// [`line_chart`] with options.
pub fn chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    opts: &ChartOptions,
) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (x_max, x_step) = nice(opts.x_max.unwrap_or_else(|| xs.fold(0.0, f64::max)));
    let data_max = ys
        .fold(0.0, f64::max)
        .max(opts.limit.as_ref().map_or(0.0, |(v, _)| *v * 1.1));
    let (y_max, y_step) = if opts.log_y {
        // Decades: ticks at 0, 1, 10, 100, ... up to the first power of ten above.
        let decades = (data_max.max(1.0)).log10().ceil().max(1.0);
        (decades, 1.0)
    } else {
        nice(data_max)
    };
    let scale = |y: f64| if opts.log_y { (1.0 + y).log10() } else { y };
    let px = |x: f64| LEFT + x.min(x_max) / x_max * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - scale(y).min(y_max) / y_max * (H - TOP - BOTTOM);
    let tick_value = |t: f64| {
        if opts.log_y {
            10f64.powf(t) - if t == 0.0 { 1.0 } else { 0.0 }
        } else {
            t
        }
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title><text x="{LEFT}" y="18" font-size="14" font-weight="bold">{t}</text>"##,
        t = escape(title)
    );
    let mut t = 0.0;
    while t <= y_max + 1e-9 {
        let y = tick_value(t);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{py}" y2="{py}" stroke="#e5e5e5"/><text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            py(y) + 3.0,
            fmt_tick(y),
            py = py(y)
        );
        t += y_step;
    }
    if let Some((value, label)) = &opts.limit {
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{y}" y2="{y}" stroke="#d1495b" stroke-dasharray="6 4"/><text x="{}" y="{}" font-size="10" fill="#d1495b" text-anchor="end">{}</text>"##,
            W - RIGHT,
            W - RIGHT,
            py(*value) - 4.0,
            escape(label),
            y = py(*value)
        );
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
    fn log_axes_keep_small_counts_visible_and_limits_are_drawn() {
        let svg = chart(
            "direct",
            "s",
            "requests",
            &[Series {
                name: "2xx".into(),
                color: "#0f0",
                points: vec![(0.0, 5.0), (1.0, 2000.0)],
            }],
            &ChartOptions {
                x_max: Some(10.0),
                log_y: true,
                limit: Some((1000.0, "shard limit".into())),
            },
        );
        // Ticks by decade up to 10k, the limit drawn and labelled.
        assert!(svg.contains(">1000<") && svg.contains(">10k<"));
        assert!(svg.contains("stroke-dasharray") && svg.contains("shard limit"));
        // 5 on a log axis up to 10k sits well above the axis (a fifth of the height).
        let bottom = H - BOTTOM;
        let five = H - BOTTOM - (6f64).log10() / 4.0 * (H - TOP - BOTTOM);
        assert!(bottom - five > 30.0);
        assert!(svg.contains(&format!("{:.1}", five)));
    }

    #[test]
    fn nice_axes() {
        assert_eq!(nice(9.0), (10.0, 2.5));
        assert_eq!(nice(1800.0), (2000.0, 500.0));
    }
}
