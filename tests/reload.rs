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
use giftrank::ranker::Ranker;
use giftrank::repository::VersionState;
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
async fn until(state: &Ranker, what: &str, done: impl Fn(&Ranker) -> bool) {
    let mut reloads = state.models.subscribe_reloads();
    let give_up = Instant::now() + Duration::from_secs(60);
    while !done(state) {
        let left = give_up.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, reloads.changed()).await {
            Ok(Ok(())) => {}
            _ => panic!(
                "gave up waiting for: {what}; versions: {:?}",
                state.models.view().versions
            ),
        }
    }
}

fn serving(state: &Ranker) -> Option<u64> {
    state.models.serving_version()
}

fn state_of(state: &Ranker, version: u64) -> Option<VersionState> {
    state
        .models
        .view()
        .versions
        .iter()
        .find(|v| v.version == version)
        .map(|v| v.state.clone())
}

/// The version number a version directory's name gives.
fn version_of(dir: &Path) -> String {
    dir.file_name()
        .and_then(|n| n.to_str())
        .expect("a version directory")
        .to_owned()
}

/// What every client checks each response against: the reference ranking per version.
type References = Arc<Mutex<BTreeMap<String, Vec<(String, f64, f64, Option<f64>)>>>>;

fn add_reference(references: &References, dir: &Path, request: &Value) {
    let bundle = Bundle::load(dir).expect("a valid version");
    let expected = common::reference_rank(&bundle, request);
    references
        .lock()
        .expect("lock")
        .insert(version_of(dir), expected);
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
    let mut reloads = state.models.subscribe_reloads();
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

/// A core on `repo` with no background reloader: each test reloads by hand.
fn core(repo: &Path) -> Arc<Ranker> {
    Ranker::start(common::test_config(repo))
}

/// Replaces a file's bytes with garbage of the same length and restores its modification
/// time, so the repository's fingerprint of the version does not change.
fn corrupt_in_place(file: &Path) {
    let modified = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .expect("mtime");
    let length = std::fs::metadata(file).expect("meta").len() as usize;
    std::fs::write(file, vec![b'#'; length]).expect("write");
    let handle = std::fs::File::options()
        .write(true)
        .open(file)
        .expect("open");
    handle.set_modified(modified).expect("set mtime");
}

#[test]
fn a_version_that_fails_while_loading_shows_rejected_not_ready() {
    let repo = common::temp_repo();
    publish(repo.path(), 2, same, same);
    let state = core(repo.path());
    assert_eq!(serving(&state), Some(2));
    state.pin(1).expect("pin 1");
    assert_eq!(serving(&state), Some(1));
    // Version 2 was valid when scanned; its files go bad without changing its fingerprint.
    corrupt_in_place(&repo.path().join("2/direct.txt"));
    state.unpin();
    assert_eq!(serving(&state), Some(1), "a broken version must not serve");
    assert!(
        matches!(state_of(&state, 2), Some(VersionState::Rejected(_))),
        "{:?}",
        state_of(&state, 2)
    );
    assert_eq!(state_of(&state, 1), Some(VersionState::Serving));
}

/// The state and warning `/v1/models` shows for `version`.
fn listed(state: &Ranker, version: u64) -> (VersionState, String) {
    let view = state.models.view();
    let status = view
        .versions
        .iter()
        .find(|v| v.version == version)
        .expect("listed");
    (
        status.state.clone(),
        status.warning.clone().unwrap_or_default(),
    )
}

#[test]
fn a_serving_version_whose_files_go_bad_shows_serving_with_a_warning() {
    let repo = common::temp_repo();
    let state = core(repo.path());
    assert_eq!(serving(&state), Some(1));
    std::fs::write(repo.path().join("1/direct.txt"), "tree\nnot a model\n").expect("write");
    state.reload();
    assert_eq!(serving(&state), Some(1));
    let (state_1, warning) = listed(&state, 1);
    assert_eq!(state_1, VersionState::Serving);
    assert!(warning.contains("no longer validate"), "{warning}");

    // Its directory disappears altogether: still serving, still listed, and said so.
    std::fs::remove_dir_all(repo.path().join("1")).expect("remove");
    state.reload();
    let (state_1, warning) = listed(&state, 1);
    assert_eq!(state_1, VersionState::Serving);
    assert!(warning.contains("gone"), "{warning}");
}

#[test]
fn only_canonical_decimal_names_are_versions() {
    let repo = common::temp_repo();
    for alias in ["01", "+1", "staging"] {
        common::copy_dir(&repo.path().join("1"), &repo.path().join(alias));
    }
    publish(repo.path(), 2, same, same);
    let state = core(repo.path());
    let view = state.models.view();
    let versions: Vec<u64> = view.versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, vec![1, 2]);
    let ignored: Vec<&str> = view.ignored.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(ignored, vec!["+1", "01", "staging"]);
    assert!(
        view.ignored[0].reason.contains("canonical"),
        "{:?}",
        view.ignored
    );
    // `01` would have aliased version 1: pinning "version 1" must mean `1/` only.
    std::fs::write(repo.path().join("01/direct.txt"), "garbage").expect("write");
    state.pin(1).expect("pin 1");
    assert_eq!(serving(&state), Some(1));
}

#[test]
fn an_unreadable_version_is_listed_with_the_reason_and_a_fifo_cannot_stall_a_reload() {
    let repo = common::temp_repo();
    publish(repo.path(), 2, same, same);
    // Version 2 holds a dangling link: its fingerprint cannot be read.
    std::os::unix::fs::symlink("/nonexistent-target", repo.path().join("2/notes.txt"))
        .expect("symlink");
    // Version 3's bundle.toml is a FIFO: reading it would block the reload forever.
    let dir3 = repo.path().join("3");
    std::fs::create_dir_all(&dir3).expect("dir");
    let status = std::process::Command::new("mkfifo")
        .arg(dir3.join("bundle.toml"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let state = core(repo.path());
    assert_eq!(serving(&state), Some(1));
    match state_of(&state, 2) {
        Some(VersionState::Rejected(reason)) => assert!(reason.contains("cannot read"), "{reason}"),
        other => panic!("version 2: {other:?}"),
    }
    match state_of(&state, 3) {
        Some(VersionState::Rejected(reason)) => {
            assert!(reason.contains("not a regular file"), "{reason}")
        }
        other => panic!("version 3: {other:?}"),
    }
}

#[test]
fn the_models_route_answers_while_a_reload_is_validating() {
    // A canary of ~400,000 rows makes validating version 2 take a while.
    let repo = common::temp_repo();
    let dir2 = write_without_bundle(repo.path(), 2, |text| {
        let mut lines = text.lines();
        let header = lines.next().expect("header").to_owned();
        let rows: Vec<&str> = lines.collect();
        let mut big = header;
        for _ in 0..(400_000 / rows.len().max(1)) {
            for row in &rows {
                big.push('\n');
                big.push_str(row);
            }
        }
        big.push('\n');
        big
    });
    let state = core(repo.path());
    write_bundle(&dir2, same);
    let reloading = {
        let state = state.clone();
        std::thread::spawn(move || state.reload())
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let router = giftrank::http::router(state.clone());
    let mut answered_during = 0;
    while !reloading.is_finished() {
        let request = axum::http::Request::get("/v1/models")
            .body(axum::body::Body::empty())
            .expect("request");
        let response = runtime
            .block_on(tower::ServiceExt::oneshot(router.clone(), request))
            .expect("response");
        assert_eq!(response.status(), 200);
        if !reloading.is_finished() {
            answered_during += 1;
        }
    }
    reloading.join().expect("reload");
    assert_eq!(serving(&state), Some(2));
    // Behind a lock held by the reload, at most the one that came first would answer.
    assert!(answered_during >= 3, "{answered_during}");
}

/// Copies a shipped version into `repo` as ops publish it: the models and canary first,
/// `bundle.toml` last, by rename.
fn publish_shipped(repo: &Path, version: &str) {
    let source = common::repo_root().join("models/gift").join(version);
    let dir = repo.join(version);
    std::fs::create_dir_all(&dir).expect("dir");
    for entry in std::fs::read_dir(&source).expect("read dir") {
        let name = entry.expect("entry").file_name();
        if name != "bundle.toml" {
            std::fs::copy(source.join(&name), dir.join(&name)).expect("copy");
        }
    }
    std::fs::copy(source.join("bundle.toml"), dir.join("bundle.toml.tmp")).expect("copy");
    std::fs::rename(dir.join("bundle.toml.tmp"), dir.join("bundle.toml")).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_format_1_version_gives_way_to_a_format_2_version_and_back_under_load() {
    let repo = tempfile::tempdir().expect("temp");
    publish_shipped(repo.path(), "1");
    let mut config = common::test_config(repo.path());
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
    add_reference(&references, &repo.path().join("1"), &request);
    add_reference(
        &references,
        &common::repo_root().join("models/gift/2"),
        &request,
    );

    // Clients rank with the default profile (the only one both formats have) and check
    // every response against its version's reference; each response is announced.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let answered = Arc::new(tokio::sync::Notify::new());
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (url, request, references, stop, seen, answered) = (
            server.url.clone(),
            request.clone(),
            references.clone(),
            stop.clone(),
            seen.clone(),
            answered.clone(),
        );
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
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
                assert_eq!(body["profile"], "default");
                let expected = references.lock().expect("lock")[&version].clone();
                assert_eq!(common::response_items(&body), expected, "version {version}");
                seen.lock().expect("lock").push(version);
                answered.notify_waiters();
            }
        }));
    }
    // Waits (on answers, not on a clock) until clients have been answered by `version`
    // `times` times since the call.
    let answered_by = |version: &'static str, times: usize| {
        let (seen, answered) = (seen.clone(), answered.clone());
        async move {
            let start = seen.lock().expect("lock").len();
            let count = || {
                let seen = seen.lock().expect("lock");
                seen[start..].iter().filter(|v| *v == version).count()
            };
            tokio::time::timeout(Duration::from_secs(60), async {
                while count() < times {
                    answered.notified().await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no {times} answers from version {version}"));
        }
    };
    answered_by("1", 8).await;

    publish_shipped(repo.path(), "2");
    until(&state, "version 2 (format 2) serves", |s| {
        serving(s) == Some(2)
    })
    .await;
    answered_by("2", 8).await;

    // Rollback: pin the format 1 version over the admin API.
    let response = reqwest::Client::new()
        .post(format!("{}/admin/pin/1", server.admin_url))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    answered_by("1", 8).await;

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("a client failed");
    }
    let seen = seen.lock().expect("lock").clone();
    let switches = seen.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches >= 2, "{seen:?}");
    server.shutdown().await;
}
