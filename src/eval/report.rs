//! How an [`Evaluation`] is shown: the seed experiment's two Markdown tables (method
//! comparison; one row per M) with the best M by NDCG@100, the fusion and profile tables,
//! and the JSON of DESIGN.md §7 (one [`Row`] per method, also what gates and charts read).
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
    match &evaluation.groups {
        None => {
            let _ = writeln!(
                out,
                "N = {}; {} ({}) with label > 0; true Top-1% = {}, Top-5% = {}.\n",
                rows(n),
                thousands(evaluation.positives),
                percent(evaluation.positives as f64 / n.max(1) as f64),
                rows(top_k_size(1, n)),
                rows(top_k_size(5, n)),
            );
        }
        Some(groups) => {
            let _ = writeln!(
                out,
                "N = {} in {} by `{}`; {} ({}) with label > 0. Each group is one ranking; every \
                 metric is the mean over the {} with a label > 0 (Spearman: over those whose \
                 labels and positions vary).\n",
                rows(n),
                plural(groups.groups, "group"),
                groups.column,
                thousands(evaluation.positives),
                percent(evaluation.positives as f64 / n.max(1) as f64),
                plural(groups.used, "group"),
            );
        }
    }
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
    let ungrouped = evaluation.groups.is_none();
    if let Some(big) = evaluation
        .recall_rerank
        .iter()
        .find(|r| ungrouped && r.m > evaluation.n)
    {
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

/// One row of the method list, as the JSON, the gates and the trade-off chart see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `direct`, `stage2`, `recall_rerank`, `fusion` or `profile:<name>`.
    pub name: String,
    pub m: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// |R|, for profile rows with recall (with `--group`, its mean over the groups
    /// averaged; a whole number is written as an integer).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_as_integer"
    )]
    pub recall_size: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall5: Option<f64>,
    pub top1: f64,
    pub top5: f64,
    pub ndcg100: f64,
    pub spearman: Option<f64>,
}

impl Row {
    fn new(name: impl Into<String>, m: Option<usize>, metrics: &RankingMetrics) -> Self {
        Self {
            name: name.into(),
            m,
            alpha: None,
            recall_size: None,
            recall1: None,
            recall5: None,
            top1: metrics.top1,
            top5: metrics.top5,
            ndcg100: metrics.ndcg100,
            spearman: metrics.spearman,
        }
    }

    /// The value of metric `name` (a JSON key: `top1`, `ndcg100`, `recall1`, …); `None`
    /// when this row has no such value.
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "top1" => Some(self.top1),
            "top5" => Some(self.top5),
            "ndcg100" => Some(self.ndcg100),
            "spearman" => self.spearman,
            "recall1" => self.recall1,
            "recall5" => self.recall5,
            _ => None,
        }
    }

    /// A short label: `direct`, `recall_rerank M=200`, `fusion M=200 a=0.5`,
    /// `profile:hybrid`.
    pub fn label(&self) -> String {
        match (self.name.as_str(), self.m, self.alpha) {
            ("recall_rerank", Some(m), _) => format!("recall_rerank M={m}"),
            ("fusion", Some(m), Some(a)) => format!("fusion M={m} a={a}"),
            _ => self.name.clone(),
        }
    }
}

/// Every method row, in the JSON's order: direct, stage2, recall_rerank by M, fusion by M
/// and alpha, then one per profile.
pub fn method_rows(evaluation: &Evaluation) -> Vec<Row> {
    let mut rows = vec![
        Row::new("direct", None, &evaluation.direct),
        Row::new("stage2", None, &evaluation.stage2),
    ];
    rows.extend(evaluation.recall_rerank.iter().map(|r| Row {
        recall1: Some(r.recall1),
        recall5: Some(r.recall5),
        ..Row::new("recall_rerank", Some(r.m), &r.metrics)
    }));
    rows.extend(evaluation.fusion.iter().map(|f| Row {
        alpha: Some(f.alpha),
        recall1: Some(f.recall1),
        recall5: Some(f.recall5),
        ..Row::new("fusion", Some(f.m), &f.metrics)
    }));
    rows.extend(evaluation.profiles.iter().map(|p| Row {
        alpha: p.alpha,
        recall_size: p.recall.map(|c| c.size),
        recall1: p.recall.map(|c| c.recall1),
        recall5: p.recall.map(|c| c.recall5),
        ..Row::new(format!("profile:{}", p.name), p.m, &p.metrics)
    }));
    rows
}

/// Writes a whole number as an integer, anything else as a float.
fn whole_as_integer<S: serde::Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(x) if x.fract() == 0.0 && *x >= 0.0 && *x < 2f64.powi(53) => {
            serializer.serialize_u64(*x as u64)
        }
        Some(x) => serializer.serialize_f64(*x),
        None => serializer.serialize_none(),
    }
}

/// The JSON of DESIGN.md §7 (with `--group`, also `groups` and `groups_used`). An
/// undefined Spearman (constant labels, or N = 1; with groups, no group where it is
/// defined) is `null`.
pub fn json(evaluation: &Evaluation) -> String {
    let report = JsonReport {
        n: evaluation.n,
        groups: evaluation.groups.as_ref().map(|g| g.groups),
        groups_used: evaluation.groups.as_ref().map(|g| g.used),
        methods: method_rows(evaluation),
    };
    // Serializing plain structs of numbers cannot fail; finite f64s print so that they
    // parse back to the same value.
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}

#[derive(Serialize)]
struct JsonReport {
    n: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups_used: Option<usize>,
    methods: Vec<Row>,
}

/// The fusion table (one row per M and alpha) and the profiles table; empty when neither
/// was evaluated.
pub fn markdown_profiles(evaluation: &Evaluation) -> String {
    let mut out = String::new();
    if !evaluation.fusion.is_empty() {
        let _ = writeln!(out, "\n### Score fusion by M and alpha\n");
        let _ = writeln!(
            out,
            "| Top-M | alpha | Recall@1% | Top-1% | Top-5% | NDCG@100 | Spearman |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
        for f in &evaluation.fusion {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                f.m,
                f.alpha,
                percent(f.recall1),
                percent(f.metrics.top1),
                percent(f.metrics.top5),
                fixed4(f.metrics.ndcg100),
                optional(f.metrics.spearman),
            );
        }
    }
    if !evaluation.profiles.is_empty() {
        let _ = writeln!(out, "\n### Profiles of the bundle\n");
        let _ = writeln!(
            out,
            "| Profile | m | alpha | \\|R\\| | Recall@1% | Recall@5% | Top-1% | Top-5% | NDCG@100 | Spearman |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let dash = || "–".to_string();
        for p in &evaluation.profiles {
            let default = evaluation.default_profile.as_deref() == Some(p.name.as_str());
            let _ = writeln!(
                out,
                "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                p.name,
                if default { " (default)" } else { "" },
                p.m.map_or_else(dash, |m| m.to_string()),
                p.alpha.map_or_else(dash, |a| a.to_string()),
                p.recall.map_or_else(dash, |c| count_or_mean(c.size)),
                p.recall.map_or_else(dash, |c| percent(c.recall1)),
                p.recall.map_or_else(dash, |c| percent(c.recall5)),
                percent(p.metrics.top1),
                percent(p.metrics.top5),
                fixed4(p.metrics.ndcg100),
                optional(p.metrics.spearman),
            );
        }
    }
    out
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
pub(crate) fn percent(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

pub(crate) fn fixed4(x: f64) -> String {
    format!("{x:.4}")
}

fn optional(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), fixed4)
}

/// 1 → "1 row", 490952 → "490,952 rows".
pub(crate) fn rows(n: usize) -> String {
    plural(n, "row")
}

/// 1 → "1 group", 1200 → "1,200 groups".
fn plural(n: usize, noun: &str) -> String {
    format!("{} {noun}{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// A size as a whole number, or a mean to one decimal: 200 → "200", 37.25 → "37.2".
fn count_or_mean(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x}")
    } else {
        format!("{x:.1}")
    }
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
