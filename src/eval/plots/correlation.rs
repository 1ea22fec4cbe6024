//! `score_correlation.png`, the seed's chart 4.4: every row's Direct score against its
//! Stage2 score (a deterministic sample of at most 20,000 points), titled with both
//! correlations over all rows: Pearson, and Spearman (Pearson of the average ranks).

use plotters::prelude::*;

use super::{padded, text_error, xy_chart, Area, DIRECT_COLOUR};
use crate::eval::report::thousands;

/// At most this many points are drawn; the correlations use every row.
const MAX_POINTS: usize = 20_000;

pub fn chart(area: &Area<'_>, d: &[f64], s: &[f64]) -> Result<(), String> {
    let n = d.len().min(s.len());
    let linear = pearson(&d[..n], &s[..n]);
    let spearman = pearson(&average_ranks(&d[..n]), &average_ranks(&s[..n]));
    let shown = |c: Option<f64>| c.map_or_else(|| "n/a".to_string(), |c| format!("{c:.3}"));
    let step = n.div_ceil(MAX_POINTS).max(1);
    let points: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (d[i], s[i]))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let x = padded(points.iter().map(|p| p.0), 1e-9, (0.0, 1.0));
    let y = padded(points.iter().map(|p| p.1), 1e-9, (0.0, 1.0));
    let title = format!(
        "Direct vs Stage2 scores: Pearson {}, Spearman {}",
        shown(linear),
        shown(spearman)
    );
    let x_desc = format!(
        "Direct score (recall model output; {} of {} rows drawn)",
        thousands(points.len()),
        thousands(n)
    );
    let mut chart = xy_chart(
        area,
        &title,
        (x, y),
        (&x_desc, "Stage2 score (rerank model output)"),
        (&|v| format!("{v:.3}"), &|v| format!("{v:.3}")),
    )?;
    chart
        .draw_series(
            points
                .iter()
                .map(|&p| Circle::new(p, 2, DIRECT_COLOUR.mix(0.35).filled())),
        )
        .map_err(text_error)?;
    Ok(())
}

/// Pearson's correlation; `None` when either side is constant or there are < 2 values.
fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    if a.len() < 2 {
        return None;
    }
    let (mean_a, mean_b) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x - mean_a, y - mean_b);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    let r = ab / (aa * bb).sqrt();
    r.is_finite().then_some(r.clamp(-1.0, 1.0))
}

/// 1-based ranks, ties sharing their average rank.
fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut ranks = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| x[i] == x[order[start]])
                .count();
        let average = (start + end + 1) as f64 / 2.0;
        order[start..end].iter().for_each(|&i| ranks[i] = average);
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlations() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), Some(1.0));
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0]), None);
        assert_eq!(pearson(&[1.0], &[1.0]), None);
    }
}
