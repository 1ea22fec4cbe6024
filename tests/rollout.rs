//! The rollout policy against a real server and real files (DESIGN.md §9): canary share
//! and stickiness across a restart, shadow comparison off the response path, an invalid
//! policy kept out, a durable pin, and a canary removed under traffic.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use giftrank::policy::bucket;
use giftrank::ranker::Ranker;
use serde_json::{json, Value};

/// A repository holding copies of shipped versions, `(name on disk, shipped version)`.
fn repo_with(versions: &[(&str, &str)]) -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("temp dir");
    for (name, shipped) in versions {
        common::copy_dir(
            &common::repo_root().join("models/gift").join(shipped),
            &repo.path().join(name),
        );
    }
    repo
}

/// Writes `serving.toml` as ops are told to: write, then rename into place.
fn write_policy(repo: &Path, text: &str) {
    std::fs::write(repo.join("serving.toml.tmp"), text).expect("write");
    std::fs::rename(repo.join("serving.toml.tmp"), repo.join("serving.toml")).expect("rename");
}

async fn reload(state: &Arc<Ranker>) {
    let state = state.clone();
    tokio::task::spawn_blocking(move || state.reload())
        .await
        .expect("reload");
}

fn small_request(extra: Value) -> Value {
    let mut request = common::example("rank_request.json");
    let candidates = request["candidates"].as_array().expect("candidates")[..20].to_vec();
    request["candidates"] = json!(candidates);
    for (key, value) in extra.as_object().expect("object") {
        request[key] = value.clone();
    }
    request
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Vec<u8>) {
    let response = client
        .post(format!("{url}/rank"))
        .json(body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

async fn version_for(client: &reqwest::Client, url: &str, key: &str) -> String {
    let (status, body) = post(client, url, &small_request(json!({"routing_key": key}))).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    body["model_version"].as_str().expect("version").to_owned()
}

async fn models(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(format!("{url}/v1/models"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON")
}

fn shadow_count(state: &Ranker, outcome: &str) -> u64 {
    state
        .metrics
        .shadow_requests
        .with_label_values(&[outcome])
        .get()
}

/// Waits until the shadow worker has dealt with `n` jobs in all, or fails after a minute.
async fn until_shadowed(state: &Ranker, n: u64) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while ["scored", "skipped", "failed"]
        .iter()
        .map(|o| shadow_count(state, o))
        .sum::<u64>()
        < n
    {
        assert!(
            Instant::now() < give_up,
            "the shadow worker never caught up"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn the_canary_takes_its_share_of_keys_stickily_across_a_restart() {
    let repo = repo_with(&[("1", "1"), ("2", "2")]);
    write_policy(repo.path(), "[canary]\nversion = \"1\"\npercent = 10\n");
    let server = common::start(common::test_config(repo.path())).await;
    let client = reqwest::Client::new();

    let keys: Vec<String> = (0..2000).map(|i| format!("user-{i}")).collect();
    let mut on_canary = Vec::new();
    for key in &keys {
        if version_for(&client, &server.url, key).await == "1" {
            on_canary.push(key.clone());
        }
    }
    // Exactly the keys the documented hash puts in the first 10% of buckets…
    let expected: Vec<&String> = keys.iter().filter(|k| bucket(k) < 1_000).collect();
    assert_eq!(on_canary.iter().collect::<Vec<_>>(), expected);
    // …which is within the binomial 99.9% interval of 10% of 2,000.
    let (n, p) = (2000.0, 0.10);
    let half_width = 3.2905 * f64::sqrt(n * p * (1.0 - p));
    let share = on_canary.len() as f64;
    assert!((share - n * p).abs() <= half_width, "{share}");
    assert_eq!(
        server
            .state
            .metrics
            .canary_requests
            .with_label_values(&["1"])
            .get(),
        on_canary.len() as u64
    );
    // The same key always meets the same version, the request_id stands in for it, and
    // after a restart every replica agrees.
    let sample: Vec<&String> = keys.iter().step_by(40).collect();
    let mut before = Vec::new();
    for key in &sample {
        let version = version_for(&client, &server.url, key).await;
        let (_, by_id) = post(
            &client,
            &server.url,
            &small_request(json!({"request_id": key})),
        )
        .await;
        let by_id: Value = serde_json::from_slice(&by_id).expect("JSON");
        assert_eq!(by_id["model_version"], version.as_str());
        before.push(version);
    }
    server.shutdown().await;
    let server = common::start(common::test_config(repo.path())).await;
    for (key, version) in sample.iter().zip(&before) {
        assert_eq!(
            &version_for(&client, &server.url, key).await,
            version,
            "{key}"
        );
    }
    let policy = &models(&client, &server.url).await["policy"];
    assert_eq!(policy["canary"]["in_force"], true);
    assert_eq!(policy["canary"]["disk"]["state"], "ready");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_compares_orders_without_touching_the_answers() {
    // Version 3 is a copy of version 1: the same models.
    let repo = repo_with(&[("1", "1"), ("2", "2"), ("3", "1")]);
    let mut config = common::test_config(repo.path());
    config.scoring_slots = 2;
    let server = common::start(config).await;
    let state = server.state.clone();
    let client = reqwest::Client::new();
    let mut request = common::repeated_request(300);
    request["request_id"] = json!("same-every-time");
    request["k"] = json!(10);
    request.as_object_mut().expect("object").remove("m");
    let (_, without) = post(&client, &server.url, &request).await;

    // A shadow with the same models agrees on every sampled request.
    write_policy(repo.path(), "[shadow]\nversion = \"1\"\nsample = 1.0\n");
    reload(&state).await;
    for n in 1..=5 {
        let (status, with) = post(&client, &server.url, &request).await;
        assert_eq!(status, 200);
        assert_eq!(with, without, "the shadow changed an answer");
        until_shadowed(&state, n).await;
    }
    assert_eq!(shadow_count(&state, "scored"), 5);
    assert_eq!(state.metrics.shadow_overlap.get_sample_count(), 5);
    assert_eq!(state.metrics.shadow_overlap.get_sample_sum(), 5.0);
    assert_eq!(state.metrics.shadow_correlation.get_sample_sum(), 5.0);

    // Version 0 recalls only the Top-5 before its rerank: a different order.
    common::copy_dir(&repo.path().join("1"), &repo.path().join("0"));
    let bundle = repo.path().join("0/bundle.toml");
    let text = std::fs::read_to_string(&bundle).expect("bundle");
    std::fs::write(&bundle, text.replace("default_m = 200", "default_m = 5")).expect("write");
    write_policy(repo.path(), "[shadow]\nversion = \"0\"\nsample = 1.0\n");
    reload(&state).await;
    let (_, with) = post(&client, &server.url, &request).await;
    assert_eq!(with, without);
    until_shadowed(&state, 6).await;
    assert_eq!(shadow_count(&state, "scored"), 6);
    let overlap = state.metrics.shadow_overlap.get_sample_sum() - 5.0;
    assert!(overlap < 1.0, "{overlap}");

    // Busy: every slot is taken or waited for, so the shadow job is skipped, and the
    // live requests are still answered.
    let held = state.occupy_scoring_slot().await;
    let other = state.occupy_scoring_slot().await;
    let first = tokio::spawn({
        let (client, url, request) = (client.clone(), server.url.clone(), request.clone());
        async move { post(&client, &url, &request).await }
    });
    while state.waiting_for_slot() == 0 {
        tokio::task::yield_now().await;
    }
    let slow = tokio::spawn({
        let (client, url) = (client.clone(), server.url.clone());
        let mut big = common::repeated_request(10_000);
        big["k"] = json!(10);
        async move { post(&client, &url, &big).await }
    });
    while state.waiting_for_slot() < 2 {
        tokio::task::yield_now().await;
    }
    drop(other);
    assert_eq!(first.await.expect("joined").0, 200);
    assert_eq!(slow.await.expect("joined").0, 200);
    until_shadowed(&state, 8).await;
    assert!(shadow_count(&state, "skipped") >= 1);
    drop(held);
    server.shutdown().await;
}

#[tokio::test]
async fn an_invalid_policy_keeps_the_previous_one() {
    let repo = repo_with(&[("1", "1"), ("2", "2")]);
    write_policy(repo.path(), "[canary]\nversion = \"1\"\npercent = 100\n");
    let server = common::start(common::test_config(repo.path())).await;
    let client = reqwest::Client::new();
    assert_eq!(version_for(&client, &server.url, "k").await, "1");

    write_policy(repo.path(), "[canary]\nversion = \"1\"\npercent = 200\n");
    reload(&server.state).await;
    assert_eq!(version_for(&client, &server.url, "k").await, "1");
    let policy = &models(&client, &server.url).await["policy"];
    let error = policy["file_error"].as_str().expect("error shown");
    assert!(error.contains("canary.percent = 200"), "{error}");
    assert_eq!(policy["canary"]["percent"], 100.0);
    let rejected = |s: &Ranker| {
        s.metrics
            .policy_reloads
            .with_label_values(&["rejected"])
            .get()
    };
    assert_eq!(rejected(&server.state), 1);
    // The same bad file again is not a new error.
    reload(&server.state).await;
    assert_eq!(rejected(&server.state), 1);

    // Fixed, it is in force again; removed, the default policy is.
    write_policy(repo.path(), "[canary]\nversion = \"1\"\npercent = 0\n");
    reload(&server.state).await;
    assert_eq!(version_for(&client, &server.url, "k").await, "2");
    std::fs::remove_file(repo.path().join("serving.toml")).expect("remove");
    reload(&server.state).await;
    let policy = &models(&client, &server.url).await["policy"];
    assert_eq!(policy["source"], "none");
    assert_eq!(policy["canary"], Value::Null);
    server.shutdown().await;
}

#[tokio::test]
async fn a_pin_from_the_file_holds_across_new_versions_and_restarts() {
    let repo = repo_with(&[("1", "1"), ("2", "2")]);
    write_policy(
        repo.path(),
        "pin = \"1\"\n[canary]\nversion = \"2\"\npercent = 100\n",
    );
    let server = common::start(common::test_config(repo.path())).await;
    let client = reqwest::Client::new();
    let serving = |s: &Ranker| s.models.serving_version();
    assert_eq!(serving(&server.state), Some(1));

    // A new version arrives: the pin holds.
    common::copy_dir(
        &common::repo_root().join("models/gift/1"),
        &repo.path().join("3"),
    );
    reload(&server.state).await;
    assert_eq!(serving(&server.state), Some(1));
    let view = models(&client, &server.url).await;
    assert_eq!(view["pinned"], "1");
    assert_eq!(view["policy"]["pin"]["source"], "serving.toml");

    // The admin's pin overrides the whole file on this replica, canary included.
    let admin = |path: &str| {
        let url = format!("{}/admin/{path}", server.admin_url);
        let client = client.clone();
        async move { client.post(url).send().await.expect("sent").status() }
    };
    assert!(admin("pin/3").await.is_success());
    assert_eq!(version_for(&client, &server.url, "k").await, "3");
    assert_eq!(
        models(&client, &server.url).await["policy"]["pin"]["source"],
        "admin"
    );
    assert!(admin("unpin").await.is_success());
    assert_eq!(serving(&server.state), Some(1));
    assert_eq!(version_for(&client, &server.url, "k").await, "2");
    server.shutdown().await;

    let server = common::start(common::test_config(repo.path())).await;
    assert_eq!(serving(&server.state), Some(1));

    // A pin naming a version that cannot serve is ignored until it can.
    write_policy(repo.path(), "pin = \"9\"\n");
    reload(&server.state).await;
    assert_eq!(serving(&server.state), Some(3));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_the_canary_under_traffic_fails_no_request() {
    let repo = repo_with(&[("1", "1"), ("2", "2")]);
    write_policy(repo.path(), "[canary]\nversion = \"1\"\npercent = 50\n");
    let server = common::start(common::test_config(repo.path())).await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (url, stop) = (server.url.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut answered = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("client-{c}-{i}");
                    let (status, _) =
                        post(&client, &url, &small_request(json!({"routing_key": key}))).await;
                    answered.push(status);
                    i += 1;
                }
                answered
            })
        })
        .collect();
    while server
        .state
        .metrics
        .canary_requests
        .with_label_values(&["1"])
        .get()
        < 20
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    std::fs::remove_dir_all(repo.path().join("1")).expect("remove the canary");
    reload(&server.state).await;
    let after = server.state.metrics.candidates.get_sample_count();
    while server.state.metrics.candidates.get_sample_count() < after + 40 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let answered = client.await.expect("joined");
        assert!(answered.iter().all(|&s| s == 200), "{answered:?}");
    }
    let client = reqwest::Client::new();
    for i in 0..20 {
        assert_eq!(
            version_for(&client, &server.url, &format!("after-{i}")).await,
            "2"
        );
    }
    let policy = &models(&client, &server.url).await["policy"];
    assert_eq!(policy["canary"]["in_force"], false);
    assert_eq!(policy["canary"]["disk"]["state"], "absent");
    server.shutdown().await;
}

#[tokio::test]
async fn a_version_the_policy_stops_naming_is_freed() {
    let repo = repo_with(&[("1", "1"), ("2", "2"), ("3", "1")]);
    write_policy(
        repo.path(),
        "[canary]\nversion = \"1\"\npercent = 10\n[shadow]\nversion = \"2\"\nsample = 0.5\n",
    );
    let server = common::start(common::test_config(repo.path())).await;
    let routing = server.state.models.routing().expect("serving");
    assert_eq!(routing.main.version, 3);
    let canary = Arc::downgrade(&routing.canary.as_ref().expect("canary").0);
    let shadow = Arc::downgrade(&routing.shadow.as_ref().expect("shadow").0);
    drop(routing);

    // Promoted: the file pins the canary's version; the shadow goes. The canary's copy is
    // reused as the main version, the shadow's and the old main's are freed.
    let main = Arc::downgrade(&server.state.models.serving().expect("serving"));
    write_policy(repo.path(), "pin = \"1\"\n");
    reload(&server.state).await;
    let routing = server.state.models.routing().expect("serving");
    assert!(Arc::ptr_eq(&routing.main, &canary.upgrade().expect("kept")));
    assert!(routing.canary.is_none() && routing.shadow.is_none());
    assert!(
        shadow.upgrade().is_none(),
        "the shadow version is still in memory"
    );
    assert!(
        main.upgrade().is_none(),
        "the old main version is still in memory"
    );
    server.shutdown().await;
}
