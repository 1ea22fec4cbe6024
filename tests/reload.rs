//! Hot reload against a real server and real files, under concurrent clients: new
//! versions, half-written, truncated and canary-failing versions, a symlink switch, pins.
//! No response may fail or mix versions; bad versions never serve; pins hold.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use giftrank::bundle::Bundle;
use giftrank::repository::VersionState;
use giftrank::service::AppState;
use serde_json::Value;

/// Writes version `version` into `repo`: v1's files, with `edit` applied to the bundle text
/// (and `canary` to the canary text), `bundle.toml` written last.
fn publish(
    repo: &Path,
    version: u64,
    edit: impl Fn(&str) -> String,
    canary: impl Fn(&str) -> String,
) -> PathBuf {
    let dir = write_without_bundle(repo, version, canary);
    write_bundle(&dir, edit);
    dir
}

fn write_without_bundle(repo: &Path, version: u64, canary: impl Fn(&str) -> String) -> PathBuf {
    let source = common::repo_root().join("models/gift/1");
    let dir = repo.join(version.to_string());
    std::fs::create_dir_all(&dir).expect("dir");
    for file in ["direct.txt", "stage2.txt"] {
        std::fs::copy(source.join(file), dir.join(file)).expect("copy");
    }
    let text = std::fs::read_to_string(source.join("canary.csv")).expect("canary");
    std::fs::write(dir.join("canary.csv"), canary(&text)).expect("write");
    dir
}

fn write_bundle(dir: &Path, edit: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(common::repo_root().join("models/gift/1/bundle.toml"))
        .expect("bundle");
    // Write then rename, so the service never reads a half-written bundle.toml.
    std::fs::write(dir.join("bundle.toml.tmp"), edit(&text)).expect("write");
    std::fs::rename(dir.join("bundle.toml.tmp"), dir.join("bundle.toml")).expect("rename");
}

fn same(text: &str) -> String {
    text.to_owned()
}

/// Recall and rerank models swapped (the canary columns too): different scores everywhere.
fn swapped_models(text: &str) -> String {
    text.replace("direct.txt", "TMP")
        .replace("stage2.txt", "direct.txt")
        .replace("TMP", "stage2.txt")
}

fn swapped_canary(text: &str) -> String {
    text.replace("expected_direct", "TMP")
        .replace("expected_stage2", "expected_direct")
        .replace("TMP", "expected_stage2")
}

fn smaller_m(text: &str) -> String {
    text.replace("default_m = 200", "default_m = 50")
}

/// Waits (on reload notifications, not on a clock) until `done` holds, or fails after a minute.
async fn until(state: &AppState, what: &str, done: impl Fn(&AppState) -> bool) {
    let mut reloads = state.subscribe_reloads();
    let give_up = Instant::now() + Duration::from_secs(60);
    while !done(state) {
        let left = give_up.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, reloads.changed()).await {
            Ok(Ok(())) => {}
            _ => panic!(
                "gave up waiting for: {what}; versions: {:?}",
                state.versions()
            ),
        }
    }
}

fn serving(state: &AppState) -> Option<u64> {
    state.serving_now().map(|s| s.bundle.version)
}

fn state_of(state: &AppState, version: u64) -> Option<VersionState> {
    state
        .versions()
        .into_iter()
        .find(|v| v.version == version)
        .map(|v| v.state)
}

/// What every client checks each response against: the reference ranking per version.
type References = Arc<Mutex<BTreeMap<String, Vec<(String, f64, f64, Option<f64>)>>>>;

fn add_reference(references: &References, dir: &Path, request: &Value) {
    let bundle = Bundle::load(dir).expect("a valid version");
    let expected = common::reference_rank(&bundle, request);
    references
        .lock()
        .expect("lock")
        .insert(bundle.version.to_string(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_swap_under_load_without_a_failed_or_mixed_response() {
    let store = tempfile::tempdir().expect("temp");
    let side_a = store.path().join("a");
    common::copy_dir(
        &common::repo_root().join("models/gift/1"),
        &side_a.join("1"),
    );
    let repo = store.path().join("repo");
    std::os::unix::fs::symlink(&side_a, &repo).expect("symlink");

    let mut config = common::test_config(&repo);
    config.watch_events = true;
    config.rescan_interval_secs = 1;
    let server = common::start(config).await;
    let state = server.state.clone();

    let mut request = common::example("rank_request.json");
    request["candidates"]
        .as_array_mut()
        .expect("candidates")
        .truncate(300);
    request.as_object_mut().expect("object").remove("m");
    let references: References = Arc::default();
    add_reference(&references, &side_a.join("1"), &request);

    // Four clients rank the same request for the whole test, checking every response.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (url, request, references, stop, seen) = (
            server.url.clone(),
            request.clone(),
            references.clone(),
            stop.clone(),
            seen.clone(),
        );
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut count = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let response = client
                    .post(format!("{url}/rank"))
                    .json(&request)
                    .send()
                    .await
                    .expect("sent");
                assert_eq!(response.status(), 200);
                let body: Value = response.json().await.expect("JSON");
                let version = body["model_version"].as_str().expect("version").to_owned();
                let expected = references.lock().expect("lock").get(&version).cloned();
                let expected = expected
                    .unwrap_or_else(|| panic!("version {version} served before it was published"));
                assert_eq!(
                    common::response_items(&body),
                    expected,
                    "a response of version {version} with other scores"
                );
                seen.lock().expect("lock").insert(version);
                count += 1;
            }
            count
        }));
    }

    // 2: the models swapped — different scores.
    add_reference(
        &references,
        &publish(&side_a, 2, swapped_models, swapped_canary),
        &request,
    );
    until(&state, "version 2 serves", |s| serving(s) == Some(2)).await;

    // 3: half-written: models and canary present, no bundle.toml — ignored until completed.
    let dir3 = write_without_bundle(&side_a, 3, same);
    until(&state, "version 3 seen as incomplete", |s| {
        state_of(s, 3) == Some(VersionState::Incomplete)
    })
    .await;
    assert_eq!(serving(&state), Some(2));
    write_bundle(&dir3, smaller_m);
    add_reference(&references, &dir3, &request);
    until(&state, "version 3 serves", |s| serving(s) == Some(3)).await;

    // 4: a truncated model — rejected, never served.
    let dir4 = write_without_bundle(&side_a, 4, same);
    let direct = std::fs::read_to_string(dir4.join("direct.txt")).expect("read");
    std::fs::write(dir4.join("direct.txt"), &direct[..direct.len() / 2]).expect("truncate");
    write_bundle(&dir4, same);
    until(&state, "version 4 rejected", |s| {
        matches!(state_of(s, 4), Some(VersionState::Rejected(_)))
    })
    .await;

    // 5: a canary that disagrees with the models — rejected, never served.
    publish(&side_a, 5, same, |text| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        let column = header
            .iter()
            .position(|h| *h == "expected_direct")
            .expect("column");
        let mut cells: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
        cells[column] = format!("{}", cells[column].parse::<f64>().expect("number") + 0.5);
        lines[1] = cells.join(",");
        lines.join("\n") + "\n"
    });
    until(&state, "version 5 rejected", |s| matches!(state_of(s, 5), Some(VersionState::Rejected(reason)) if reason.contains("canary"))).await;
    assert_eq!(serving(&state), Some(3));

    // Pin 2 over the admin API: it serves, and survives rescans and a new version.
    let admin = reqwest::Client::new();
    let response = admin
        .post(format!("{}/admin/pin/2", server.admin_url))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(serving(&state), Some(2));
    add_reference(&references, &publish(&side_a, 6, same, same), &request);
    until(&state, "version 6 ready while pinned", |s| {
        state_of(s, 6) == Some(VersionState::Ready)
    })
    .await;
    assert_eq!(serving(&state), Some(2), "the pin must hold");
    for bad in ["4", "5", "99", "x"] {
        let response = admin
            .post(format!("{}/admin/pin/{bad}", server.admin_url))
            .send()
            .await
            .expect("sent");
        assert!(
            response.status().is_client_error(),
            "pin {bad}: {}",
            response.status()
        );
    }
    let response = admin
        .post(format!("{}/admin/unpin", server.admin_url))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(serving(&state), Some(6));

    // Symlink switch: the repository now points at a copy holding a new version 7.
    let side_b = store.path().join("b");
    for v in [1u64, 2, 3, 6] {
        common::copy_dir(&side_a.join(v.to_string()), &side_b.join(v.to_string()));
    }
    let dir7 = write_without_bundle(&side_b, 7, swapped_canary);
    write_bundle(&dir7, swapped_models);
    add_reference(&references, &dir7, &request);
    let next = store.path().join("repo.next");
    std::os::unix::fs::symlink(&side_b, &next).expect("symlink");
    std::fs::rename(&next, &repo).expect("atomic switch");
    until(&state, "version 7 serves after the symlink switch", |s| {
        serving(s) == Some(7)
    })
    .await;

    // Let the clients run on the final version for a moment, then stop them.
    let mut reloads = state.subscribe_reloads();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        for _ in 0..2 {
            let _ = reloads.changed().await;
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for client in clients {
        total += client.await.expect("a client failed");
    }
    let seen = seen.lock().expect("lock").clone();
    assert!(total > 20, "only {total} requests");
    assert!(
        !seen.contains("4") && !seen.contains("5"),
        "a bad version served: {seen:?}"
    );
    assert!(seen.contains("7"), "{seen:?}");
    server.shutdown().await;
}

#[test]
fn sighup_makes_the_real_binary_rescan() {
    let repo = common::temp_repo();
    let mut server = common::spawn_serve(
        repo.path(),
        &[
            ("GIFTRANK_WATCH_EVENTS", "false"),
            ("GIFTRANK_RESCAN_INTERVAL_SECS", "0"),
        ],
    );
    publish(repo.path(), 2, same, same);
    server.signal("HUP");
    // The reloader logs the swap it made on SIGHUP.
    server.wait_for_log(|log| log["fields"]["trigger"] == "SIGHUP" && log["fields"]["to"] == 2);
    let models: Value = reqwest::blocking::get(format!("{}/v1/models", server.url))
        .expect("models")
        .json()
        .expect("json");
    assert_eq!(models["serving"]["version"], "2");
    server.signal("TERM");
    assert_eq!(server.child.wait().expect("exit").code(), Some(0));
}
