//! `eval --gate METRIC>=VALUE` (DESIGN.md §7): thresholds every method row is checked
//! against, the PASS/FAIL table, and whether the default profile passes (the seed's
//! Gate-5A is `--gate top1>=0.56` plus an NDCG bar).

use std::fmt::Write as _;

use super::report::Row;

/// The metrics a gate may name: the JSON keys of a method row.
pub const GATE_METRICS: [&str; 6] = ["top1", "top5", "ndcg100", "spearman", "recall1", "recall5"];

/// One threshold: `metric >= min`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub metric: &'static str,
    pub min: f64,
}

/// A `--gate` that cannot be used, with the text at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--gate {0}")]
pub struct GateError(String);

impl Gate {
    /// Parses `top1>=0.56` (spaces allowed around the parts).
    pub fn parse(text: &str) -> Result<Self, GateError> {
        let Some((metric, value)) = text.split_once(">=") else {
            return Err(GateError(format!(
                "\"{text}\": write METRIC>=VALUE, e.g. top1>=0.56"
            )));
        };
        let metric = metric.trim();
        let metric = GATE_METRICS.iter().find(|&&m| m == metric).ok_or_else(|| {
            GateError(format!(
                "\"{text}\": `{metric}` is not a metric (one of {})",
                GATE_METRICS.join(", ")
            ))
        })?;
        let min = value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                GateError(format!(
                    "\"{text}\": `{}` is not a finite number",
                    value.trim()
                ))
            })?;
        Ok(Self { metric, min })
    }

    /// Whether `row` passes; `None` when the row has no such metric.
    pub fn check(&self, row: &Row) -> Option<bool> {
        row.metric(self.metric).map(|v| v >= self.min)
    }
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}>={}", self.metric, self.min)
    }
}

/// Whether `row` passes every gate (a gate whose metric the row lacks fails it).
pub fn passes(gates: &[Gate], row: &Row) -> bool {
    gates.iter().all(|g| g.check(row) == Some(true))
}

/// The Markdown table: one line per row, PASS/FAIL (or n/a) per gate and overall.
pub fn table(gates: &[Gate], rows: &[Row]) -> String {
    let mut out = String::new();
    let names: Vec<String> = gates.iter().map(Gate::to_string).collect();
    let _ = writeln!(out, "### Gates\n");
    let _ = writeln!(out, "| Method | {} | All |", names.join(" | "));
    let _ = writeln!(out, "|---|{}---|", "---|".repeat(gates.len()));
    for row in rows {
        let cells: Vec<&str> = gates
            .iter()
            .map(|g| match g.check(row) {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => "n/a",
            })
            .collect();
        let all = if passes(gates, row) { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "| {} | {} | {all} |", row.label(), cells.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(top1: f64, recall1: Option<f64>) -> Row {
        Row {
            name: "profile:default".into(),
            m: Some(200),
            alpha: None,
            recall_size: None,
            recall1,
            recall5: None,
            top1,
            top5: 0.5,
            ndcg100: 0.3,
            spearman: None,
        }
    }

    #[test]
    fn gates_parse_and_check() {
        let gate = Gate::parse(" top1 >= 0.56 ").expect("valid");
        assert_eq!(
            gate,
            Gate {
                metric: "top1",
                min: 0.56
            }
        );
        assert_eq!(gate.check(&row(0.56, None)), Some(true));
        assert_eq!(gate.check(&row(0.5599, None)), Some(false));
        let recall = Gate::parse("recall1>=0.1").expect("valid");
        assert_eq!(recall.check(&row(0.6, None)), None);
        assert!(!passes(&[gate.clone(), recall.clone()], &row(0.6, None)));
        assert!(passes(&[gate, recall], &row(0.6, Some(0.2))));
        assert!(Gate::parse("spearman>=0")
            .expect("valid")
            .check(&row(0.1, None))
            .is_none());
    }

    #[test]
    fn bad_gates_say_why() {
        for (text, wanted) in [
            ("top1>0.5", "write METRIC>=VALUE"),
            ("top2>=0.5", "`top2` is not a metric"),
            ("ndcg100>=high", "`high` is not a finite number"),
            ("ndcg100>=inf", "`inf` is not a finite number"),
        ] {
            let error = Gate::parse(text).expect_err(text).to_string();
            assert!(error.contains(wanted), "{error}");
        }
    }
}
