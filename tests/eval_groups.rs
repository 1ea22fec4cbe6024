//! `giftrank eval --group COL` (DESIGN.md §7): per-group metrics match the independent
//! reference (`tools/eval_reference.py`, which evaluates each group on its own and
//! averages) to 1e-9 — groups of one row, groups with no positive label, no positive group
//! at all, ties, constant positive labels; one group holding every row is exactly the
//! ungrouped evaluation, profiles and fusion included; Parquet and CSV of the same rows
//! give the same JSON, byte for byte; bad group columns are errors naming the row.

mod support;

use std::collections::HashMap;

use giftrank::bundle::{Profile, Source};
use giftrank::data::{self, Wanted};
use giftrank::eval::groups::{self, Groups, Inputs};
use giftrank::eval::metrics::{evaluate_with, Truth};
use giftrank::eval::profiles;
use proptest::prelude::*;
use serde_json::Value;
use support::{
    as_vec, assert_json_close, eval, fixtures, json_of, m_list, path_str, read_json, text, Scratch,
};

/// Group numbers by first appearance of each value.
fn numbered(values: &[Value]) -> (Vec<u32>, usize) {
    let mut seen: HashMap<String, u32> = HashMap::new();
    let ids = values
        .iter()
        .map(|v| {
            let next = seen.len() as u32;
            *seen.entry(v.to_string()).or_insert(next)
        })
        .collect();
    (ids, seen.len())
}

fn grouped(y: &[f64], d: &[f64], s: &[f64], ids: &[u32], count: usize, ms: &[usize]) -> Value {
    let groups = Groups::new(ids, count).expect("groups");
    let scores = [d.to_vec(), s.to_vec()];
    let inputs = Inputs {
        y,
        scores: &scores,
        pair: (0, 1),
        ms,
        alphas: &[],
        profiles: &[],
    };
    json_of(&groups::evaluate(&groups, &inputs, "group"))
}

#[test]
fn grouped_scores_fixture_matches_the_python_reference() {
    let wanted = Wanted {
        models: &[],
        numeric: &["label", "d", "s"],
        group: Some("group"),
    };
    let loaded = data::read_all(&fixtures().join("scores.csv"), &wanted).expect("scores.csv");
    let [y, d, s] = <[Vec<f64>; 3]>::try_from(loaded.columns).expect("three columns");
    let count = loaded.groups.iter().max().map_or(0, |&g| g as usize + 1);
    let mut expected = read_json(&fixtures().join("scores_grouped_expected.json"));
    let ms = m_list(&expected["m_list"]);
    expected.as_object_mut().unwrap().remove("m_list");
    let actual = grouped(&y, &d, &s, &loaded.groups, count, &ms);
    assert_json_close(&actual, &expected, "scores grouped");
    // Groups of one row, and one group of equal positive labels, are in the fixture.
    assert!(expected["groups_used"].as_u64().unwrap() < expected["groups"].as_u64().unwrap());
}

#[test]
fn group_cases_match_the_python_reference() {
    let cases = read_json(&fixtures().join("group_cases.json"));
    let cases = cases.as_array().expect("a list of cases");
    assert!(cases.len() >= 6);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let (ids, count) = numbered(case["groups"].as_array().expect("groups"));
        let actual = grouped(
            &as_vec(&case["y"]),
            &as_vec(&case["d"]),
            &as_vec(&case["s"]),
            &ids,
            count,
            &m_list(&case["m_list"]),
        );
        assert_json_close(&actual, &case["expected"], name);
    }
}

#[test]
fn no_positive_group_averages_to_zero_with_no_spearman() {
    let y = [0.0; 6];
    let d = [0.1, 0.5, 0.3, 0.2, 0.9, 0.4];
    let json = grouped(&y, &d, &d, &[0, 1, 0, 1, 2, 2], 3, &[2]);
    assert_eq!(
        (json["groups"].as_u64(), json["groups_used"].as_u64()),
        (Some(3), Some(0))
    );
    for method in json["methods"].as_array().unwrap() {
        assert_eq!(method["top1"], 0.0, "{method}");
        assert_eq!(method["ndcg100"], 0.0, "{method}");
        assert!(method["spearman"].is_null(), "{method}");
    }
}

// --- One group is the whole list ------------------------------------------------------

fn column(n: usize, levels: u32) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0..levels, n).prop_map(|v| v.into_iter().map(f64::from).collect())
}

fn profile(name: &str, recall: &[(usize, usize)], rerank: Option<usize>, alpha: f64) -> Profile {
    Profile {
        name: name.into(),
        score: 0,
        recall: recall
            .iter()
            .map(|&(model, m)| Source { model, m })
            .collect(),
        rerank,
        alpha,
        max_m: 1000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every row in one group: each method row, fusion and profiles included, is exactly
    /// the ungrouped one (the grouped path ranks with `order::rank`, the ungrouped one
    /// partly with its own sorts).
    #[test]
    fn one_group_is_the_whole_list(
        (d, p, s, y) in (1usize..300, 2u32..40).prop_flat_map(|(n, levels)| {
            (column(n, levels), column(n, levels), column(n, 7), column(n, 4))
        }),
        m in 1usize..320,
        alpha in prop_oneof![Just(0.0), Just(0.5), 0.0f64..=1.0],
    ) {
        prop_assume!(y.iter().any(|&v| v > 0.0));
        let ms = [1, m, m + 7];
        let alphas = [alpha, 1.0];
        let bundle_profiles = [
            profile("default", &[(0, m)], Some(2), 1.0),
            profile("direct", &[], None, 1.0),
            profile("hybrid", &[(0, m / 2 + 1), (1, m)], Some(2), alpha),
        ];
        let scores = [d.clone(), p, s.clone()];
        let truth = Truth::new(&y);
        let mut whole = evaluate_with(&truth, &d, &s, &y, &ms).unwrap();
        whole.fusion = profiles::fusion(&truth, &y, &d, &s, &ms, &alphas);
        whole.profiles = profiles::profiles(&truth, &y, &bundle_profiles, &scores);

        let ids = vec![0; y.len()];
        let groups = Groups::new(&ids, 1).unwrap();
        let inputs = Inputs {
            y: &y,
            scores: &scores,
            pair: (0, 2),
            ms: &ms,
            alphas: &alphas,
            profiles: &bundle_profiles,
        };
        let one = groups::evaluate(&groups, &inputs, "all");
        let (a, b) = (json_of(&one), json_of(&whole));
        prop_assert_eq!(&a["methods"], &b["methods"]);
        prop_assert_eq!(a["groups"].as_u64(), Some(1));
        prop_assert_eq!(a["groups_used"].as_u64(), Some(1));
    }
}

// --- The command line -------------------------------------------------------------------

/// `giftrank eval` of the fixture bundle on `data` with `extra` arguments; its JSON text.
fn eval_json(scratch: &Scratch, data: &str, extra: &[&str]) -> (String, String) {
    let json = scratch
        .0
        .join(format!("{}-{}.json", data.replace('.', "_"), extra.len()));
    let bundle = fixtures().join("bundle/1");
    let data = fixtures().join(data);
    let mut args = vec!["--alpha", "0.5", "--json", path_str(&json)];
    args.extend(extra);
    let out = eval(&bundle, &data, "gift_amount", &args);
    assert!(
        out.status.success(),
        "{data:?} {extra:?}: {}",
        text(&out.stderr)
    );
    let written = std::fs::read_to_string(&json).expect("the JSON");
    (written, text(&out.stdout))
}

#[test]
fn cli_parquet_and_csv_give_the_same_json_and_match_the_reference() {
    let scratch = Scratch::new("groups-cli");
    for extra in [&[][..], &["--group", "session_id"][..]] {
        let (csv, csv_tables) = eval_json(&scratch, "data.csv", extra);
        let (parquet, parquet_tables) = eval_json(&scratch, "data.parquet", extra);
        assert_eq!(csv, parquet, "{extra:?}");
        let tables = |stdout: &str, file: &str| {
            stdout
                .lines()
                .filter(|l| !l.starts_with("JSON: "))
                .map(|l| l.replace(file, "DATA"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            tables(&csv_tables, "data.csv"),
            tables(&parquet_tables, "data.parquet"),
            "{extra:?}"
        );
    }
    // Against the reference (which has no fusion rows).
    let (json, stdout) = eval_json(&scratch, "data.parquet", &["--group", "session_id"]);
    let mut actual: Value = serde_json::from_str(&json).unwrap();
    let methods = actual["methods"].as_array_mut().unwrap();
    methods.retain(|m| m["name"] != "fusion");
    let expected = read_json(&fixtures().join("data_grouped_expected.json"));
    assert_json_close(&actual, &expected, "data grouped");
    for needle in [
        "N = 1,537 rows in 273 groups by `session_id`",
        "mean over the 164 groups with a label > 0",
        "| Metric | Direct-only | Stage2-only | Recall-Rerank (M=200) |",
        "| Top-M | Recall@1% | Recall@5% | Top-1% | Top-5% | NDCG@100 | Spearman |",
        "### Score fusion by M and alpha",
        "| default (default) | 200 | 1 | 8.3 |",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    let (json, _) = eval_json(&scratch, "data.csv", &[]);
    let mut actual: Value = serde_json::from_str(&json).unwrap();
    actual["methods"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["name"] != "fusion");
    assert_json_close(
        &actual,
        &read_json(&fixtures().join("data_expected.json")),
        "data",
    );
}

#[test]
fn cli_refuses_bad_groups_and_labels_naming_the_row() {
    let scratch = Scratch::new("groups-bad");
    let bundle = fixtures().join("bundle/1");
    let header = "user_level,follows,watch_minutes,gift_rate,wealth,gift_amount,session\n";
    let empty_group = scratch.file(
        "empty_group.csv",
        format!("{header}1,0,1,0.1,0,2,a\n2,1,3,0.2,1,0,\n"),
    );
    let good = fixtures().join("data.csv");
    let parquet = fixtures().join("data.parquet");
    let cases = [
        (&good, "gift_amount", "nope", "no column `nope`"),
        (&parquet, "gift_amount", "nope", "no column `nope`"),
        (
            &parquet,
            "wealth",
            "session_id",
            "label column `wealth`, row 3: the label is negative (-0.36",
        ),
        (
            &empty_group,
            "gift_amount",
            "session",
            "row 2 (line 3): the group column `session` is empty",
        ),
        (
            &parquet,
            "gift_amount",
            "gift_rate",
            "column `gift_rate` holds Float64; a group column must hold integers or text",
        ),
    ];
    for (data, label, group, needle) in cases {
        let out = eval(&bundle, data, label, &["--group", group]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{needle}: exited 0");
        assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
