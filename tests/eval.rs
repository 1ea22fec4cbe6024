//! `giftrank eval` (DESIGN.md §7): the metrics match an independent implementation
//! (`tools/eval_reference.py`: numpy, scipy's spearmanr, sklearn's ndcg_score) to 1e-9, edge
//! cases hold by hand, the seed's Top-1% invariant holds for random inputs, and the command
//! line writes the §7 JSON and charts and refuses bad input with a message naming it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use giftrank::data::{self, Wanted};
use giftrank::engine::{FeatureMatrix, Model};
use giftrank::eval::metrics::{recall_rerank, top_k_size};
use giftrank::eval::{
    evaluate, parse_m_list, plots, report, scoring, EvalError, Evaluation, RankingMetrics,
    RecallRerankMetrics,
};
use proptest::prelude::*;
use serde_json::Value;
use support::{
    as_vec, assert_json_close, fixtures, giftrank, json_of, m_list, path_str, read_json, text,
    Scratch,
};

// --- The independent reference -------------------------------------------------------

#[test]
fn scores_fixture_matches_the_python_reference() {
    let wanted = Wanted {
        models: &[],
        numeric: &["label", "d", "s"],
        group: None,
    };
    let loaded = data::read_all(&fixtures().join("scores.csv"), &wanted).expect("scores.csv");
    let [y, d, s] = <[Vec<f64>; 3]>::try_from(loaded.columns).expect("three columns");
    let mut expected = read_json(&fixtures().join("scores_expected.json"));
    let ms = m_list(&expected["m_list"]);
    expected.as_object_mut().unwrap().remove("m_list");
    assert_eq!(y.len(), 3037);
    let evaluation = evaluate(&d, &s, &y, &ms).expect("evaluates");
    assert_json_close(&json_of(&evaluation), &expected, "scores");
}

#[test]
fn edge_cases_match_the_python_reference() {
    let cases = read_json(&fixtures().join("edge_cases.json"));
    let cases = cases.as_array().expect("a list of cases");
    assert!(cases.len() >= 6);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let evaluation = evaluate(
            &as_vec(&case["d"]),
            &as_vec(&case["s"]),
            &as_vec(&case["y"]),
            &m_list(&case["m_list"]),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_json_close(&json_of(&evaluation), &case["expected"], name);
    }
}

// --- Edge cases, by hand ----------------------------------------------------------------

#[test]
fn all_zero_labels_give_zero_ndcg_and_null_spearman() {
    let n = 250;
    let y = vec![0.0; n];
    let ascending: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let constant = vec![1.0; n];
    // Equal labels: the true Top-1% is rows 0..3 (lower index first); ranking by constant
    // scores is the input order, so it captures all of them; ranking by ascending scores
    // puts rows 249, 248, 247 first and captures none.
    let e = evaluate(&ascending, &constant, &y, &[1, 3, 300]).unwrap();
    assert_eq!(top_k_size(1, n), 3);
    assert_eq!(e.direct.top1, 0.0);
    assert_eq!(e.stage2.top1, 1.0);
    assert_eq!(e.stage2.top5, 1.0);
    for m in [&e.direct, &e.stage2, &e.recall_rerank[2].metrics] {
        assert_eq!(m.ndcg100, 0.0);
        assert_eq!(m.spearman, None);
    }
    assert_eq!(e.positives, 0);
    let json = json_of(&e);
    assert!(json["methods"][0]["spearman"].is_null(), "{json}");
}

#[test]
fn fewer_than_100_rows_use_every_position_in_ndcg() {
    // y = [0, 1, 2] ranked worst first by d.
    let y = [0.0, 1.0, 2.0];
    let d = [3.0, 2.0, 1.0];
    let e = evaluate(&d, &d, &y, &[1, 2]).unwrap();
    let dcg = 0.0 / 2f64.log2() + 1.0 / 3f64.log2() + 2.0 / 4f64.log2();
    let ideal = 2.0 / 2f64.log2() + 1.0 / 3f64.log2();
    assert!((e.direct.ndcg100 - dcg / ideal).abs() < 1e-15);
    assert_eq!(e.direct.top1, 0.0); // k = 1: T = {row 2}, ranked last
    assert_eq!(e.direct.spearman, Some(-1.0));
}

#[test]
fn m_larger_than_n_recalls_every_row() {
    let y = [0.0, 4.0, 1.0, 0.0, 2.0];
    let d = [0.5, 0.1, 0.9, 0.3, 0.2];
    let s = [0.1, 0.9, 0.2, 0.0, 0.5];
    let e = evaluate(&d, &s, &y, &[5, 6, 1000]).unwrap();
    for r in &e.recall_rerank {
        assert_eq!((r.recall1, r.recall5), (1.0, 1.0), "M = {}", r.m);
        assert_eq!(r.metrics, e.recall_rerank[0].metrics);
    }
    assert_eq!(e.recall_rerank[2].m, 1000); // reported as asked
    assert_eq!(recall_rerank(&d, &s, 1000), recall_rerank(&d, &s, 5));
    // Distinct Stage2 scores: reranking everything is Stage2's ranking.
    assert_eq!(e.recall_rerank[0].metrics, e.stage2);
}

#[test]
fn score_ties_break_as_section_1_says() {
    // Top-3 by d: rows 3 (d=3), 1, 2 (d=2, lower index first). By s: rows 1 and 2 tie at 5
    // and also tie in d, so the lower index leads; row 3 (s=1) follows; row 0 is not
    // recalled and comes last.
    assert_eq!(
        recall_rerank(&[1.0, 2.0, 2.0, 3.0], &[5.0, 5.0, 5.0, 1.0], 3),
        [1, 2, 3, 0]
    );
    // Equal s: the larger d leads, then the lower index.
    assert_eq!(
        recall_rerank(&[2.0, 1.0, 2.0, 9.0], &[0.0, 0.0, 0.0, 0.0], 4),
        [3, 0, 2, 1]
    );
    // -0.0 ties with 0.0; NaN scores rank last.
    assert_eq!(
        recall_rerank(&[0.0, f64::NAN, -0.0, 1.0], &[0.0; 4], 1),
        [3, 0, 2, 1]
    );
}

#[test]
fn label_ties_at_the_cut_take_the_lower_index() {
    // N = 100: k1 = 1. Rows 0 and 1 tie on the best label; T = {row 0}.
    let mut y = vec![0.0; 100];
    y[0] = 5.0;
    y[1] = 5.0;
    let mut d = vec![0.0; 100];
    d[1] = 1.0;
    let e = evaluate(&d, &d, &y, &[1]).unwrap();
    assert_eq!(e.direct.top1, 0.0);
    d[0] = 2.0;
    let e = evaluate(&d, &d, &y, &[1]).unwrap();
    assert_eq!(e.direct.top1, 1.0);
    assert_eq!(e.recall_rerank[0].recall1, 1.0);
}

#[test]
fn top_k_rounds_up() {
    assert_eq!((top_k_size(1, 1), top_k_size(5, 1)), (1, 1));
    assert_eq!((top_k_size(1, 100), top_k_size(5, 100)), (1, 5));
    assert_eq!((top_k_size(1, 101), top_k_size(5, 101)), (2, 6));
    assert_eq!((top_k_size(1, 199), top_k_size(5, 199)), (2, 10));
    assert_eq!(
        (top_k_size(1, 490_952), top_k_size(5, 490_952)),
        (4910, 24548)
    );
    // N = 101: T1 = the two best rows (0 and 1); d finds one of them in its top 2.
    let mut y = vec![0.0; 101];
    y[0] = 3.0;
    y[1] = 2.0;
    let mut d = vec![0.0; 101];
    d[0] = 1.0;
    d[50] = 2.0;
    let e = evaluate(&d, &d, &y, &[2]).unwrap();
    assert_eq!(e.direct.top1, 0.5);
    assert_eq!(e.recall_rerank[0].recall1, 0.5);
}

#[test]
fn one_row_has_no_spearman() {
    let e = evaluate(&[0.3], &[0.1], &[2.0], &[1, 5]).unwrap();
    assert_eq!(
        (e.direct.top1, e.direct.top5, e.direct.ndcg100),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(e.direct.spearman, None);
    let e = evaluate(&[0.3], &[0.1], &[0.0], &[1]).unwrap();
    assert_eq!(e.direct.ndcg100, 0.0);
}

#[test]
fn huge_labels_keep_ndcg_finite() {
    // The raw ideal DCG overflows to infinity; NDCG is scale-free, so it equals the NDCG of
    // the same labels scaled down.
    let d = [0.0, 1.0, 2.0];
    let huge = evaluate(&d, &d, &[1.5e308, 1.5e308, 0.0], &[]).unwrap();
    let small = evaluate(&d, &d, &[1.0, 1.0, 0.0], &[]).unwrap();
    assert!((huge.direct.ndcg100 - small.direct.ndcg100).abs() < 1e-15);
    assert!(huge.direct.ndcg100 > 0.6 && huge.direct.ndcg100 < 0.7);
}

#[test]
fn spearman_uses_average_label_ranks() {
    // d ranks rows 3, 0, 1, 2; y = [1, 1, 0, 2].
    let y = [1.0, 1.0, 0.0, 2.0];
    let d = [3.0, 2.0, 1.0, 4.0];
    let e = evaluate(&d, &d, &y, &[]).unwrap();
    let label_ranks = [2.5, 2.5, 1.0, 4.0];
    let position_ranks = [3.0, 2.0, 1.0, 4.0]; // N - position
    let mean = 2.5;
    let (mut xy, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in label_ranks.iter().zip(position_ranks) {
        xy += (a - mean) * (b - mean);
        xx += (a - mean) * (a - mean);
        yy += (b - mean) * (b - mean);
    }
    let want = xy / (xx * yy).sqrt();
    assert!((e.direct.spearman.unwrap() - want).abs() < 1e-15);
}

#[test]
fn invalid_scores_labels_and_m_are_errors() {
    let ok = [1.0, 2.0];
    assert_eq!(evaluate(&[], &[], &[], &[1]), Err(EvalError::NoRows));
    assert!(matches!(
        evaluate(&ok, &ok, &[1.0], &[1]),
        Err(EvalError::LengthMismatch { .. })
    ));
    for (bad, needle) in [
        (f64::NAN, "missing"),
        (-1.0, "negative"),
        (f64::INFINITY, "finite"),
    ] {
        let err = evaluate(&ok, &ok, &[0.0, bad], &[1]).unwrap_err();
        assert!(matches!(err, EvalError::Label { row: 1, .. }), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
    assert_eq!(evaluate(&ok, &ok, &ok, &[1, 0]), Err(EvalError::ZeroM));
}

#[test]
fn m_lists_parse_strictly() {
    assert_eq!(
        parse_m_list("50,100,200,500,1000").unwrap(),
        [50, 100, 200, 500, 1000]
    );
    assert_eq!(parse_m_list(" 200 , 50 ").unwrap(), [50, 200]);
    for (bad, needle) in [
        ("", "empty"),
        ("  ", "empty"),
        ("50,,100", "entry 2 is empty"),
        ("50,", "entry 2 is empty"),
        ("0", "M = 0"),
        ("50,0", "M = 0"),
        ("abc", "`abc` is not a whole number"),
        ("-5", "`-5` is not a whole number"),
        ("1.5", "`1.5` is not a whole number"),
        ("50,50", "50 is listed twice"),
    ] {
        let err = parse_m_list(bad).expect_err(bad).to_string();
        assert!(err.contains(needle), "{bad:?}: {err}");
        assert!(err.starts_with("--m"), "{bad:?}: {err}");
    }
}

#[test]
fn method_table_shows_default_m_or_the_middle() {
    let y: Vec<f64> = (0..300).map(|i| (i % 7) as f64).collect();
    let d: Vec<f64> = (0..300).map(|i| ((i * 37) % 101) as f64).collect();
    let e = evaluate(&d, &y, &y, &[10, 50, 100, 200]).unwrap();
    assert_eq!(report::shown_m(&e, 100), Some(100));
    assert_eq!(report::shown_m(&e, 75), Some(50));
    let text = report::markdown(&e, Some(100));
    assert!(text.contains("| Metric | Direct-only | Stage2-only | Recall-Rerank (M=100) |"));
    assert!(
        text.contains("| Top-M | Recall@1% | Recall@5% | Top-1% | Top-5% | NDCG@100 | Spearman |")
    );
    let best = report::best_by_ndcg(&e).unwrap();
    assert!(
        text.contains(&format!("Best M by NDCG@100: {} (", best.m)),
        "{text}"
    );
    assert!(e
        .recall_rerank
        .iter()
        .all(|r| r.metrics.ndcg100 <= best.metrics.ndcg100));
}

// --- The seed's invariant and other properties -------------------------------------------

/// Scores and labels with many ties: small integer levels, or arbitrary floats.
fn column(n: usize, levels: u32) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0..levels, n).prop_map(|v| v.into_iter().map(f64::from).collect())
}

fn inputs() -> impl Strategy<Value = (Vec<f64>, Vec<f64>, Vec<f64>)> {
    (1usize..450, 2u32..50).prop_flat_map(|(n, levels)| {
        (
            column(n, levels),
            prop::collection::vec(-1e3f64..1e3, n),
            column(n, 4).prop_map(|y| y.into_iter().map(|v| v * v * v).collect()),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The seed's observation: when M <= ceil(N/100), the recalled rows all stay inside the
    /// first k1 positions (only their order changes), so Top-1% capture equals Direct's.
    #[test]
    fn rerank_within_top1_keeps_direct_top1((d, s, y) in inputs(), pick in 0usize..1000) {
        let n = y.len();
        let k1 = top_k_size(1, n);
        let k5 = top_k_size(5, n);
        let m1 = 1 + pick % k1;
        let m5 = 1 + pick % k5;
        let e = evaluate(&d, &s, &y, &[m1, m5]).unwrap();
        prop_assert_eq!(e.recall_rerank[0].metrics.top1, e.direct.top1);
        prop_assert_eq!(e.recall_rerank[1].metrics.top5, e.direct.top5);
    }

    /// eval measures the order the service returns: its recall-rerank ranking equals
    /// `giftrank::order::rank` over all N candidates.
    #[test]
    fn recall_rerank_is_the_service_order((d, s, _) in inputs(), m in 1usize..500) {
        let served: Vec<usize> = giftrank::order::rank(&d, &[(&d, m)], 1.0, d.len(), |recalled| {
            recalled.iter().map(|&i| s[i]).collect()
        })
        .order
        .iter()
        .map(|p| p.index)
        .collect();
        prop_assert_eq!(recall_rerank(&d, &s, m), served);
    }

    /// M = 1 changes nothing; the ranking is a permutation; recall grows with M; every
    /// metric is in range.
    #[test]
    fn rankings_and_metrics_are_well_formed((d, s, y) in inputs(), m in 1usize..500) {
        let n = y.len();
        let e = evaluate(&d, &s, &y, &[1, m, m + 1]).unwrap();
        prop_assert_eq!(e.recall_rerank[0].metrics, e.direct);
        let mut order = recall_rerank(&d, &s, m);
        order.sort_unstable();
        prop_assert_eq!(order, (0..n).collect::<Vec<_>>());
        prop_assert!(e.recall_rerank[1].recall1 <= e.recall_rerank[2].recall1);
        prop_assert!(e.recall_rerank[1].recall5 <= e.recall_rerank[2].recall5);
        for r in &e.recall_rerank {
            for v in [r.recall1, r.recall5, r.metrics.top1, r.metrics.top5, r.metrics.ndcg100] {
                prop_assert!((0.0..=1.0).contains(&v));
            }
            if let Some(rho) = r.metrics.spearman {
                prop_assert!((-1.0..=1.0).contains(&rho));
            }
        }
    }
}

#[test]
fn threaded_scoring_equals_one_batch() {
    let model = Model::from_file(&fixtures().join("bundle/1/direct.txt")).expect("model");
    let wanted = Wanted {
        models: &[&model],
        numeric: &[],
        group: None,
    };
    let loaded = data::read_all(&fixtures().join("data.csv"), &wanted).expect("data");
    let rows = &loaded.matrices[0];
    // 20,000 rows (several chunks per thread) cycling through the fixture rows.
    let values: Vec<f64> = (0..20_000)
        .flat_map(|i| rows.row(i % rows.num_rows()).to_vec())
        .collect();
    let many = FeatureMatrix::from_rows(values, rows.num_features());
    let mut one_batch = vec![0.0; many.num_rows()];
    model.predict(&many, &mut one_batch);
    for threads in [None, Some(1), Some(2), Some(3)] {
        let scores = scoring::score_rows(&model, &many, threads);
        assert!(
            scores
                .iter()
                .zip(&one_batch)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{threads:?} threads"
        );
        assert_eq!(scores.len(), one_batch.len());
    }
    assert!(scoring::score_rows(&model, &many.rows(0..0), Some(2)).is_empty());
}

#[test]
fn charts_survive_degenerate_results() {
    let scratch = Scratch::new("charts");
    let metrics = |top1: f64, spearman: Option<f64>| RankingMetrics {
        top1,
        top5: top1,
        ndcg100: 0.0,
        spearman,
    };
    let rr = |m: usize, spearman: Option<f64>| RecallRerankMetrics {
        m,
        recall1: 0.0,
        recall5: 0.0,
        metrics: metrics(0.0, spearman),
    };
    let cases = [
        // All labels zero: nothing defined but zeros.
        (vec![rr(1, None), rr(5000, None)], metrics(0.0, None), None),
        // Negative correlations and no M at all.
        (vec![], metrics(1.0, Some(-0.8)), Some(-0.3)),
        // One M.
        (
            vec![rr(200, Some(-1.0))],
            metrics(0.5, Some(1.0)),
            Some(0.2),
        ),
    ];
    for (i, (recall_rerank, direct, stage2_spearman)) in cases.into_iter().enumerate() {
        let shown = recall_rerank.first().map(|r| r.m);
        let evaluation = Evaluation {
            n: 7,
            positives: 0,
            direct,
            stage2: metrics(0.0, stage2_spearman),
            recall_rerank,
            fusion: Vec::new(),
            profiles: Vec::new(),
            default_profile: None,
            groups: None,
        };
        let dir = scratch.0.join(i.to_string());
        let charts = plots::Charts {
            evaluation: &evaluation,
            shown,
            direct: &[1.0; 7][..i.min(7)],
            stage2: &[0.5; 7][..i.min(7)],
        };
        let written = plots::write_all(&charts, &dir).expect("charts");
        assert_eq!(written.len(), 5);
        assert!(written.iter().all(|p| p.exists()));
    }
}

// --- The command line ----------------------------------------------------------------------

#[test]
fn cli_matches_reference_and_writes_tables_json_and_charts() {
    let scratch = Scratch::new("cli");
    let bundle = fixtures().join("bundle/1");
    let data = fixtures().join("data.csv");
    let json = scratch.0.join("eval.json");
    let plots = scratch.0.join("plots");
    let out = giftrank(&[
        "eval",
        "--bundle",
        path_str(&bundle),
        "--data",
        path_str(&data),
        "--label",
        "gift_amount",
        "--json",
        path_str(&json),
        "--plots",
        path_str(&plots),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    assert_json_close(
        &read_json(&json),
        &read_json(&fixtures().join("data_expected.json")),
        "data",
    );
    for needle in [
        "N = 1,537 rows",
        "| Metric | Direct-only | Stage2-only | Recall-Rerank (M=200) |",
        "| Top-1% Capture |",
        "| Top-M | Recall@1% | Recall@5% |",
        "Best M by NDCG@100: ",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    for file in [
        "recall_coverage_vs_m.png",
        "ndcg100_vs_m.png",
        "method_comparison.png",
        "tradeoff.png",
        "score_correlation.png",
    ] {
        let bytes = std::fs::read(plots.join(file)).expect(file);
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{file} is not a PNG"
        );
        assert!(bytes.len() > 10_000, "{file} looks empty");
    }
}

/// `giftrank eval` on the profiles fixture (a format 2 bundle) with the given gates.
fn eval_profiles(scratch: &Scratch, gates: &[&str]) -> (Output, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles");
    let json = scratch.0.join("profiles.json");
    let (bundle, data) = (dir.join("bundle"), dir.join("data.csv"));
    let mut args = vec![
        "eval",
        "--bundle",
        path_str(&bundle),
        "--data",
        path_str(&data),
        "--label",
        "gift_amount",
        "--m",
        "5,50,200",
        "--alpha",
        "0,0.5,1",
        "--json",
        path_str(&json),
    ];
    for gate in gates {
        args.extend(["--gate", gate]);
    }
    (giftrank(&args), json)
}

#[test]
fn cli_profile_and_fusion_rows_match_the_reference() {
    let scratch = Scratch::new("profiles");
    let (out, json) = eval_profiles(&scratch, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    let expected =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles/data_expected.json");
    assert_json_close(&read_json(&json), &read_json(&expected), "profiles");
    for needle in [
        "### Score fusion by M and alpha",
        "| 200 | 0.5 | 75.00% |",
        "### Profiles of the bundle",
        "| default (default) | 5 | 1 | 5 |",
        "| hybrid | 4 | 0.7 | 8 |",
        "| direct | – | – | – |",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
}

#[test]
fn gates_pass_or_fail_each_row_and_exit_3_when_the_default_profile_fails() {
    let scratch = Scratch::new("gates");
    // profile:default has top1 0.125 and ndcg100 0.1499 on this data.
    let (out, _) = eval_profiles(&scratch, &["top1>=0.1", "ndcg100>=0.149"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}{stdout}", text(&out.stderr));
    assert!(
        stdout.contains("| Method | top1>=0.1 | ndcg100>=0.149 | All |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| profile:default | PASS | PASS | PASS |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| stage2 | FAIL | PASS | FAIL |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Default profile `default`: PASS"),
        "{stdout}"
    );

    let (out, _) = eval_profiles(&scratch, &["ndcg100>=0.15", "recall1>=0.01"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{}{stdout}", text(&out.stderr));
    assert!(
        stdout.contains("| profile:default | FAIL | PASS | FAIL |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| direct | FAIL | n/a | FAIL |"),
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("the default profile `default` fails the gates"));

    let (out, _) = eval_profiles(&scratch, &["top1>0.5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--gate \"top1>0.5\": write METRIC>=VALUE"));
}

#[test]
fn cli_with_one_model_twice_reranks_into_the_direct_order() {
    // Stage2 = Direct: the shared feature matrix path, and every recall-rerank ranking is
    // the Direct ranking (equal s break by larger d, then lower index).
    let scratch = Scratch::new("same");
    let version = scratch.0.join("7");
    std::fs::create_dir_all(&version).unwrap();
    std::fs::copy(
        fixtures().join("bundle/1/direct.txt"),
        version.join("a.txt"),
    )
    .unwrap();
    std::fs::write(
        version.join("bundle.toml"),
        "format_version = 1\n[recall]\nmodel = \"a.txt\"\ndefault_m = 30\nmax_m = 100\n[rerank]\nmodel = \"a.txt\"\n",
    )
    .unwrap();
    let json = scratch.0.join("eval.json");
    let data = fixtures().join("data.csv");
    let out = giftrank(&[
        "eval",
        "--bundle",
        path_str(&version),
        "--data",
        path_str(&data),
        "--label",
        "gift_amount",
        "--m",
        "30,5000",
        "--json",
        path_str(&json),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Recall-Rerank (M=30)"));
    let value = read_json(&json);
    let methods = value["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 5);
    assert_eq!(methods[4]["name"], "profile:default");
    assert_eq!(methods[4]["m"], 30);
    for key in ["top1", "top5", "ndcg100", "spearman"] {
        for method in &methods[1..] {
            assert_eq!(method[key], methods[0][key], "{key}");
        }
    }
    assert_eq!(methods[3]["m"], 5000);
    assert_eq!(methods[3]["recall1"], 1.0);
}

#[test]
fn cli_refuses_bad_input_naming_the_problem() {
    let scratch = Scratch::new("bad");
    let bundle = fixtures().join("bundle/1");
    let good = fixtures().join("data.csv");
    let csv = |name: &str, body: &str| {
        let path = scratch.0.join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let header = "user_level,follows,watch_minutes,gift_rate,wealth,gift_amount\n";
    let negative = csv(
        "negative.csv",
        &format!("{header}1,0,1,0.1,0,2\n2,1,3,0.2,1,-4\n"),
    );
    let text_label = csv(
        "text.csv",
        &format!("{header}1,0,1,0.1,0,2\n2,1,3,0.2,1,lots\n"),
    );
    let missing = csv(
        "missing.csv",
        &format!("{header}1,0,1,0.1,0,2\n2,1,3,0.2,1,\n"),
    );
    let infinite = csv("inf.csv", &format!("{header}1,0,1,0.1,0,inf\n"));
    let header_only = csv("header.csv", header);
    let empty = csv("empty.csv", "");
    let cases: Vec<(PathBuf, &str, &str, &str)> = vec![
        (good.clone(), "nope", "50", "no column `nope`"),
        (
            negative,
            "gift_amount",
            "50",
            "line 3): the label is negative (-4",
        ),
        (text_label, "gift_amount", "50", "`lots` is not a number"),
        (
            missing,
            "gift_amount",
            "50",
            "line 3): the label is missing",
        ),
        (infinite, "gift_amount", "50", "must be finite"),
        (header_only, "gift_amount", "50", "no data rows"),
        (empty, "gift_amount", "50", "empty"),
        (good.clone(), "gift_amount", "50,0", "M = 0"),
        (
            good.clone(),
            "gift_amount",
            "50,x",
            "`x` is not a whole number",
        ),
        (good.clone(), "gift_amount", "50,,100", "entry 2 is empty"),
        (good.clone(), "gift_amount", "", "--m is empty"),
    ];
    for (data, label, m, needle) in cases {
        let out = giftrank(&[
            "eval",
            "--bundle",
            path_str(&bundle),
            "--data",
            path_str(&data),
            "--label",
            label,
            "--m",
            m,
        ]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{needle}: exited 0");
        assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = giftrank(&[
        "eval",
        "--bundle",
        path_str(&scratch.0),
        "--data",
        path_str(&good),
        "--label",
        "gift_amount",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("bundle"),
        "{}",
        text(&out.stderr)
    );
    let nowhere = scratch.0.join("no-such-dir/eval.json");
    let out = giftrank(&[
        "eval",
        "--bundle",
        path_str(&bundle),
        "--data",
        path_str(&good),
        "--label",
        "gift_amount",
        "--json",
        path_str(&nowhere),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot write --json"),
        "{}",
        text(&out.stderr)
    );
}

/// The shipped bundle that serves (the highest version, format 2) and the held-out
/// sample: the JSON has the §7 shape and the seed's Top-1% invariant holds.
#[test]
fn cli_on_the_shipped_models() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = root.join("models/gift/2");
    let data = root.join("models/gift/heldout.csv.gz");
    let scratch = Scratch::new("shipped");
    let json = scratch.0.join("eval.json");
    let out = giftrank(&[
        "eval",
        "--bundle",
        path_str(&bundle),
        "--data",
        path_str(&data),
        "--label",
        "gift_amount",
        "--alpha",
        "0.5,1",
        "--json",
        path_str(&json),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let value = read_json(&json);
    let n = value["n"].as_u64().expect("n") as usize;
    assert!(n > 0);
    let methods = value["methods"].as_array().expect("methods");
    let label = |m: &Value| match (m["m"].as_u64(), m["alpha"].as_f64()) {
        (Some(k), Some(a)) if m["name"] == "fusion" => format!("fusion {k} {a}"),
        (Some(k), _) if m["name"] == "recall_rerank" => format!("recall_rerank {k}"),
        _ => m["name"].as_str().expect("name").to_owned(),
    };
    let labels: Vec<String> = methods.iter().map(label).collect();
    let mut expected: Vec<String> = vec!["direct".into(), "stage2".into()];
    for m in [50, 100, 200, 500, 1000] {
        expected.push(format!("recall_rerank {m}"));
    }
    for m in [50, 100, 200, 500, 1000] {
        expected.extend([format!("fusion {m} 0.5"), format!("fusion {m} 1")]);
    }
    for p in ["default", "direct", "fusion", "hybrid"] {
        expected.push(format!("profile:{p}"));
    }
    assert_eq!(labels, expected);
    for method in methods {
        let keys = method.as_object().unwrap().len();
        let want = match method["name"].as_str().unwrap() {
            "recall_rerank" => 8,
            "fusion" => 9,
            "profile:direct" | "direct" | "stage2" => 6,
            _ => 10,
        };
        assert_eq!(keys, want, "{method}");
        for key in ["top1", "top5", "ndcg100"] {
            let v = method[key].as_f64().expect(key);
            assert!((0.0..=1.0).contains(&v), "{method}");
        }
        // Reordering a recalled head of Direct's Top-1% cannot change Top-1% capture.
        let single_direct_source = [
            "recall_rerank",
            "fusion",
            "profile:default",
            "profile:fusion",
        ];
        if single_direct_source.contains(&method["name"].as_str().unwrap())
            && method["m"]
                .as_u64()
                .is_some_and(|m| m as usize <= top_k_size(1, n))
        {
            assert_eq!(method["top1"], methods[0]["top1"], "{method}");
        }
    }
    // The served default profile is the seed's recall-rerank at M = 200.
    let default = methods
        .iter()
        .find(|m| m["name"] == "profile:default")
        .unwrap();
    let rerank200 = methods
        .iter()
        .find(|m| label(m) == "recall_rerank 200")
        .unwrap();
    for key in ["recall1", "recall5", "top1", "top5", "ndcg100", "spearman"] {
        assert_eq!(default[key], rerank200[key], "{key}");
    }
}

#[test]
fn check_and_eval_take_any_bundle_directory_not_only_numbered_ones() {
    let scratch = Scratch::new("named");
    let bundle = scratch.0.join("candidate-bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    for entry in std::fs::read_dir(fixtures().join("bundle/1")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), bundle.join(entry.file_name())).unwrap();
    }
    let out = giftrank(&["check", path_str(&bundle)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: "),
        "{}",
        text(&out.stdout)
    );
    let data = fixtures().join("data.csv");
    let out = giftrank(&[
        "eval",
        "--bundle",
        path_str(&bundle),
        "--data",
        path_str(&data),
        "--label",
        "gift_amount",
        "--m",
        "50",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("candidate-bundle"));
}

#[test]
fn check_reports_each_profile_and_checks_every_models_canary_column() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles/bundle");
    let out = giftrank(&["check", path_str(&fixture)]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for needle in [
        "format 2, 20 canary rows match",
        "model gift_prob: gift_prob.txt — binary",
        "profile default (default): score direct; recall direct Top-5; rerank stage2; max_m 50",
        "profile direct: score direct; no recall",
        "profile hybrid: score direct; recall direct Top-4 ∪ gift_prob Top-4; rerank stage2, alpha 0.7; max_m 50",
        "profile prob_first: score gift_prob; recall gift_prob Top-3 ∪ direct Top-3",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }

    // A wrong expected_gift_prob in one row: the third model's column is checked too.
    let scratch = Scratch::new("canary2");
    let bundle = scratch.0.join("b");
    std::fs::create_dir_all(&bundle).unwrap();
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, bundle.join(path.file_name().unwrap())).unwrap();
    }
    let canary = std::fs::read_to_string(bundle.join("canary.csv")).unwrap();
    let mut lines: Vec<String> = canary.lines().map(str::to_owned).collect();
    let column = lines[0]
        .split(',')
        .position(|h| h == "expected_gift_prob")
        .unwrap();
    let mut cells: Vec<String> = lines[3].split(',').map(str::to_owned).collect();
    cells[column] = format!("{}", cells[column].parse::<f64>().unwrap() + 0.01);
    lines[3] = cells.join(",");
    std::fs::write(bundle.join("canary.csv"), lines.join("\n") + "\n").unwrap();
    let out = giftrank(&["check", path_str(&bundle)]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("row 3 (line 4): gift_prob scores"),
        "{stderr}"
    );

    // A profile naming a model the bundle does not have: the key is named.
    let toml = std::fs::read_to_string(fixture.join("bundle.toml")).unwrap();
    std::fs::write(
        bundle.join("bundle.toml"),
        toml.replace(
            "rerank = \"stage2\"\nalpha = 0.25",
            "rerank = \"stage3\"\nalpha = 0.25",
        ),
    )
    .unwrap();
    let out = giftrank(&["check", path_str(&bundle)]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("profiles.fusion.rerank = \"stage3\" is not a model of [models] (they are: direct, stage2, gift_prob)"),
        "{stderr}"
    );
}
