//! Every fixture LightGBM produced (`tools/gen_engine_fixtures.py`) scores the same here:
//! each row of `data.csv` through `model.txt` equals LightGBM's `Booster.predict` in
//! `expected.csv` to relative 1e-9, and the raw scores equal `raw.csv`, with every
//! instruction set the CPU running the test has. Values of pandas category features
//! follow one rule, by text (the CSV cells) and by number (`service_rows.json`).

use std::path::{Path, PathBuf};

use giftrank::commands::load_model_and_rows;
use giftrank::engine::{FeatureMatrix, Isa, Model};

const RELATIVE_TOLERANCE: f64 = 1e-9;

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/fixtures/engine exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.join("model.txt").exists())
        .collect();
    dirs.sort();
    dirs
}

/// Reads a CSV of scores: one column per output, one row per input row.
fn read_scores(path: &Path) -> Vec<Vec<f64>> {
    let mut reader = csv::Reader::from_path(path).expect("scores file");
    reader
        .records()
        .map(|r| {
            r.expect("scores row")
                .iter()
                .map(|cell| cell.parse::<f64>().expect("a number"))
                .collect()
        })
        .collect()
}

fn close(ours: f64, theirs: f64) -> bool {
    ours == theirs
        || (ours.is_nan() && theirs.is_nan())
        || (ours - theirs).abs() <= RELATIVE_TOLERANCE * ours.abs().max(theirs.abs())
}

/// Scores the fixture with every instruction set this CPU has and checks each against
/// LightGBM's `file`; returns the number of rows.
fn compare(dir: &Path, file: &str, raw: bool) -> usize {
    let (mut model, rows) = load_model_and_rows(&dir.join("model.txt"), &dir.join("data.csv"))
        .unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
    let expected = read_scores(&dir.join(file));
    assert_eq!(
        expected.len(),
        rows.num_rows(),
        "{}: row count",
        dir.display()
    );
    let k = model.num_outputs();
    for isa in Isa::ALL {
        if model.set_isa(isa) != isa {
            continue; // not on this CPU
        }
        let mut ours = vec![0.0; rows.num_rows() * k];
        if raw {
            model.predict_raw(&rows, &mut ours);
        } else {
            model.predict(&rows, &mut ours);
        }
        for (i, (got, want)) in ours.chunks_exact(k).zip(&expected).enumerate() {
            assert_eq!(got.len(), want.len(), "{}: outputs per row", dir.display());
            for (g, w) in got.iter().zip(want) {
                assert!(
                    close(*g, *w),
                    "{} {file} row {i} (csv line {}), {isa}: giftrank {g:?}, LightGBM {w:?}",
                    dir.display(),
                    i + 2
                );
            }
        }
    }
    expected.len()
}

#[test]
fn every_fixture_matches_lightgbm_predict() {
    let dirs = fixture_dirs();
    assert!(
        dirs.len() >= 20,
        "expected the full fixture set, found {}",
        dirs.len()
    );
    for dir in &dirs {
        let rows = compare(dir, "expected.csv", false);
        assert!(rows > 0, "{}: no rows", dir.display());
    }
}

#[test]
fn every_fixture_matches_lightgbm_raw_scores() {
    for dir in fixture_dirs() {
        if dir.join("raw.csv").exists() {
            compare(&dir, "raw.csv", true);
        }
    }
}

#[test]
fn pandas_category_labels_map_to_codes_and_unseen_labels_to_missing() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine/pandas_categorical");
    let model = Model::from_file(&dir.join("model.txt")).expect("model");
    let feature = (0..model.num_features())
        .find(|&f| model.categories(f).is_some())
        .expect("a pandas category feature");
    let labels = model.categories(feature).expect("labels").to_vec();
    assert_eq!(model.category_value(feature, &labels[1]), Some(1.0));
    assert!(model
        .category_value(feature, "__never_seen__")
        .expect("categorical")
        .is_nan());
    // Text categories never equal a number, as in pandas.
    assert!(model
        .category_value_of_number(feature, 1.0)
        .expect("categorical")
        .is_nan());
    // The data file really uses labels, so the comparison above exercised the mapping.
    let text = std::fs::read_to_string(dir.join("data.csv")).expect("data");
    assert!(text.contains(&labels[0]));
}

fn numeric_categories_fixture() -> (PathBuf, Model, usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/engine/pandas_numeric_categories");
    let model = Model::from_file(&dir.join("model.txt")).expect("model");
    let bucket = model.feature_names().iter().position(|n| n == "bucket");
    (dir, model, bucket.expect("a `bucket` feature"))
}

#[test]
fn numeric_categories_match_numbers_and_text_spelling_them() {
    let (_, model, bucket) = numeric_categories_fixture();
    let labels = model.categories(bucket).expect("a category list");
    assert_eq!(labels, ["3", "7", "11", "20", "42"]);
    for (text, code) in [
        ("3", 0.0),
        ("3.0", 0.0),
        ("7", 1.0),
        ("20.00", 3.0),
        ("4.2e1", 4.0),
    ] {
        assert_eq!(model.category_value(bucket, text), Some(code), "`{text}`");
    }
    for text in ["5", "3.5", "-3", "__unseen__", "0x3", "nan", "inf"] {
        let value = model.category_value(bucket, text).expect("categorical");
        assert!(value.is_nan(), "`{text}` gave {value}");
    }
    for (x, code) in [(3.0, 0.0), (11.0, 2.0), (42.0, 4.0)] {
        assert_eq!(model.category_value_of_number(bucket, x), Some(code), "{x}");
    }
    // Not categories: a code (1), a near miss, a fraction, missing, huge values.
    for x in [
        1.0,
        2.9999999999999996,
        3.5,
        -1.0,
        f64::NAN,
        1e300,
        f64::INFINITY,
    ] {
        let value = model
            .category_value_of_number(bucket, x)
            .expect("categorical");
        assert!(value.is_nan(), "{x} gave {value}");
    }
    // A numeric feature has no category list: its numbers are its values.
    assert_eq!(model.category_value_of_number(0, 3.0), None);
    assert_eq!(model.category_value(0, "3"), None);
}

/// `service_rows.json`: each row's category is a JSON number, read through
/// `Model::category_value_of_number` as a service must, and scores as LightGBM did.
#[test]
fn numeric_categories_given_as_numbers_score_as_lightgbm() {
    let (dir, model, _) = numeric_categories_fixture();
    let text = std::fs::read_to_string(dir.join("service_rows.json")).expect("service rows");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let names: Vec<&str> = doc["feature_names"]
        .as_array()
        .expect("feature_names")
        .iter()
        .map(|n| n.as_str().expect("a name"))
        .collect();
    assert_eq!(names, model.feature_names());
    let rows = doc["rows"].as_array().expect("rows");
    let mut matrix = FeatureMatrix::missing(rows.len(), model.num_features());
    let mut expected = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for (f, name) in names.iter().enumerate() {
            let x = row["features"][*name].as_f64().unwrap_or(f64::NAN);
            let value = model.category_value_of_number(f, x).unwrap_or(x);
            matrix.set(r, f, value);
        }
        expected.push(row["expected"].as_f64().expect("expected score"));
    }
    let mut scores = vec![0.0; rows.len()];
    model.predict(&matrix, &mut scores);
    for (r, (got, want)) in scores.iter().zip(&expected).enumerate() {
        assert!(
            close(*got, *want),
            "row {r} ({}): giftrank {got}, LightGBM {want}",
            rows[r]["note"]
        );
    }
    assert!(rows.len() >= 100, "{} rows", rows.len());
}
