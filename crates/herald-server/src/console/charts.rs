//! Charts drawn on the server as inline SVG: the page needs no script and no chart library, the CSP
//! stays `default-src 'self'`, and a chart is as testable as any other markup. Colours come from
//! classes in console.css (an SVG `style` attribute would break the CSP). Each chart carries its
//! numbers as a table too, for screen readers and for anyone who wants the figures.

use maud::{Markup, html};

/// The drawing area, in the SVG's own units (the stylesheet scales it to the page's width).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
/// Room for the y axis labels on the left and the x labels below.
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 18.0;
const TOP: f64 = 8.0;

/// One line or one layer of bars: a value per slot (`None`: nothing measured then).
pub(crate) struct Series<'a> {
    pub label: &'a str,
    /// The CSS class that colours it (`p50`, `p99`, `count`, `bad`).
    pub class: &'a str,
    pub values: Vec<Option<f64>>,
}

/// The smallest of 1, 2 and 5 times a power of ten that is at least `value`: an axis top people read.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|top| *top >= value)
        .unwrap_or(10.0 * power)
}

/// A value as an axis or table shows it: whole numbers plain, small ones with one decimal.
pub(crate) fn figure(value: f64) -> String {
    if value >= 100.0 || value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.1}") }
}

struct Frame {
    slots: usize,
    top: f64,
}

impl Frame {
    fn new(slots: usize, series: &[Series<'_>], stacked: bool) -> Frame {
        let max = if stacked {
            (0..slots)
                .map(|slot| series.iter().filter_map(|s| s.values.get(slot).copied().flatten()).sum::<f64>())
                .fold(0.0, f64::max)
        } else {
            series.iter().flat_map(|s| s.values.iter().flatten().copied()).fold(0.0, f64::max)
        };
        Frame { slots: slots.max(1), top: nice_ceiling(max) }
    }

    fn slot_width(&self) -> f64 {
        (WIDTH - LEFT) / self.slots as f64
    }

    /// The x of a slot's centre.
    fn x(&self, slot: usize) -> f64 {
        LEFT + self.slot_width() * (slot as f64 + 0.5)
    }

    fn y(&self, value: f64) -> f64 {
        let plot = HEIGHT - BOTTOM - TOP;
        TOP + plot * (1.0 - (value / self.top).clamp(0.0, 1.0))
    }

    /// Axes, horizontal grid lines with their values, and a label under every `every`-th slot.
    fn axes(&self, labels: &[String], unit: &str) -> Markup {
        let every = (self.slots / 6).max(1);
        html! {
            @for step in 0..=4 {
                @let value = self.top * f64::from(step) / 4.0;
                line.grid x1=(LEFT) x2=(WIDTH) y1=(self.y(value)) y2=(self.y(value)) {}
                text.axis x=(LEFT - 4.0) y=(self.y(value) + 3.0) text-anchor="end" { (figure(value)) (unit) }
            }
            @for (slot, label) in labels.iter().enumerate() {
                @if slot % every == 0 {
                    text.axis x=(self.x(slot)) y=(HEIGHT - 4.0) text-anchor="middle" { (label) }
                }
            }
        }
    }
}

/// Lines of values over slots; a slot without a value breaks the line.
pub(crate) fn line_chart(title: &str, labels: &[String], series: &[Series<'_>], unit: &str) -> Markup {
    let frame = Frame::new(labels.len(), series, false);
    html! {
        figure.chart {
            figcaption { (title) }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) {
                (frame.axes(labels, unit))
                @for line in series {
                    @for segment in segments(&line.values) {
                        @if segment.len() > 1 {
                            polyline class=(format!("line {}", line.class)) points=(
                                segment.iter().map(|(slot, value)| format!("{:.1},{:.1}", frame.x(*slot), frame.y(*value)))
                                    .collect::<Vec<_>>().join(" ")
                            ) {}
                        }
                        @for (slot, value) in segment {
                            circle class=(format!("dot {}", line.class)) cx=(format!("{:.1}", frame.x(slot))) cy=(format!("{:.1}", frame.y(value))) r="2" {
                                title { (labels[slot]) ": " (line.label) " " (figure(value)) (unit) }
                            }
                        }
                    }
                }
            }
            (legend(series))
            (table(title, labels, series, unit))
        }
    }
}

/// Bars over slots, the series stacked bottom to top in the order given.
pub(crate) fn bar_chart(title: &str, labels: &[String], series: &[Series<'_>], unit: &str) -> Markup {
    let frame = Frame::new(labels.len(), series, true);
    let width = (frame.slot_width() * 0.8).max(1.0);
    // (slot, series, value, the stack's height below it)
    let mut bars = Vec::new();
    for slot in 0..labels.len() {
        let mut below = 0.0;
        for (index, layer) in series.iter().enumerate() {
            let value = layer.values.get(slot).copied().flatten().unwrap_or(0.0);
            if value > 0.0 {
                bars.push((slot, index, value, below));
                below += value;
            }
        }
    }
    html! {
        figure.chart {
            figcaption { (title) }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) {
                (frame.axes(labels, unit))
                @for (slot, index, value, below) in bars {
                    @let (top, bottom) = (frame.y(below + value), frame.y(below));
                    rect class=(format!("bar {}", series[index].class))
                        x=(format!("{:.1}", frame.x(slot) - width / 2.0)) y=(format!("{top:.1}"))
                        width=(format!("{width:.1}")) height=(format!("{:.1}", (bottom - top).max(0.5))) {
                        title { (labels[slot]) ": " (series[index].label) " " (figure(value)) }
                    }
                }
            }
            (legend(series))
            (table(title, labels, series, unit))
        }
    }
}

fn legend(series: &[Series<'_>]) -> Markup {
    html! {
        ul.legend {
            @for line in series {
                li { span class=(format!("swatch {}", line.class)) {} (line.label) }
            }
        }
    }
}

/// The chart's numbers, folded away: only the slots with a value.
fn table(title: &str, labels: &[String], series: &[Series<'_>], unit: &str) -> Markup {
    html! {
        details.figures {
            summary { "Figures" }
            table {
                caption { (title) }
                thead { tr { th { "When" } @for line in series { th { (line.label) } } } }
                tbody {
                    @for (slot, label) in labels.iter().enumerate() {
                        @if series.iter().any(|line| line.values.get(slot).copied().flatten().is_some_and(|v| v > 0.0)) {
                            tr {
                                td { (label) }
                                @for line in series {
                                    td { @if let Some(value) = line.values.get(slot).copied().flatten() { (figure(value)) (unit) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The runs of consecutive slots that have a value.
fn segments(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut segments = vec![Vec::new()];
    for (slot, value) in values.iter().enumerate() {
        match value {
            Some(value) => segments.last_mut().expect("never empty").push((slot, *value)),
            None if segments.last().is_some_and(|last| !last.is_empty()) => segments.push(Vec::new()),
            None => {}
        }
    }
    segments.retain(|segment| !segment.is_empty());
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_axis_tops_at_one_two_or_five_times_a_power_of_ten() {
        let tops: Vec<f64> =
            [0.0, 0.7, 1.0, 1.3, 3.0, 7.5, 12.0, 480.0].into_iter().map(nice_ceiling).collect();
        assert_eq!(tops, [1.0, 1.0, 1.0, 2.0, 5.0, 10.0, 20.0, 500.0]);
    }

    #[test]
    fn a_slot_without_a_value_breaks_the_line() {
        let values = [None, Some(1.0), Some(2.0), None, None, Some(3.0)];
        assert_eq!(segments(&values), [vec![(1, 1.0), (2, 2.0)], vec![(5, 3.0)]]);
    }

    #[test]
    fn stacked_bars_are_drawn_for_each_nonzero_value_and_the_figures_list_them() {
        let labels: Vec<String> = ["15:00", "15:01", "15:02"].map(String::from).to_vec();
        let series = [
            Series { label: "ok", class: "count", values: vec![Some(4.0), None, Some(1.0)] },
            Series { label: "failed", class: "bad", values: vec![Some(1.0), None, None] },
        ];
        let svg = bar_chart("Runs per minute", &labels, &series, "").into_string();
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(svg.contains("15:00: failed 1"), "{svg}");
        assert_eq!(svg.matches("<tr><td>").count(), 2, "the empty minute has no row: {svg}");
    }
}
