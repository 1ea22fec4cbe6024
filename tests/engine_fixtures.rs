//! Every fixture LightGBM produced (`tools/gen_engine_fixtures.py`) scores the same here:
//! each row of `data.csv` through `model.txt` equals LightGBM's `Booster.predict` in
//! `expected.csv` to relative 1e-9, and the raw scores equal `raw.csv`, with every
//! instruction set the CPU running the test has.

use std::path::{Path, PathBuf};

use giftrank::commands::load_model_and_rows;
use giftrank::engine::Isa;

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
    let model = giftrank::engine::Model::from_file(&dir.join("model.txt")).expect("model");
    let feature = (0..model.num_features())
        .find(|&f| model.categories(f).is_some())
        .expect("a pandas category feature");
    let labels = model.categories(feature).expect("labels").to_vec();
    assert_eq!(model.category_value(feature, &labels[1]), Some(1.0));
    assert!(model
        .category_value(feature, "__never_seen__")
        .expect("categorical")
        .is_nan());
    // The data file really uses labels, so the comparison above exercised the mapping.
    let text = std::fs::read_to_string(dir.join("data.csv")).expect("data");
    assert!(text.contains(&labels[0]));
}
