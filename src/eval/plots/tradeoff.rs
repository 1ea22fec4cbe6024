//! `tradeoff.png`, the seed's chart 4.3: Top-1% capture against NDCG@100, one numbered
//! point per method row (Direct-only, Stage2-only, recall-rerank per M, fusion per M and
//! alpha, each profile), with a key naming every number, so the methods that trade one
//! metric for the other stand out even when many points coincide.

use plotters::prelude::*;

use super::{
    padded, text_error, value_style, xy_chart, Area, DIRECT_COLOUR, FAMILY, RECALL5_COLOUR,
    RERANK_COLOUR, STAGE2_COLOUR,
};
use crate::eval::metrics::Evaluation;
use crate::eval::report::{method_rows, Row};

const FUSION_COLOUR: RGBColor = RGBColor(127, 127, 127);
const PROFILE_COLOUR: RGBColor = RGBColor(214, 39, 40);

/// The colour and legend name of a row's kind.
fn kind(row: &Row) -> (RGBColor, &'static str) {
    match row.name.as_str() {
        "direct" => (DIRECT_COLOUR, "Direct-only"),
        "stage2" => (STAGE2_COLOUR, "Stage2-only"),
        "recall_rerank" => (RERANK_COLOUR, "Recall-Rerank (per M)"),
        "fusion" => (FUSION_COLOUR, "Fusion (per M and alpha)"),
        name if name.starts_with("profile:") => (PROFILE_COLOUR, "Profile of the bundle"),
        _ => (RECALL5_COLOUR, "other"),
    }
}

/// Width of the key on the right: the legend, then every point's number and name.
const KEY_WIDTH: u32 = 330;

pub fn chart(area: &Area<'_>, evaluation: &Evaluation) -> Result<(), String> {
    let rows = method_rows(evaluation);
    let points: Vec<(f64, f64, &Row)> = rows
        .iter()
        .map(|r| (100.0 * r.top1, r.ndcg100, r))
        .filter(|(x, y, _)| x.is_finite() && y.is_finite())
        .collect();
    let (width, _) = area.dim_in_pixel();
    let (plot, key) = area.split_horizontally(width.saturating_sub(KEY_WIDTH));
    let x = padded(points.iter().map(|p| p.0), 1.0, (0.0, 100.0));
    let y = padded(points.iter().map(|p| p.1), 0.01, (0.0, 1.0));
    let mut chart = xy_chart(
        &plot,
        "Trade-off: Top-1% capture against NDCG@100",
        ((x.0.max(0.0), x.1), (y.0.max(0.0), y.1)),
        (
            "Top-1% capture (share of the true Top-1% in the first 1%)",
            "NDCG@100",
        ),
        (&|v| format!("{v:.1}%"), &|v| format!("{v:.3}")),
    )?;
    // Points that (nearly) coincide share one label listing their numbers, runs shortened
    // (`8–12, 18`), so that labels do not overwrite each other.
    let near = |a: &(f64, f64, &Row), b: &(f64, f64, &Row)| {
        (a.0 - b.0).abs() <= 0.01 * (x.1 - x.0) && (a.1 - b.1).abs() <= 0.03 * (y.1 - y.0)
    };
    let mut labelled = vec![false; points.len()];
    for (i, point) in points.iter().enumerate() {
        let (colour, _) = kind(point.2);
        chart
            .draw_series([Circle::new((point.0, point.1), 6, colour.filled())])
            .map_err(text_error)?;
        if labelled[i] {
            continue;
        }
        let cluster: Vec<usize> = (i..points.len())
            .filter(|&j| !labelled[j] && near(point, &points[j]))
            .collect();
        cluster.iter().for_each(|&j| labelled[j] = true);
        let colour = if cluster.iter().all(|&j| kind(points[j].2).0 == colour) {
            colour
        } else {
            BLACK
        };
        chart
            .draw_series([EmptyElement::at((point.0, point.1))
                + Text::new(numbers(&cluster), (10, -8), value_style().color(&colour))])
            .map_err(text_error)?;
    }
    draw_key(&key, &points)
}

/// The key: one line per kind of method, then one numbered line per point with its name
/// and values, in the colour of its kind; the lines shrink to fit.
fn draw_key(key: &Area<'_>, points: &[(f64, f64, &Row)]) -> Result<(), String> {
    let mut kinds: Vec<(RGBColor, &str)> = Vec::new();
    for point in points {
        let k = kind(point.2);
        if !kinds.iter().any(|seen| seen.1 == k.1) {
            kinds.push(k);
        }
    }
    let (_, height) = key.dim_in_pixel();
    let lines = (kinds.len() + points.len() + 1) as i32;
    let step = ((height as i32 - 40) / lines.max(1)).clamp(8, 18);
    let font = (FAMILY, step as f64 - 2.0).into_font();
    let mut y = 30;
    for (colour, name) in &kinds {
        key.draw(&Circle::new((12, y + step / 2), 5, colour.filled()))
            .map_err(text_error)?;
        key.draw(&Text::new(name.to_string(), (24, y), font.clone()))
            .map_err(text_error)?;
        y += step;
    }
    y += step;
    for (i, (top1, ndcg, row)) in points.iter().enumerate() {
        let (colour, _) = kind(row);
        let line = format!("{}. {}: {top1:.2}%, {ndcg:.4}", i + 1, short(row));
        key.draw(&Text::new(line, (8, y), font.clone().color(&colour)))
            .map_err(text_error)?;
        y += step;
    }
    Ok(())
}

/// A point's name in the key: `Direct-only`, `Recall-Rerank M=200`, `Fusion M=200 a=0.5`,
/// `profile hybrid`.
fn short(row: &Row) -> String {
    match (row.name.as_str(), row.m, row.alpha) {
        ("direct", ..) => "Direct-only".into(),
        ("stage2", ..) => "Stage2-only".into(),
        ("recall_rerank", Some(m), _) => format!("Recall-Rerank M={m}"),
        ("fusion", Some(m), Some(a)) => format!("Fusion M={m} a={a}"),
        (name, ..) => name.replacen("profile:", "profile ", 1),
    }
}

/// 1-based point numbers with runs shortened: `[7, 8, 9, 11]` → `8–10, 12`.
fn numbers(indices: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut start = 0;
    while start < indices.len() {
        let mut end = start;
        while end + 1 < indices.len() && indices[end + 1] == indices[end] + 1 {
            end += 1;
        }
        parts.push(if end > start {
            format!("{}–{}", indices[start] + 1, indices[end] + 1)
        } else {
            (indices[start] + 1).to_string()
        });
        start = end + 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_of_numbers_are_shortened() {
        assert_eq!(super::numbers(&[7, 8, 9, 11]), "8–10, 12");
        assert_eq!(super::numbers(&[0]), "1");
        assert_eq!(super::numbers(&[]), "");
    }
}
