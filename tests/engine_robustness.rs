//! Bad model files are refused with the place at fault, never with a panic: arbitrary
//! bytes, every truncation of a real model, and hand-made inconsistencies.

use std::path::Path;

use giftrank::engine::Model;
use proptest::prelude::*;

fn fixture_model(case: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/engine")
        .join(case)
        .join("model.txt");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Byte offset just past the `end of parameters` line: every cut before it is detectable.
fn end_of_parameters(text: &str) -> usize {
    text.find("end of parameters").expect("parameters section") + "end of parameters".len()
}

#[test]
fn every_truncation_of_a_small_model_is_refused() {
    let text = fixture_model("categorical_many");
    let end = end_of_parameters(&text);
    for cut in 0..end {
        if !text.is_char_boundary(cut) {
            continue;
        }
        assert!(
            Model::parse(&text[..cut]).is_err(),
            "a cut at byte {cut} of {end} was accepted"
        );
    }
    assert!(Model::parse(&text).is_ok());
}

#[test]
fn every_line_truncation_of_each_fixture_is_refused() {
    for case in [
        "linear_tree",
        "multiclass",
        "pandas_categorical",
        "random_forest",
        "single_leaf",
    ] {
        let text = fixture_model(case);
        let end = end_of_parameters(&text);
        for (cut, _) in text.match_indices('\n').filter(|(i, _)| *i < end) {
            for at in [cut, cut + 1] {
                assert!(
                    Model::parse(&text[..at]).is_err(),
                    "{case}: a cut at byte {at} was accepted"
                );
            }
        }
    }
}

/// Replaces the first line starting with `key=` in the text.
fn with_line(text: &str, key: &str, new_line: &str) -> String {
    let start = text.find(&format!("\n{key}=")).expect("key present") + 1;
    let end = start + text[start..].find('\n').expect("line end");
    format!("{}{}{}", &text[..start], new_line, &text[end..])
}

fn error_of(text: &str) -> String {
    Model::parse(text).expect_err("must be refused").to_string()
}

#[test]
fn inconsistent_trees_name_tree_key_and_line() {
    let text = fixture_model("regression_nan");
    let line_of = |needle: &str| {
        text[..text.find(needle).expect("needle")]
            .matches('\n')
            .count()
            + 2
    };

    let bad = with_line(&text, "leaf_value", "leaf_value=1 2");
    let message = error_of(&bad);
    assert!(
        message.contains("tree 0") && message.contains("leaf_value"),
        "{message}"
    );
    assert!(
        message.contains(&format!("line {}", line_of("\nleaf_value="))),
        "{message}"
    );

    let bad = with_line(
        &text,
        "left_child",
        "left_child=1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
    );
    let message = error_of(&bad);
    assert!(
        message.contains("tree 0") && message.contains("left_child"),
        "{message}"
    );

    let bad = with_line(&text, "decision_type", "decision_type=64");
    assert!(error_of(&bad).contains("decision_type"));

    let bad = with_line(&text, "split_feature", "split_feature=999");
    assert!(error_of(&bad).contains("split_feature"));

    let bad = with_line(&text, "threshold", "threshold=0.5x");
    assert!(error_of(&bad).contains("`0.5x` is not a valid number"));

    let bad = with_line(&text, "tree_sizes", "tree_sizes=10 20");
    assert!(error_of(&bad).contains("tree_sizes"));

    let bad = with_line(&text, "objective", "objective=regresion");
    assert!(error_of(&bad).contains("unknown objective"));

    let bad = with_line(&text, "max_feature_idx", "max_feature_idx=2");
    assert!(error_of(&bad).contains("feature_names"));
}

#[test]
fn a_cycle_between_nodes_is_refused() {
    let text = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=0\n\
objective=regression\nfeature_names=x\nfeature_infos=[0:1]\n\nTree=0\nnum_leaves=3\nnum_cat=0\n\
split_feature=0 0\nthreshold=0.5 0.7\ndecision_type=2 2\nleft_child=1 0\nright_child=-1 -2\n\
leaf_value=1 2 3\nshrinkage=1\n\n\nend of trees\n\nparameters:\nend of parameters\n";
    let message = error_of(text);
    assert!(
        message.contains("reached twice") || message.contains("not reachable"),
        "{message}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Model::parse(text);
        }
    }

    #[test]
    fn mutated_model_text_never_panics(cut in 0usize..4000, insert in "[-=0-9a-z \\n.]{0,12}") {
        let text = fixture_model("categorical_many");
        let at = cut.min(text.len());
        let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let mutated = format!("{}{}{}", &text[..at], insert, &text[at..]);
        if let Ok(model) = Model::parse(&mutated) {
            // Whatever loads must score without panicking.
            let rows = giftrank::engine::FeatureMatrix::missing(1, model.num_features());
            let mut out = vec![0.0; model.num_outputs()];
            model.predict(&rows, &mut out);
        }
    }
}
