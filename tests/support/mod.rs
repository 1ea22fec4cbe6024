//! Shared by the `eval`, `eval_groups` and `data` tests: the eval fixtures, JSON compared
//! to 1e-9, a scratch directory, and running the `giftrank` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use giftrank::eval::{report, Evaluation};
use serde_json::Value;

pub const TOLERANCE: f64 = 1e-9;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures/eval")
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Same JSON, numbers within `TOLERANCE` (integers exactly), same keys in every object.
pub fn assert_json_close(actual: &Value, expected: &Value, at: &str) {
    match (actual, expected) {
        (Value::Number(a), Value::Number(e)) if e.is_u64() => {
            assert_eq!(a.as_u64(), e.as_u64(), "{at}: integer")
        }
        (Value::Number(a), Value::Number(e)) => {
            let (a, e) = (a.as_f64().unwrap(), e.as_f64().unwrap());
            assert!((a - e).abs() <= TOLERANCE, "{at}: {a} vs expected {e}");
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "{at}: array length");
            for (i, (a, e)) in a.iter().zip(e).enumerate() {
                assert_json_close(a, e, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(a), Value::Object(e)) => {
            let mut a_keys: Vec<&String> = a.keys().collect();
            let mut e_keys: Vec<&String> = e.keys().collect();
            a_keys.sort();
            e_keys.sort();
            assert_eq!(a_keys, e_keys, "{at}: keys");
            for (key, e) in e {
                assert_json_close(&a[key], e, &format!("{at}.{key}"));
            }
        }
        _ => assert_eq!(actual, expected, "{at}"),
    }
}

pub fn as_vec(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

pub fn m_list(value: &Value) -> Vec<usize> {
    value
        .as_array()
        .expect("m_list")
        .iter()
        .map(|v| v.as_u64().expect("m") as usize)
        .collect()
}

pub fn json_of(evaluation: &Evaluation) -> Value {
    serde_json::from_str(&report::json(evaluation)).expect("report::json is valid JSON")
}

/// A scratch directory for one test, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("giftrank-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    /// Writes `bytes` to the file `name` in the directory and returns its path.
    pub fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn giftrank(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_giftrank"))
        .args(args)
        .output()
        .expect("giftrank runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// `giftrank eval --bundle BUNDLE --data DATA --label LABEL` followed by `extra`.
pub fn eval(bundle: &Path, data: &Path, label: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "eval",
        "--bundle",
        path_str(bundle),
        "--data",
        path_str(data),
        "--label",
        label,
    ];
    args.extend(extra);
    giftrank(&args)
}
