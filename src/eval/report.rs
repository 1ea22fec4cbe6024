//! How an [`Evaluation`] is shown: the seed experiment's two Markdown tables (method
//! comparison; one row per M) with the best M by NDCG@100, and the JSON of DESIGN.md §7.
//! The numbers themselves come from `metrics`.

use std::fmt::Write as _;

use serde::Serialize;

use super::metrics::{top_k_size, Evaluation, RankingMetrics, RecallRerankMetrics};

/// One metric of a ranking as the method comparison (table and chart) shows it.
#[derive(Debug, Clone, Copy)]
pub struct ShownMetric {
    pub name: &'static str,
    /// The value; `None` when undefined.
    pub get: fn(&RankingMetrics) -> Option<f64>,
    pub format: fn(f64) -> String,
}

/// The rows of the method comparison, in the seed's order.
pub const RANKING_METRICS: [ShownMetric; 4] = [
    ShownMetric {
        name: "Top-1% Capture",
        get: |m| Some(m.top1),
        format: percent,
    },
    ShownMetric {
        name: "Top-5% Capture",
        get: |m| Some(m.top5),
        format: percent,
    },
    ShownMetric {
        name: "NDCG@100",
        get: |m| Some(m.ndcg100),
        format: fixed4,
    },
    ShownMetric {
        name: "Spearman",
        get: |m| m.spearman,
        format: fixed4,
    },
];

/// The M shown in the method comparison: `default_m` when it was evaluated, else the middle
/// of the evaluated Ms (the lower middle for an even count); `None` when no M was.
pub fn shown_m(evaluation: &Evaluation, default_m: usize) -> Option<usize> {
    let mut ms: Vec<usize> = evaluation.recall_rerank.iter().map(|r| r.m).collect();
    ms.sort_unstable();
    if ms.contains(&default_m) {
        Some(default_m)
    } else {
        ms.get(ms.len().saturating_sub(1) / 2).copied()
    }
}

/// The M with the highest NDCG@100 (ties: the smallest such M).
pub fn best_by_ndcg(evaluation: &Evaluation) -> Option<&RecallRerankMetrics> {
    evaluation
        .recall_rerank
        .iter()
        .fold(None, |best, r| match best {
            Some(b) if b.metrics.ndcg100 > r.metrics.ndcg100 => Some(b),
            Some(b) if b.metrics.ndcg100 == r.metrics.ndcg100 && b.m < r.m => Some(b),
            _ => Some(r),
        })
}

/// The summary line, the method comparison at M = `shown`, the table by M and the best M.
pub fn markdown(evaluation: &Evaluation, shown: Option<usize>) -> String {
    let mut out = String::new();
    let n = evaluation.n;
    let _ = writeln!(
        out,
        "N = {}; {} ({}) with label > 0; true Top-1% = {}, Top-5% = {}.\n",
        rows(n),
        thousands(evaluation.positives),
        percent(evaluation.positives as f64 / n.max(1) as f64),
        rows(top_k_size(1, n)),
        rows(top_k_size(5, n)),
    );
    method_comparison(&mut out, evaluation, shown);
    out.push('\n');
    by_m(&mut out, evaluation);
    out
}

fn method_comparison(out: &mut String, evaluation: &Evaluation, shown: Option<usize>) {
    let rerank = shown.and_then(|m| evaluation.recall_rerank.iter().find(|r| r.m == m));
    let mut columns: Vec<(String, &RankingMetrics)> = vec![
        ("Direct-only".into(), &evaluation.direct),
        ("Stage2-only".into(), &evaluation.stage2),
    ];
    if let Some(r) = rerank {
        columns.push((format!("Recall-Rerank (M={})", r.m), &r.metrics));
    }
    let _ = writeln!(out, "### Method comparison\n");
    let header: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let _ = writeln!(out, "| Metric | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(columns.len()));
    for metric in &RANKING_METRICS {
        let values: Vec<Option<f64>> = columns.iter().map(|(_, m)| (metric.get)(m)).collect();
        let cells = bold_best(&values, metric.format);
        let _ = writeln!(out, "| {} | {} |", metric.name, cells.join(" | "));
    }
}

fn by_m(out: &mut String, evaluation: &Evaluation) {
    let _ = writeln!(out, "### Recall-Rerank by M\n");
    if evaluation.recall_rerank.is_empty() {
        let _ = writeln!(out, "No M was evaluated.");
        return;
    }
    let _ = writeln!(
        out,
        "| Top-M | Recall@1% | Recall@5% | Top-1% | Top-5% | NDCG@100 | Spearman |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
    let best = best_by_ndcg(evaluation).map(|b| b.m);
    for r in &evaluation.recall_rerank {
        let ndcg = fixed4(r.metrics.ndcg100);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.m,
            percent(r.recall1),
            percent(r.recall5),
            percent(r.metrics.top1),
            percent(r.metrics.top5),
            if best == Some(r.m) {
                format!("**{ndcg}**")
            } else {
                ndcg
            },
            optional(r.metrics.spearman),
        );
    }
    if let Some(big) = evaluation.recall_rerank.iter().find(|r| r.m > evaluation.n) {
        let _ = writeln!(
            out,
            "\nM = {} is more than N = {}: it recalls all N rows.",
            big.m, evaluation.n
        );
    }
    if let Some(b) = best_by_ndcg(evaluation) {
        let _ = writeln!(
            out,
            "\nBest M by NDCG@100: {} ({}).",
            b.m,
            fixed4(b.metrics.ndcg100)
        );
    }
}

/// The JSON of DESIGN.md §7. An undefined Spearman (constant labels, or N = 1) is `null`.
pub fn json(evaluation: &Evaluation) -> String {
    let plain = |name, m: &RankingMetrics| JsonMethod {
        name,
        m: None,
        recall1: None,
        recall5: None,
        top1: m.top1,
        top5: m.top5,
        ndcg100: m.ndcg100,
        spearman: m.spearman,
    };
    let mut methods = vec![
        plain("direct", &evaluation.direct),
        plain("stage2", &evaluation.stage2),
    ];
    methods.extend(evaluation.recall_rerank.iter().map(|r| JsonMethod {
        m: Some(r.m),
        recall1: Some(r.recall1),
        recall5: Some(r.recall5),
        ..plain("recall_rerank", &r.metrics)
    }));
    let report = JsonReport {
        n: evaluation.n,
        methods,
    };
    // Serializing plain structs of numbers cannot fail; finite f64s print so that they
    // parse back to the same value.
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}

#[derive(Serialize)]
struct JsonReport {
    n: usize,
    methods: Vec<JsonMethod>,
}

#[derive(Serialize)]
struct JsonMethod {
    name: &'static str,
    m: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall5: Option<f64>,
    top1: f64,
    top5: f64,
    ndcg100: f64,
    spearman: Option<f64>,
}

/// The cells of one table row, the largest value(s) in bold (when there is a choice).
fn bold_best(values: &[Option<f64>], format: fn(f64) -> String) -> Vec<String> {
    let texts: Vec<Option<String>> = values.iter().map(|v| v.map(format)).collect();
    let best = texts
        .iter()
        .zip(values)
        .filter_map(|(t, v)| Some((t.as_ref()?, (*v)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(t, _)| t.clone());
    let distinct = texts.iter().flatten().any(|t| Some(t) != best.as_ref());
    texts
        .into_iter()
        .map(|t| match t {
            Some(t) if distinct && Some(&t) == best.as_ref() => format!("**{t}**"),
            Some(t) => t,
            None => "n/a".into(),
        })
        .collect()
}

/// A fraction as a percentage with two decimals: 0.54312 → "54.31%".
fn percent(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn fixed4(x: f64) -> String {
    format!("{x:.4}")
}

fn optional(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), fixed4)
}

/// 1 → "1 row", 490952 → "490,952 rows".
pub(crate) fn rows(n: usize) -> String {
    format!("{} row{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// 490952 → "490,952".
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
