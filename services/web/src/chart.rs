//! Charts drawn on the server as SVG, so that a page shows them with no script and nothing
//! loaded from elsewhere: bars scaled to the largest value, each labelled, the total in the
//! chart's accessible name.

use askama::Template;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
/// Room for the scale on the left and the labels below.
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 36.0;
const TOP: f64 = 40.0;

/// A bar chart of labelled values.
#[derive(Template)]
#[template(path = "chart.svg", escape = "html")]
pub(crate) struct BarChart {
    title: String,
    /// The sum of the values, as the chart shows it; empty where a sum means nothing.
    total: String,
    bars: Vec<Bar>,
    /// The largest value, where the scale's top line is.
    top: String,
    width: f64,
    height: f64,
    plot_top: f64,
    plot_left: f64,
    baseline: f64,
}

pub(crate) struct Bar {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
    middle: f64,
    label: String,
    value: String,
    /// Long series label every few bars only, so the labels do not overlap.
    labelled: bool,
}

/// A number as a chart shows it: whole numbers without decimals, others with one.
fn figure(value: f64) -> String {
    // An empty sum is -0.
    let value = value + 0.0;
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.1}") }
}

impl BarChart {
    pub(crate) fn new(title: &str, values: &[(String, f64)]) -> Self {
        let largest = values.iter().map(|(_, value)| *value).fold(0.0, f64::max);
        let scale = if largest > 0.0 { (HEIGHT - TOP - BOTTOM) / largest } else { 0.0 };
        let slot = (WIDTH - LEFT) / values.len().max(1) as f64;
        let every = values.len().div_ceil(16).max(1);
        let baseline = HEIGHT - BOTTOM;
        let bars = values
            .iter()
            .enumerate()
            .map(|(index, (label, value))| {
                let height = value.max(0.0) * scale;
                let x = LEFT + slot * index as f64 + slot * 0.15;
                Bar {
                    x,
                    y: baseline - height,
                    width: slot * 0.7,
                    height,
                    middle: x + slot * 0.35,
                    label: label.clone(),
                    value: figure(*value),
                    labelled: index % every == 0,
                }
            })
            .collect();
        Self {
            title: title.to_owned(),
            total: figure(values.iter().map(|(_, value)| value).sum()),
            bars,
            top: figure(largest),
            width: WIDTH,
            height: HEIGHT,
            plot_top: TOP,
            plot_left: LEFT,
            baseline,
        }
    }

    /// For values that do not add up (averages, agents per hour): no total is shown.
    pub(crate) fn without_total(mut self) -> Self {
        self.total.clear();
        self
    }

    /// The chart as SVG markup, to put in a page as it is.
    pub(crate) fn svg(&self) -> String {
        self.render().unwrap_or_else(|error| {
            tracing::error!(%error, "chart not drawn");
            String::new()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_the_total_is_named() {
        let chart =
            BarChart::new("Tickets <created>", &[("Mon".into(), 2.0), ("Tue".into(), 4.0), ("Wed".into(), 0.0)]);
        assert_eq!(chart.total, "6");
        assert!((chart.bars[1].height - (HEIGHT - TOP - BOTTOM)).abs() < 1e-9, "the largest bar fills the plot");
        assert!((chart.bars[0].height * 2.0 - chart.bars[1].height).abs() < 1e-9);
        assert_eq!(chart.bars[2].height, 0.0);
        let svg = chart.svg();
        assert!(svg.starts_with("<svg") && svg.contains("Tickets &#60;created&#62;"), "{svg}");
        assert!(!svg.contains("<created>"), "labels are escaped");
    }

    #[test]
    fn an_empty_or_all_zero_series_draws_without_dividing_by_zero() {
        assert_eq!(BarChart::new("none", &[]).total, "0");
        let flat = BarChart::new("flat", &[("a".into(), 0.0)]);
        assert!(flat.bars[0].height.is_finite() && flat.bars[0].y.is_finite());
    }

    #[test]
    fn long_series_label_every_few_bars() {
        let days: Vec<(String, f64)> = (0..90).map(|day| (format!("d{day}"), 1.0)).collect();
        let chart = BarChart::new("90 days", &days);
        assert_eq!(chart.bars.iter().filter(|bar| bar.labelled).count(), 15);
        assert_eq!(chart.total, "90");
        assert_eq!(figure(2.25), "2.2");
    }
}
