//! Bad model files are refused with the place at fault, never with a panic: arbitrary
//! bytes, every truncation of a real model, hand-made inconsistencies, numbers that
//! would overflow arithmetic, and random mutations of valid models (bytes, lines and
//! numbers) that reach the tree parser and, when they still load, the scorer.
//!
//! Also run in a debug build (`cargo test --test engine_robustness`), where integer
//! overflow panics; the property tests then run fewer cases.

use std::path::Path;

use giftrank::engine::{FeatureMatrix, Isa, Model};
use proptest::prelude::*;
use proptest::sample::{select, Index};

/// Property-test cases: fewer in a debug build, where parsing is ~20 times slower.
const fn cases(release: u32) -> u32 {
    if cfg!(debug_assertions) {
        release / 10
    } else {
        release
    }
}

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
    // Every byte in release; in a debug build every 17th and each line's ends.
    let step = if cfg!(debug_assertions) { 17 } else { 1 };
    let near_line_end = |cut: usize| {
        text.as_bytes()[cut.saturating_sub(1)..(cut + 1).min(text.len())].contains(&b'\n')
    };
    for cut in 0..end {
        if !text.is_char_boundary(cut) || (cut % step != 0 && !near_line_end(cut)) {
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

#[test]
fn a_feature_named_twice_is_refused() {
    let text = fixture_model("regression_nan");
    let names =
        "feature_names=Column_0 Column_1 Column_2 Column_1 Column_4 Column_5 Column_6 Column_7";
    let bad = with_line(&text, "feature_names", names);
    let error = Model::parse(&bad).expect_err("must be refused");
    assert_eq!(error.key.as_deref(), Some("feature_names"), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("`Column_1` is named twice (features 1 and 3)"),
        "{message}"
    );
}

/// Replaces the first line starting with `key=` after byte `from` (0: the header).
fn with_line_after(text: &str, from: usize, key: &str, new_line: &str) -> String {
    let at = from
        + text[from..]
            .find(&format!("\n{key}="))
            .expect("key present");
    format!("{}{}", &text[..at], with_line(&text[at..], key, new_line))
}

/// Numbers that overflow `usize` or `i32` arithmetic (a panic in a debug build) are
/// refused with their key.
#[test]
fn numbers_that_would_overflow_are_refused() {
    let categorical = fixture_model("categorical_many");
    let tree_0 = categorical.find("Tree=0").expect("a tree");
    let huge = usize::MAX.to_string();
    // Tree 0's size made huge, the others kept: its offset plus its size overflows.
    let sizes = categorical
        .lines()
        .find_map(|l| l.strip_prefix("tree_sizes="))
        .expect("tree_sizes");
    let (_, later_sizes) = sizes.split_once(' ').expect("several trees");
    let cases = [
        (
            with_line_after(&categorical, tree_0, "num_cat", &format!("num_cat={huge}")),
            "num_cat",
        ),
        (
            with_line_after(&categorical, tree_0, "num_cat", "num_cat=31"),
            "num_cat",
        ),
        (
            with_line_after(&categorical, tree_0, "num_leaves", "num_leaves=131073"),
            "num_leaves",
        ),
        (
            with_line(
                &categorical,
                "tree_sizes",
                &format!("tree_sizes={huge} {later_sizes}"),
            ),
            "tree_sizes",
        ),
        (
            with_line(
                &categorical,
                "max_feature_idx",
                &format!("max_feature_idx={huge}"),
            ),
            "max_feature_idx",
        ),
    ];
    for (text, key) in &cases {
        let error = Model::parse(text).expect_err(key);
        assert_eq!(error.key.as_deref(), Some(*key), "{error}");
        assert!(error.line.is_some(), "{error}");
    }
}

/// A model with more outputs than trees is refused: its output count only sizes
/// buffers, and a huge one would overflow them.
#[test]
fn more_outputs_than_trees_is_refused() {
    let model = |num_class: &str| {
        format!(
            "tree\nversion=v4\nnum_class={num_class}\nnum_tree_per_iteration={num_class}\n\
label_index=0\nmax_feature_idx=0\nobjective=regression\nfeature_names=x\nfeature_infos=[0:1]\n\n\
end of trees\n\nparameters:\nend of parameters\n"
        )
    };
    assert!(Model::parse(&model("1")).is_ok());
    for num_class in ["2", "1152921504606846976"] {
        let error = Model::parse(&model(num_class)).expect_err(num_class);
        assert_eq!(error.key.as_deref(), Some("num_class"), "{error}");
    }
}

/// Rows worth scoring with any model that loads: one value in every column, for the
/// values where decisions and category lookups change.
fn probe_rows(num_features: usize) -> FeatureMatrix {
    const VALUES: [f64; 16] = [
        f64::NAN,
        0.0,
        -0.0,
        1e-36,
        1.0,
        -1.0,
        0.5,
        3.0,
        31.0,
        64.0,
        2147483648.0,
        1e308,
        -1e308,
        f64::INFINITY,
        f64::NEG_INFINITY,
        4.0e9,
    ];
    let mut rows = FeatureMatrix::missing(VALUES.len(), num_features);
    for (r, &x) in VALUES.iter().enumerate() {
        for f in 0..num_features {
            rows.set(r, f, x);
        }
    }
    rows
}

/// Scores the probe rows with every instruction set this CPU has: must not panic.
fn score_everything(mut model: Model) {
    let rows = probe_rows(model.num_features());
    let mut out = vec![0.0; rows.num_rows() * model.num_outputs()];
    for isa in Isa::ALL {
        if model.set_isa(isa) == isa {
            model.predict(&rows, &mut out);
            model.predict_raw(&rows, &mut out);
        }
    }
}

/// The model with only its first `keep` trees (and `tree_sizes` to match): small
/// seeds, so that mutations land in parsed trees and each case is cheap.
fn first_trees(text: &str, keep: usize) -> String {
    let start = text.find("\nTree=0\n").expect("a tree") + 1;
    let end = text.find("\nend of trees").expect("end of trees") + 1;
    let cut = text
        .find(&format!("\nTree={keep}\n"))
        .map_or(end, |i| i + 1);
    let header = &text[..start];
    let sizes = header
        .lines()
        .find_map(|l| l.strip_prefix("tree_sizes="))
        .expect("tree_sizes");
    let kept: Vec<&str> = sizes.split(' ').take(keep).collect();
    let header = with_line(
        header,
        "tree_sizes",
        &format!("tree_sizes={}", kept.join(" ")),
    );
    format!("{header}{}{}", &text[start..cut], &text[end..])
}

/// The valid models the mutation test starts from: each kind of tree, leaf, objective
/// and category list the fixtures have, each also without its optional `tree_sizes`
/// line (which most edits inside a tree contradict), so that more edits reach scoring.
fn seeds() -> &'static [String] {
    static SEEDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        [
            ("categorical_many", 3),
            ("linear_tree", 3),
            ("multiclass", 3),
            ("pandas_categorical", 3),
            ("pandas_numeric_categories", 3),
            ("random_forest", 2),
            ("regression_zero", 3),
            ("single_leaf", 6),
        ]
        .into_iter()
        .flat_map(|(case, keep)| {
            let text = first_trees(&fixture_model(case), keep);
            let start = text.find("\ntree_sizes=").expect("tree_sizes") + 1;
            let end = start + text[start..].find('\n').expect("line end") + 1;
            let without_sizes = format!("{}{}", &text[..start], &text[end..]);
            for seed in [&text, &without_sizes] {
                assert!(Model::parse(seed).is_ok(), "{case}: cut to {keep} trees");
            }
            [text, without_sizes]
        })
        .collect()
    })
}

/// Numbers a mutation writes over one in the file: past the edges of the integer types
/// the parser reads (where arithmetic on them would overflow) ...
const OVERFLOWING: [&str; 10] = [
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
];

/// ... and small edge values, LightGBM's limits and the floats that are not ordinary.
const EDGES: [&str; 24] = [
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "31",
    "32",
    "33",
    "63",
    "64",
    "65",
    "131072",
    "131073",
    "-2147483648",
    "1e308",
    "-1e308",
    "1e-320",
    "inf",
    "-inf",
    "nan",
    "NaN",
    "1.5",
    "-0.5",
    "",
];

/// One edit of a model's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    InsertByte(Index, u8),
    DeleteBytes(Index, usize),
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    /// Overwrites one number anywhere in the file.
    ReplaceNumber(Index, &'static str),
    /// Overwrites one word of a `key=value` line's value (a scalar, or one list item).
    ReplaceWord(Index, Index, &'static str),
    /// Overwrites the whole value of one `key=value` line.
    ReplaceValue(Index, &'static str),
    /// Repeats one word of a `key=value` line's value (a list one too long).
    DuplicateWord(Index, Index),
    /// Drops one word of a `key=value` line's value (a list one too short).
    DeleteWord(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<Index>;
    let extreme = || prop_oneof![select(&OVERFLOWING[..]), select(&EDGES[..])];
    let byte = select(&b"0123456789-+.e= \n:[],\"x"[..]);
    prop_oneof![
        1 => (index(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        1 => (index(), byte).prop_map(|(at, b)| Mutation::InsertByte(at, b)),
        1 => (index(), 1usize..24).prop_map(|(at, n)| Mutation::DeleteBytes(at, n)),
        1 => index().prop_map(Mutation::DeleteLine),
        1 => index().prop_map(Mutation::DuplicateLine),
        1 => (index(), index()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        2 => (index(), extreme()).prop_map(|(at, x)| Mutation::ReplaceNumber(at, x)),
        4 => (index(), index(), extreme()).prop_map(|(l, w, x)| Mutation::ReplaceWord(l, w, x)),
        2 => (index(), extreme()).prop_map(|(at, x)| Mutation::ReplaceValue(at, x)),
        1 => (index(), index()).prop_map(|(l, w)| Mutation::DuplicateWord(l, w)),
        1 => (index(), index()).prop_map(|(l, w)| Mutation::DeleteWord(l, w)),
    ]
}

/// Byte ranges of the lines of `text`, newline included.
fn line_ranges(text: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' {
            ranges.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < text.len() {
        ranges.push(start..text.len());
    }
    ranges
}

/// Byte ranges of the values of the `key=value` lines (newline excluded).
fn value_ranges(text: &[u8]) -> Vec<std::ops::Range<usize>> {
    line_ranges(text)
        .into_iter()
        .filter_map(|line| {
            let eq = text[line.clone()].iter().position(|&b| b == b'=')?;
            let end = if text[line.end - 1] == b'\n' {
                line.end - 1
            } else {
                line.end
            };
            Some(line.start + eq + 1..end)
        })
        .collect()
}

/// Byte ranges of the words between spaces inside `range`.
fn word_ranges(text: &[u8], range: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
    let mut words = Vec::new();
    let mut start = range.start;
    for i in range.clone() {
        if text[i] == b' ' {
            words.push(start..i);
            start = i + 1;
        }
    }
    words.push(start..range.end);
    words
}

/// Byte ranges of every token that reads as a number.
fn number_ranges(text: &[u8]) -> Vec<std::ops::Range<usize>> {
    let separator = |b: u8| b" \t\r\n=:,[]\"".contains(&b);
    let mut numbers = Vec::new();
    let mut start = 0;
    for i in 0..=text.len() {
        if i == text.len() || separator(text[i]) {
            let token = std::str::from_utf8(&text[start..i]).unwrap_or("x");
            if !token.is_empty() && token.parse::<f64>().is_ok() {
                numbers.push(start..i);
            }
            start = i + 1;
        }
    }
    numbers
}

impl Mutation {
    fn apply(&self, text: &mut Vec<u8>) {
        let pick = |ranges: Vec<std::ops::Range<usize>>, at: &Index| {
            (!ranges.is_empty()).then(|| ranges[at.index(ranges.len())].clone())
        };
        match self {
            Mutation::FlipBit(at, bit) => {
                if !text.is_empty() {
                    let i = at.index(text.len());
                    text[i] ^= 1 << bit;
                }
            }
            Mutation::InsertByte(at, byte) => {
                text.insert(at.index(text.len() + 1), *byte);
            }
            Mutation::DeleteBytes(at, len) => {
                if !text.is_empty() {
                    let i = at.index(text.len());
                    text.drain(i..(i + len).min(text.len()));
                }
            }
            Mutation::DeleteLine(at) => {
                if let Some(line) = pick(line_ranges(text), at) {
                    text.drain(line);
                }
            }
            Mutation::DuplicateLine(at) => {
                if let Some(line) = pick(line_ranges(text), at) {
                    let copy = text[line.clone()].to_vec();
                    text.splice(line.start..line.start, copy);
                }
            }
            Mutation::SwapLines(a, b) => {
                let lines = line_ranges(text);
                if !lines.is_empty() {
                    let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                    let mut order: Vec<_> = lines.clone();
                    order.swap(a, b);
                    *text = order.into_iter().flat_map(|l| text[l].to_vec()).collect();
                }
            }
            Mutation::ReplaceNumber(at, with) => {
                if let Some(number) = pick(number_ranges(text), at) {
                    text.splice(number, with.bytes());
                }
            }
            Mutation::ReplaceValue(at, with) => {
                if let Some(value) = pick(value_ranges(text), at) {
                    text.splice(value, with.bytes());
                }
            }
            Mutation::ReplaceWord(line, word, with) => {
                if let Some(value) = pick(value_ranges(text), line) {
                    if let Some(w) = pick(word_ranges(text, value), word) {
                        text.splice(w, with.bytes());
                    }
                }
            }
            Mutation::DuplicateWord(line, word) => {
                if let Some(value) = pick(value_ranges(text), line) {
                    if let Some(w) = pick(word_ranges(text, value), word) {
                        let mut copy = text[w.clone()].to_vec();
                        copy.push(b' ');
                        text.splice(w.start..w.start, copy);
                    }
                }
            }
            Mutation::DeleteWord(line, word) => {
                if let Some(value) = pick(value_ranges(text), line) {
                    if let Some(w) = pick(word_ranges(text, value.clone()), word) {
                        let end = (w.end + 1).min(value.end);
                        text.drain(w.start..end);
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(40_000)))]

    /// Valid models with one to four edits: loading never panics, and a model that
    /// still loads scores every probe row without panicking.
    #[test]
    fn mutated_valid_models_never_panic(
        seed in 0..seeds().len(),
        mutations in prop::collection::vec(mutation(), 1..=4),
    ) {
        let mut bytes = seeds()[seed].clone().into_bytes();
        for mutation in &mutations {
            mutation.apply(&mut bytes);
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(model) = Model::parse(&text) {
            score_everything(model);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

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
