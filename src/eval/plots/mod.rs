//! The PNG charts of `giftrank eval --plots`: recall coverage vs M, NDCG@100 vs M
//! (Direct-only and Stage2-only as reference lines), the method comparison (grouped
//! bars), and the seed's charts 4.3 (`tradeoff`: Top-1% against NDCG@100 per method) and
//! 4.4 (`correlation`: Direct against Stage2 scores). Drawn with plotters on a bitmap,
//! text in the embedded DejaVu Sans, so no system font library is needed. The numbers
//! come from `metrics`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::metrics::{top_k_size, Evaluation, RankingMetrics};
use super::report::{rows, RANKING_METRICS};

mod correlation;
mod tradeoff;

/// DejaVu Sans (licence: `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
/// The family name every text style below (and plotters' own defaults) asks for.
const FAMILY: &str = "sans-serif";

/// File names written into the `--plots` directory.
pub const RECALL_FILE: &str = "recall_coverage_vs_m.png";
pub const NDCG_FILE: &str = "ndcg100_vs_m.png";
pub const COMPARISON_FILE: &str = "method_comparison.png";
pub const TRADEOFF_FILE: &str = "tradeoff.png";
pub const CORRELATION_FILE: &str = "score_correlation.png";

const SIZE: (u32, u32) = (1000, 620);
const DIRECT_COLOUR: RGBColor = RGBColor(31, 119, 180);
const STAGE2_COLOUR: RGBColor = RGBColor(255, 127, 14);
const RERANK_COLOUR: RGBColor = RGBColor(44, 160, 44);
const RECALL5_COLOUR: RGBColor = RGBColor(148, 103, 189);

/// A chart that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write chart {}: {message}", path.display())]
pub struct PlotError {
    pub path: PathBuf,
    pub message: String,
}

/// What the charts are drawn from.
#[derive(Debug, Clone, Copy)]
pub struct Charts<'a> {
    pub evaluation: &'a Evaluation,
    /// The M of the recall-rerank bars in the method comparison.
    pub shown: Option<usize>,
    /// Every row's Direct and Stage2 score (the score correlation chart); may be empty.
    pub direct: &'a [f64],
    pub stage2: &'a [f64],
}

/// Writes the five charts into `dir` (created if needed); returns their paths.
pub fn write_all(charts: &Charts<'_>, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    std::fs::create_dir_all(dir).map_err(|e| PlotError {
        path: dir.to_owned(),
        message: e.to_string(),
    })?;
    register_font().map_err(|message| PlotError {
        path: dir.to_owned(),
        message,
    })?;
    let drawings: [(&str, ChartFn); 5] = [
        (RECALL_FILE, &|area, c| recall_chart(area, c.evaluation)),
        (NDCG_FILE, &|area, c| ndcg_chart(area, c.evaluation)),
        (COMPARISON_FILE, &|area, c| {
            comparison_chart(area, c.evaluation, c.shown)
        }),
        (TRADEOFF_FILE, &|area, c| {
            tradeoff::chart(area, c.evaluation)
        }),
        (CORRELATION_FILE, &|area, c| {
            correlation::chart(area, c.direct, c.stage2)
        }),
    ];
    let mut written = Vec::new();
    for (file, draw) in drawings {
        let path = dir.join(file);
        let fail = |message: String| PlotError {
            path: path.clone(),
            message,
        };
        {
            let root = BitMapBackend::new(&path, SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
            draw(&root, charts).map_err(fail)?;
            root.present().map_err(|e| fail(e.to_string()))?;
        }
        written.push(path);
    }
    Ok(written)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type ChartFn<'f> = &'f dyn Fn(&Area<'_>, &Charts<'_>) -> Result<(), String>;

fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded font does not parse".to_string())
        })
        .clone()
}

fn title_style() -> TextStyle<'static> {
    (FAMILY, 26).into_font().into()
}

fn label_style() -> TextStyle<'static> {
    (FAMILY, 18).into_font().into()
}

fn value_style() -> TextStyle<'static> {
    (FAMILY, 15).into_font().into()
}

fn text_error(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The Ms with their metric, ascending in M, finite values only.
fn by_m(
    evaluation: &Evaluation,
    get: impl Fn(&super::RecallRerankMetrics) -> f64,
) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = evaluation
        .recall_rerank
        .iter()
        .map(|r| (r.m as f64, get(r)))
        .filter(|(_, v)| v.is_finite())
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// The x axis of the charts by M: logarithmic (the usual Ms span 50 to 1000), with a tick
/// at every evaluated M and a margin on both sides.
fn m_axis(points: &[(f64, f64)]) -> WithKeyPoints<LogCoord<f64>> {
    let low = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let high = points.iter().map(|p| p.0).fold(0.0, f64::max);
    let (low, high) = if low.is_finite() && high >= low {
        (low, high)
    } else {
        (1.0, 1.0)
    };
    (low / 1.3..high * 1.3)
        .log_scale()
        .with_key_points(points.iter().map(|p| p.0).collect())
}

/// A chart on plain `f64` axes (the trade-off and the score correlation).
type XyChart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The lowest and highest finite value, padded by `pad` of the span (at least `min_pad`)
/// below and `2·pad` above (room for point labels); `fallback` when there is none.
fn padded(values: impl Iterator<Item = f64>, min_pad: f64, fallback: (f64, f64)) -> (f64, f64) {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if low > high {
        return fallback;
    }
    let pad = ((high - low) * 0.1).max(min_pad);
    (low - pad, high + 2.0 * pad)
}

/// How an axis writes its tick values.
type Tick<'f> = &'f dyn Fn(&f64) -> String;

/// A titled chart on `f64` axes with described, formatted axes and no grid.
fn xy_chart<'a, 'b: 'a>(
    area: &'a Area<'b>,
    title: &str,
    (x, y): ((f64, f64), (f64, f64)),
    (x_desc, y_desc): (&str, &str),
    (x_format, y_format): (Tick<'_>, Tick<'_>),
) -> Result<XyChart<'a, 'b>, String> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, title_style())
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(text_error)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_format)
        .y_label_formatter(y_format)
        .axis_desc_style(label_style())
        .label_style(label_style())
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(text_error)?;
    Ok(chart)
}

/// 0 up to well above the largest value (room for the value labels and the legend), at
/// most `cap`; never an empty range.
fn upper(values: impl Iterator<Item = f64>, cap: f64) -> f64 {
    let max = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    if max <= 0.0 {
        cap
    } else {
        (max * 1.4).min(cap)
    }
}

fn recall_chart(area: &Area<'_>, evaluation: &Evaluation) -> Result<(), String> {
    let recall1 = by_m(evaluation, |r| 100.0 * r.recall1);
    let recall5 = by_m(evaluation, |r| 100.0 * r.recall5);
    let top = upper(recall1.iter().chain(&recall5).map(|p| p.1), 100.0);
    let n = evaluation.n;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Recall coverage: how much of the true Top-K% the Direct Top-M holds",
            title_style(),
        )
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(m_axis(&recall1), 0.0..top)
        .map_err(text_error)?;
    chart
        .configure_mesh()
        .x_desc("M (rows recalled by Direct)")
        .y_desc("share of the true Top-K% recalled")
        .y_label_formatter(&|v| format!("{v:.0}%"))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .axis_desc_style(label_style())
        .label_style(label_style())
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(text_error)?;
    // At each M the larger of the two values is written above its point and the smaller
    // below, so the labels stay clear of each other and of the other line.
    let r1_above: Vec<bool> = recall1
        .iter()
        .zip(&recall5)
        .map(|(a, b)| a.1 >= b.1)
        .collect();
    let series = [
        (
            recall1,
            DIRECT_COLOUR,
            format!("Recall@1% (true Top-1% = {})", rows(top_k_size(1, n))),
            true,
        ),
        (
            recall5,
            RECALL5_COLOUR,
            format!("Recall@5% (true Top-5% = {})", rows(top_k_size(5, n))),
            false,
        ),
    ];
    for (points, colour, name, is_recall1) in series {
        let place = |i: usize| {
            if r1_above.get(i).copied().unwrap_or(true) == is_recall1 {
                Label::Above
            } else if points.get(i).is_some_and(|p| p.1 < 0.1 * top) {
                Label::Right // below would run into the axis labels
            } else {
                Label::Below
            }
        };
        line_with_values(&mut chart, &points, colour, &name, place, |v| {
            format!("{v:.2}%")
        })?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

fn ndcg_chart(area: &Area<'_>, evaluation: &Evaluation) -> Result<(), String> {
    let rerank = by_m(evaluation, |r| r.metrics.ndcg100);
    let direct = evaluation.direct.ndcg100;
    let stage2 = evaluation.stage2.ndcg100;
    let top = upper(rerank.iter().map(|p| p.1).chain([direct, stage2]), 1.25);
    let x_range = (
        rerank.first().map_or(1.0, |p| p.0) / 1.3,
        rerank.last().map_or(1.0, |p| p.0) * 1.3,
    );
    let mut chart = ChartBuilder::on(area)
        .caption("NDCG@100 of Recall-Rerank by M", title_style())
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(m_axis(&rerank), 0.0..top)
        .map_err(text_error)?;
    chart
        .configure_mesh()
        .x_desc("M (rows recalled by Direct, then reranked by Stage2)")
        .y_desc("NDCG@100")
        .y_label_formatter(&|v| format!("{v:.2}"))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .axis_desc_style(label_style())
        .label_style(label_style())
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(text_error)?;
    for (value, colour, name) in [
        (direct, DIRECT_COLOUR, "Direct-only"),
        (stage2, STAGE2_COLOUR, "Stage2-only"),
    ] {
        if !value.is_finite() {
            continue;
        }
        let style = colour.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(
                [(x_range.0, value), (x_range.1, value)],
                10,
                6,
                style,
            ))
            .map_err(text_error)?
            .label(format!("{name} ({value:.4})"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
    }
    line_with_values(
        &mut chart,
        &rerank,
        RERANK_COLOUR,
        "Recall-Rerank (Direct Top-M, Stage2 order)",
        |_| Label::Above,
        |v| format!("{v:.4}"),
    )?;
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

type MChart<'a> =
    ChartContext<'a, BitMapBackend<'a>, Cartesian2d<WithKeyPoints<LogCoord<f64>>, RangedCoordf64>>;

/// Where a point's value is written.
#[derive(Debug, Clone, Copy)]
enum Label {
    Above,
    Below,
    Right,
}

/// A line with round markers and each point's value written beside it.
fn line_with_values<'a>(
    chart: &mut MChart<'a>,
    points: &[(f64, f64)],
    colour: RGBColor,
    name: &str,
    place: impl Fn(usize) -> Label,
    format: impl Fn(f64) -> String,
) -> Result<(), String> {
    let style = colour.stroke_width(3);
    chart
        .draw_series(LineSeries::new(points.iter().copied(), style))
        .map_err(text_error)?
        .label(name)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
    chart
        .draw_series(points.iter().map(|&p| Circle::new(p, 5, colour.filled())))
        .map_err(text_error)?;
    chart
        .draw_series(points.iter().enumerate().map(|(i, &(x, y))| {
            let text = format(y);
            let centred = -(text.len() as i32) * 4;
            let (dx, dy) = match place(i) {
                Label::Above => (centred, -26),
                Label::Below => (centred, 10),
                Label::Right => (10, -20),
            };
            EmptyElement::at((x, y)) + Text::new(text, (dx, dy), value_style().color(&colour))
        }))
        .map_err(text_error)?;
    Ok(())
}

fn legend<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<(), String>
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font(label_style())
        .margin(12)
        .draw()
        .map_err(text_error)
}

fn comparison_chart(
    area: &Area<'_>,
    evaluation: &Evaluation,
    shown: Option<usize>,
) -> Result<(), String> {
    let mut methods: Vec<(String, &RankingMetrics, RGBColor)> = vec![
        ("Direct-only".into(), &evaluation.direct, DIRECT_COLOUR),
        ("Stage2-only".into(), &evaluation.stage2, STAGE2_COLOUR),
    ];
    if let Some(r) = shown.and_then(|m| evaluation.recall_rerank.iter().find(|r| r.m == m)) {
        methods.push((
            format!("Recall-Rerank (M={})", r.m),
            &r.metrics,
            RERANK_COLOUR,
        ));
    }
    let values = || {
        methods
            .iter()
            .flat_map(|(_, m, _)| {
                RANKING_METRICS
                    .iter()
                    .filter_map(move |metric| (metric.get)(m))
            })
            .filter(|v| v.is_finite())
    };
    let low = values().fold(0.0, f64::min);
    let high = values().fold(0.0, f64::max).max(0.05);
    let bottom = if low < 0.0 { low * 1.25 } else { 0.0 };
    // Headroom above the tallest bar for its value and the legend.
    let top = high * 1.45;
    let groups = RANKING_METRICS.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Method comparison on N = {}", rows(evaluation.n)),
            title_style(),
        )
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(-0.5..groups - 0.5, bottom..top)
        .map_err(text_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(RANKING_METRICS.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                RANKING_METRICS
                    .get(i as usize)
                    .map_or_else(String::new, |metric| metric.name.to_string())
            } else {
                String::new()
            }
        })
        .y_desc("value (capture as a share of the true Top-K%)")
        .y_label_formatter(&|v| format!("{v:.2}"))
        .axis_desc_style(label_style())
        .label_style(label_style())
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(text_error)?;
    let width = 0.8 / methods.len() as f64;
    for (j, (name, metrics, colour)) in methods.iter().enumerate() {
        let colour = *colour;
        let offset = -0.4 + width * j as f64;
        let bars: Vec<(f64, f64, String)> = RANKING_METRICS
            .iter()
            .enumerate()
            .filter_map(|(i, metric)| {
                let v = (metric.get)(metrics).filter(|v| v.is_finite())?;
                Some((i as f64 + offset, v, (metric.format)(v)))
            })
            .collect();
        chart
            .draw_series(bars.iter().map(|&(x, v, _)| {
                Rectangle::new([(x + 0.01, 0.0), (x + width - 0.01, v)], colour.filled())
            }))
            .map_err(text_error)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], colour.filled()));
        chart
            .draw_series(bars.iter().map(|(x, v, text)| {
                let above = if *v >= 0.0 { -20 } else { 4 };
                EmptyElement::at((x + width / 2.0, *v))
                    + Text::new(
                        text.clone(),
                        (-(text.len() as i32) * 4, above),
                        value_style(),
                    )
            }))
            .map_err(text_error)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}
