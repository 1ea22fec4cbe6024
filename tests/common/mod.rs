//! Shared by the service tests: a private copy of the shipped model repository, a
//! configuration on `127.0.0.1:0`, a running server, and a reference ranking computed
//! straight from the engine.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use giftrank::bundle::Bundle;
use giftrank::config::Config;
use giftrank::engine::FeatureMatrix;
use giftrank::ranker::Ranker;
use giftrank::server::Server;
use serde_json::Value;
use tokio::sync::oneshot;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// Copies the files of one directory (not recursive).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

/// A temporary repository holding a copy of the shipped version 1.
pub fn temp_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&repo_root().join("models/gift/1"), &dir.path().join("1"));
    dir
}

/// Defaults on loopback port 0, with no background rescans unless a test asks for them.
pub fn test_config(repo: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: "127.0.0.1:0".parse().expect("addr"),
        grpc_listen: "127.0.0.1:0".parse().expect("addr"),
        model_repo: repo.to_owned(),
        rescan_interval_secs: 0,
        watch_events: false,
        ..Config::default()
    }
}

pub fn example(name: &str) -> Value {
    let text =
        std::fs::read_to_string(repo_root().join("examples").join(name)).expect("example file");
    serde_json::from_str(&text).expect("example JSON")
}

/// A server running in this process until `stop` is sent.
pub struct Running {
    pub url: String,
    pub admin_url: String,
    pub grpc_url: String,
    pub state: Arc<Ranker>,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn start(config: Config) -> Running {
    let server = Server::bind(config).await.expect("server starts");
    let url = format!("http://{}", server.public_addr().expect("addr"));
    let admin_url = format!("http://{}", server.admin_addr().expect("addr"));
    let grpc_url = format!("http://{}", server.grpc_addr().expect("addr"));
    let state = server.ranker();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        url,
        admin_url,
        grpc_url,
        state,
        stop: Some(stop),
        task,
    }
}

impl Running {
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .await
            .expect("join")
            .expect("server exits cleanly");
    }
}

/// The §1 ranking of a sparse JSON request computed independently of the service: features
/// looked up by name per candidate, then context; full sorts instead of selection.
/// Returns `(id, score, direct, stage2)` in order.
pub fn reference_rank(bundle: &Bundle, request: &Value) -> Vec<(String, f64, f64, Option<f64>)> {
    let candidates = request["candidates"].as_array().expect("candidates");
    let context = request.get("context").and_then(Value::as_object);
    let value_of = |c: &Value, name: &str| -> f64 {
        let v = c["features"]
            .get(name)
            .or_else(|| context.and_then(|ctx| ctx.get(name)));
        match v {
            Some(Value::Number(n)) => n.as_f64().expect("f64"),
            _ => f64::NAN,
        }
    };
    let scores = |model: &giftrank::engine::Model, rows: &[usize]| -> Vec<f64> {
        let mut values = Vec::new();
        for &i in rows {
            for name in model.feature_names() {
                values.push(value_of(&candidates[i], name));
            }
        }
        let matrix = FeatureMatrix::from_rows(values, model.num_features());
        let mut out = vec![0.0; rows.len()];
        model.predict(&matrix, &mut out);
        out
    };
    let n = candidates.len();
    let all: Vec<usize> = (0..n).collect();
    // A format 1 bundle: model 0 is Direct, model 1 Stage2, one recall-rerank profile.
    let d = scores(bundle.model(0), &all);
    let default_m = bundle.default_profile().first_m().expect("recall");
    let m = request
        .get("m")
        .and_then(Value::as_u64)
        .map_or(default_m, |m| m as usize)
        .min(n);
    let k = request
        .get("k")
        .and_then(Value::as_u64)
        .map_or(n, |k| k as usize)
        .min(n);
    let mut by_d = all.clone();
    by_d.sort_by(|&a, &b| d[b].partial_cmp(&d[a]).expect("finite").then(a.cmp(&b)));
    let top: Vec<usize> = by_d[..m].to_vec();
    let s = scores(bundle.model(1), &top);
    let mut head: Vec<(usize, f64)> = top.iter().copied().zip(s).collect();
    head.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .expect("finite")
            .then(d[b.0].partial_cmp(&d[a.0]).expect("finite"))
            .then(a.0.cmp(&b.0))
    });
    let mut out: Vec<(String, f64, f64, Option<f64>)> = head
        .iter()
        .map(|&(i, s)| {
            (
                candidates[i]["id"].as_str().expect("id").to_owned(),
                s,
                d[i],
                Some(s),
            )
        })
        .collect();
    for &i in &by_d[m..] {
        out.push((
            candidates[i]["id"].as_str().expect("id").to_owned(),
            d[i],
            d[i],
            None,
        ));
    }
    out.truncate(k);
    out
}

/// `(id, score, direct, stage2)` of a `/rank` response body.
pub fn response_items(body: &Value) -> Vec<(String, f64, f64, Option<f64>)> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            (
                item["id"].as_str().expect("id").to_owned(),
                item["score"].as_f64().expect("score"),
                item["direct_score"].as_f64().expect("direct"),
                item["stage2_score"].as_f64(),
            )
        })
        .collect()
}

/// The real `giftrank serve` on loopback port 0, with its JSON log lines forwarded by a
/// thread (so the pipe never fills) and its public address read from the start-up line.
pub struct Process {
    pub child: std::process::Child,
    pub url: String,
    pub logs: std::sync::mpsc::Receiver<Value>,
}

pub fn spawn_serve(repo: &Path, env: &[(&str, &str)]) -> Process {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_giftrank"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
            "--model-repo",
        ])
        .arg(repo)
        .env("GIFTRANK_LOG_FORMAT", "json")
        .env("GIFTRANK_GRPC_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("giftrank starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, logs) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(log) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(log);
            }
        }
    });
    let url = loop {
        let log = logs.recv().expect("giftrank exited before serving");
        if let Some(public) = log["fields"]["public"].as_str() {
            break format!("http://{public}");
        }
    };
    Process { child, url, logs }
}

impl Process {
    /// Blocks until a log line satisfies `matches`.
    pub fn wait_for_log(&self, matches: impl Fn(&Value) -> bool) -> Value {
        loop {
            let log = self.logs.recv().expect("giftrank exited first");
            if matches(&log) {
                return log;
            }
        }
    }

    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

/// The example request with its candidates repeated (fresh ids) up to `n`: large enough
/// to be in flight for a while.
pub fn repeated_request(n: usize) -> Value {
    let mut request = example("rank_request.json");
    let pool = request["candidates"]
        .as_array()
        .expect("candidates")
        .clone();
    let many: Vec<Value> = (0..n)
        .map(|i| {
            let mut c = pool[i % pool.len()].clone();
            c["id"] = Value::String(format!("c{i}"));
            c
        })
        .collect();
    request["candidates"] = Value::Array(many);
    request
}
