//! Charts as SVG written on the server: interval whiskers, funnel bars and
//! sparklines. No script draws anything; each chart carries a `<title>` and
//! text labels, so it reads without colour and without JavaScript.

use std::fmt::Write as _;

/// Escapes text for SVG and HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// One row of a whisker chart: a rate and its 95% interval, all in `0..=1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Whisker {
    pub label: String,
    pub value: f64,
    pub low: f64,
    pub high: f64,
    /// Baseline rows are drawn as circles, candidates as diamonds.
    pub baseline: bool,
}

const WIDTH: f64 = 500.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 130.0;

fn x_of(rate: f64) -> f64 {
    LEFT + rate.clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
}

/// Rates with whiskers on a shared 0–100% axis.
pub fn whiskers(title: &str, rows: &[Whisker]) -> String {
    let row_height = 26.0;
    let height = 24.0 + row_height * rows.len() as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart whiskers" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title)
    );
    // Axis at 0, 50 and 100%.
    for tick in [0.0, 0.5, 1.0] {
        let x = x_of(tick);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="4" x2="{x:.1}" y2="{:.1}" stroke="#c8ccd2" stroke-width="1"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#555">{:.0}%</text>"##,
            height - 14.0,
            height - 3.0,
            tick * 100.0
        );
    }
    for (idx, row) in rows.iter().enumerate() {
        let y = 16.0 + row_height * idx as f64;
        let (low, high, value) = (x_of(row.low), x_of(row.high), x_of(row.value));
        let _ = write!(
            out,
            r##"<text x="4" y="{:.1}" font-size="12" fill="#222">{}</text><line x1="{low:.1}" y1="{y:.1}" x2="{high:.1}" y2="{y:.1}" stroke="#1f3b63" stroke-width="2"/><line x1="{low:.1}" y1="{:.1}" x2="{low:.1}" y2="{:.1}" stroke="#1f3b63" stroke-width="2"/><line x1="{high:.1}" y1="{:.1}" x2="{high:.1}" y2="{:.1}" stroke="#1f3b63" stroke-width="2"/>"##,
            y + 4.0,
            escape(&row.label),
            y - 5.0,
            y + 5.0,
            y - 5.0,
            y + 5.0
        );
        if row.baseline {
            let _ = write!(out, r##"<circle cx="{value:.1}" cy="{y:.1}" r="5" fill="#1f3b63"/>"##);
        } else {
            let _ = write!(out, r##"<rect x="{:.1}" y="{:.1}" width="8" height="8" transform="rotate(45 {value:.1} {y:.1})" fill="#b05a00"/>"##, value - 4.0, y - 4.0);
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#222">{:.1}% [{:.1}–{:.1}]</text>"##,
            WIDTH - RIGHT + 4.0,
            y + 4.0,
            row.value * 100.0,
            row.low * 100.0,
            row.high * 100.0
        );
    }
    out.push_str("</svg>");
    out
}

/// One funnel step: how many reached it and how many stopped there.
#[derive(Clone, Debug, PartialEq)]
pub struct FunnelStep {
    pub step: String,
    pub reached: u64,
    pub dropped: u64,
}

/// Horizontal bars, one per step, as wide as the share of the first step's
/// sessions that reached it; the drop-off is written beside each bar.
pub fn funnel(title: &str, steps: &[FunnelStep], dropped_word: &str) -> String {
    let row_height = 22.0;
    let height = 8.0 + row_height * steps.len() as f64;
    let width = 520.0;
    let bar_left = 150.0;
    let bar_width = 170.0;
    let top = steps.first().map_or(0, |step| step.reached).max(1) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart funnel" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title)
    );
    for (idx, step) in steps.iter().enumerate() {
        let y = 4.0 + row_height * idx as f64;
        let share = step.reached as f64 / top;
        let bar = (share * bar_width).max(1.0);
        let drop = if step.reached == 0 { 0.0 } else { step.dropped as f64 * 100.0 / step.reached as f64 };
        let _ = write!(
            out,
            r##"<text x="4" y="{:.1}" font-size="11" fill="#222">{}</text><rect x="{bar_left}" y="{y:.1}" width="{bar:.1}" height="16" fill="#3a6ea5"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#222">{} · −{} {} ({drop:.0}%)</text>"##,
            y + 12.0,
            escape(&truncate(&step.step, 24)),
            bar_left + bar_width + 6.0,
            y + 12.0,
            step.reached,
            step.dropped,
            escape(dropped_word)
        );
    }
    out.push_str("</svg>");
    out
}

fn truncate(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(most - 1).collect::<String>())
    }
}

/// A small line of `values` (oldest first), with its last value marked.
pub fn sparkline(title: &str, values: &[u64]) -> String {
    let (width, height) = (120.0, 28.0);
    let most = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = if values.len() > 1 { (width - 4.0) / (values.len() - 1) as f64 } else { 0.0 };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(idx, value)| format!("{:.1},{:.1}", 2.0 + step * idx as f64, height - 3.0 - (*value as f64 / most) * (height - 6.0)))
        .collect();
    let mut out = format!(
        r#"<svg class="chart sparkline" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title)
    );
    if !points.is_empty() {
        let _ = write!(out, r##"<polyline points="{}" fill="none" stroke="#3a6ea5" stroke-width="1.5"/>"##, points.join(" "));
        if let Some(last) = points.last() {
            let (x, y) = last.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(out, r##"<circle cx="{x}" cy="{y}" r="2.5" fill="#1f3b63"/>"##);
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiskers_label_every_row_with_its_numbers_and_shape() {
        let svg = whiskers(
            "completion <by version>",
            &[
                Whisker { label: "v1".into(), value: 0.5, low: 0.4, high: 0.6, baseline: true },
                Whisker { label: "v2".into(), value: 0.7, low: 0.62, high: 0.78, baseline: false },
            ],
        );
        assert!(svg.contains("<title>completion &lt;by version&gt;</title>"));
        assert!(svg.contains("50.0% [40.0–60.0]") && svg.contains("70.0% [62.0–78.0]"));
        assert_eq!((svg.matches("<circle").count(), svg.matches("rotate(45").count()), (1, 1), "baseline circle, candidate diamond");
    }

    #[test]
    fn funnel_bars_shrink_with_the_steps_and_say_the_drop_off() {
        let svg = funnel("f", &[FunnelStep { step: "start".into(), reached: 100, dropped: 20 }, FunnelStep { step: "end".into(), reached: 80, dropped: 0 }], "dropped");
        assert!(svg.contains(r#"width="170.0""#) && svg.contains(r#"width="136.0""#), "{svg}");
        assert!(svg.contains("100 · −20 dropped (20%)"));
    }

    #[test]
    fn sparkline_draws_one_point_per_value() {
        let svg = sparkline("sessions per day", &[1, 5, 3]);
        assert_eq!(svg.split("points=\"").nth(1).unwrap().split('"').next().unwrap().split(' ').count(), 3);
        assert!(sparkline("empty", &[]).ends_with("</svg>"));
    }
}
