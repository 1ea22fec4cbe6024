//! Real-server tests on `127.0.0.1:0`: rankings equal a reference computed straight from
//! the engine, both request forms agree, and shutdown lets in-flight requests finish —
//! in-process and through SIGTERM to the real binary.

mod common;

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{json, Value};

async fn rank(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let response = client
        .post(format!("{url}/rank"))
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// Random requests: subsets of the example's candidates with random m and k, some
/// features knocked out (missing) and some moved into the context.
fn random_requests(count: usize) -> Vec<Value> {
    let example = common::example("rank_request.json");
    let pool = example["candidates"]
        .as_array()
        .expect("candidates")
        .clone();
    let strategy = (
        proptest::collection::vec(0..pool.len(), 1..300),
        1u64..400,
        1u64..400,
        proptest::collection::vec(any::<bool>(), 32),
    );
    let mut runner = TestRunner::new(ProptestConfig::default());
    (0..count)
        .map(|r| {
            let (picks, m, k, knockouts) = strategy.new_tree(&mut runner).expect("value").current();
            let candidates: Vec<Value> = picks
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let mut c = pool[p].clone();
                    c["id"] = json!(format!("r{r}-c{i}"));
                    if let Some(features) = c["features"].as_object_mut() {
                        let keys: Vec<String> = features.keys().cloned().collect();
                        for (j, key) in keys.iter().enumerate() {
                            if knockouts[(i + j) % knockouts.len()] && (i + j) % 3 == 0 {
                                features.insert(key.clone(), Value::Null);
                            }
                        }
                    }
                    c
                })
                .collect();
            json!({
                "request_id": format!("random-{r}"),
                "context": example["context"],
                "candidates": candidates,
                "m": m,
                "k": k,
            })
        })
        .collect()
}

#[tokio::test]
async fn random_requests_rank_as_the_engine_reference() {
    let repo = common::temp_repo();
    let server = common::start(common::test_config(repo.path())).await;
    let client = reqwest::Client::new();
    let serving = server.state.models.serving().expect("serving");
    for request in random_requests(40) {
        let (status, body) = rank(&client, &server.url, &request).await;
        assert_eq!(status, 200, "{body}");
        let expected = common::reference_rank(&serving.bundle, &request);
        assert_eq!(
            common::response_items(&body),
            expected,
            "request {}",
            request["request_id"]
        );
        let m = request["m"]
            .as_u64()
            .expect("m")
            .min(request["candidates"].as_array().expect("c").len() as u64);
        assert_eq!(body["m"], m);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_large_request_ranked_alone_is_scored_on_two_threads_exactly() {
    // 4,099 candidates (past the two-thread threshold of 512, an odd count), with
    // different features missing in each repetition of the example's candidates, so
    // that every row of either half is told apart.
    let mut request = common::repeated_request(4099);
    for (i, candidate) in request["candidates"]
        .as_array_mut()
        .expect("candidates")
        .iter_mut()
        .enumerate()
    {
        let features = candidate["features"].as_object_mut().expect("features");
        let keys: Vec<String> = features.keys().cloned().collect();
        for (j, key) in keys.iter().enumerate() {
            if (i / 1000 + j) % 3 == 0 {
                features.insert(key.clone(), Value::Null);
            }
        }
    }
    request["k"] = json!(4099);
    let repo = common::temp_repo();
    let server = common::start(common::test_config(repo.path())).await;
    let serving = server.state.models.serving().expect("serving");
    let (status, body) = rank(&reqwest::Client::new(), &server.url, &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        common::response_items(&body),
        common::reference_rank(&serving.bundle, &request)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn sparse_and_dense_forms_rank_the_same() {
    let repo = common::temp_repo();
    let server = common::start(common::test_config(repo.path())).await;
    let client = reqwest::Client::new();
    let (s1, sparse) = rank(&client, &server.url, &common::example("rank_request.json")).await;
    let (s2, dense) = rank(
        &client,
        &server.url,
        &common::example("rank_request_dense.json"),
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(sparse["items"].as_array().map(Vec::len), Some(50));
    assert_eq!(sparse["items"], dense["items"]);
    assert_eq!(sparse["m"], dense["m"]);
    server.shutdown().await;
}

#[tokio::test]
async fn the_response_echoes_or_makes_a_request_id() {
    let repo = common::temp_repo();
    let server = common::start(common::test_config(repo.path())).await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}/healthz", server.url))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("sent");
    assert!(response
        .headers()
        .get("x-request-id")
        .is_some_and(|v| !v.is_empty()));
    server.shutdown().await;
}

/// A request large enough to still be in flight when shutdown begins.
fn big_request() -> Value {
    let mut request = common::repeated_request(10_000);
    request["k"] = json!(10);
    request
}

#[tokio::test]
async fn an_in_flight_request_completes_across_shutdown() {
    let repo = common::temp_repo();
    let mut config = common::test_config(repo.path());
    config.request_timeout_ms = 60_000;
    let server = common::start(config).await;
    let client = reqwest::Client::new();
    let url = server.url.clone();
    let state = server.state.clone();
    let in_flight = tokio::spawn(async move { rank(&client, &url, &big_request()).await });
    // Wait until the server has admitted the request (the gauge counts it), then shut down.
    while state.metrics.inflight.get() == 0 {
        tokio::task::yield_now().await;
        if in_flight.is_finished() {
            break;
        }
    }
    let url = server.url.clone();
    server.shutdown().await;
    let (status, body) = in_flight.await.expect("join");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(10));
    // The listener is closed after the drain.
    assert!(reqwest::get(format!("{url}/healthz")).await.is_err());
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let repo = common::temp_repo();
    let mut server = common::spawn_serve(
        repo.path(),
        &[
            ("GIFTRANK_WATCH_EVENTS", "false"),
            ("GIFTRANK_REQUEST_TIMEOUT_MS", "60000"),
        ],
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::new();
    let in_flight = runtime.spawn({
        let (client, url) = (client.clone(), server.url.clone());
        async move { rank(&client, &url, &big_request()).await }
    });
    // Wait until the service counts the request in flight, then send SIGTERM.
    runtime.block_on(async {
        loop {
            let metrics = client
                .get(format!("{}/metrics", server.url))
                .send()
                .await
                .expect("metrics");
            let text = metrics.text().await.expect("text");
            if text.contains("giftrank_inflight_requests 1") || in_flight.is_finished() {
                break;
            }
        }
    });
    server.signal("TERM");
    let (code, body) = runtime.block_on(in_flight).expect("join");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(10));
    assert_eq!(server.child.wait().expect("exit").code(), Some(0));
    server.wait_for_log(|log| log["fields"]["message"] == "drained; exiting");
}

// --- Deadlines: degrade before failing (DESIGN.md §10) ---------------------------------

/// A server whose planner believes every model costs 10 ms per candidate, so that what a
/// deadline holds is known: 10 candidates cost 100 ms to score and 100 ms to rerank.
async fn planned_server(slots: usize) -> (tempfile::TempDir, common::Running) {
    let repo = common::temp_repo();
    let mut config = common::test_config(repo.path());
    config.fixed_cost_ns_per_row = 10_000_000;
    config.scoring_slots = slots;
    let server = common::start(config).await;
    (repo, server)
}

fn ten_candidates(extra: Value) -> Value {
    let mut request = common::example("rank_request.json");
    let candidates = request["candidates"].as_array().expect("candidates")[..10].to_vec();
    request["candidates"] = json!(candidates);
    for key in ["m", "k"] {
        request.as_object_mut().expect("object").remove(key);
    }
    for (key, value) in extra.as_object().expect("object") {
        request[key] = value.clone();
    }
    request
}

/// Sends ten candidates with `extra` and requires a `503` with `Retry-After`.
async fn assert_shed(client: &reqwest::Client, url: &str, extra: Value) {
    let response = client
        .post(format!("{url}/rank"))
        .json(&ten_candidates(extra))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
}

fn ranked(metrics: &giftrank::metrics::Metrics, outcome: &str) -> u64 {
    metrics
        .rank_requests
        .with_label_values(&["default", outcome])
        .get()
}

#[tokio::test]
async fn a_tight_deadline_degrades_in_order_and_says_so() {
    let (_repo, server) = planned_server(2).await;
    let client = reqwest::Client::new();
    let metrics = &server.state.metrics;

    // The default deadline (1 s) holds 100 + 100 ms: the whole profile.
    let (status, full) = rank(&client, &server.url, &ten_candidates(json!({}))).await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["degraded"], Value::Null);
    assert_eq!(full["m"], 10);

    // 200 ms: (200 - 0.5) / 1.25 = 159.6 ms of budget, 100 to score: about 5 reranked.
    let (status, reduced) = rank(
        &client,
        &server.url,
        &ten_candidates(json!({"timeout_ms": 200})),
    )
    .await;
    assert_eq!(status, 200, "{reduced}");
    assert_eq!(reduced["degraded"], "reduced_m");
    let m = reduced["m"].as_u64().expect("m");
    assert!((1..10).contains(&m), "{reduced}");
    let reranked = reduced["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["reranked"] == true)
        .count();
    assert_eq!(reranked as u64, m);

    // 135 ms: 107.6 ms of budget holds the scoring but not one rerank: the score order.
    let (status, recall_only) = rank(
        &client,
        &server.url,
        &ten_candidates(json!({"timeout_ms": 135})),
    )
    .await;
    assert_eq!(status, 200, "{recall_only}");
    assert_eq!(recall_only["degraded"], "recall_only");
    assert_eq!(recall_only["m"], 0);
    let items = recall_only["items"].as_array().expect("items");
    assert!(items
        .iter()
        .all(|i| i["reranked"] == false && i["stage2_score"].is_null()));
    // Exactly the Direct order of the full answer's scores (ties: input order).
    let request = ten_candidates(json!({}));
    let mut by_direct: Vec<(f64, usize, String)> = full["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            let id = i["id"].as_str().expect("id").to_owned();
            let index = (0..10)
                .find(|&c| request["candidates"][c]["id"] == i["id"])
                .expect("index");
            (i["direct_score"].as_f64().expect("d"), index, id)
        })
        .collect();
    by_direct.sort_by(|a, b| b.0.partial_cmp(&a.0).expect("finite").then(a.1.cmp(&b.1)));
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    let expected: Vec<&str> = by_direct.iter().map(|t| t.2.as_str()).collect();
    assert_eq!(ids, expected);

    // allow_degraded: false turns the same deadline into a 504.
    let (status, error) = rank(
        &client,
        &server.url,
        &ten_candidates(json!({"timeout_ms": 135, "allow_degraded": false})),
    )
    .await;
    assert_eq!(status, 504, "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .expect("message")
        .contains("allow_degraded is false"));

    // 100 ms cannot even hold the scoring: 503 with Retry-After, at once.
    assert_shed(&client, &server.url, json!({"timeout_ms": 100})).await;

    assert_eq!(ranked(metrics, "full"), 1);
    assert_eq!(ranked(metrics, "degraded"), 2);
    assert_eq!(metrics.degraded.with_label_values(&["reduced_m"]).get(), 1);
    assert_eq!(
        metrics.degraded.with_label_values(&["recall_only"]).get(),
        1
    );
    let (status, error) = rank(
        &client,
        &server.url,
        &ten_candidates(json!({"timeout_ms": 0})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error["error"]["message"]
        .as_str()
        .expect("message")
        .starts_with("timeout_ms: "));
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_that_waited_past_its_room_is_not_scored() {
    let (_repo, server) = planned_server(1).await;
    let client = reqwest::Client::new();
    let slot = server.state.occupy_scoring_slot().await;
    let scored_before = server.state.metrics.candidates.get_sample_count();
    let response = client
        .post(format!("{}/rank", server.url))
        .json(&ten_candidates(json!({"timeout_ms": 300})))
        .send()
        .await
        .expect("sent");
    // Its room ran out in the queue: refused late, so 504, never a late 503.
    assert_eq!(response.status(), 504);
    assert_eq!(
        server.state.metrics.candidates.get_sample_count(),
        scored_before
    );
    drop(slot);
    let (status, body) = rank(&client, &server.url, &ten_candidates(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_whose_predicted_wait_leaves_no_room_gets_503_at_once() {
    let (_repo, server) = planned_server(1).await;
    let client = reqwest::Client::new();
    server.state.assume_slot_time(Duration::from_millis(400));
    let slot = server.state.occupy_scoring_slot().await;
    // Its turn in 400 ms: the JSON body's own 300 ms, read before the body is decoded,
    // leaves no room. Had it queued, the held slot would have made it a 504 after 300 ms.
    assert_shed(&client, &server.url, json!({"timeout_ms": 300})).await;
    assert_eq!(server.state.waiting_for_slot(), 0);

    // The server's deadline (1 s) leaves room: it waits, and is ranked once the slot frees.
    let waiting = tokio::spawn({
        let url = format!("{}/rank", server.url);
        let client = client.clone();
        async move {
            client
                .post(url)
                .json(&ten_candidates(json!({})))
                .send()
                .await
        }
    });
    while server.state.waiting_for_slot() == 0 {
        tokio::task::yield_now().await;
    }
    drop(slot);
    let response = waiting.await.expect("joined").expect("sent");
    assert_eq!(response.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_that_waited_and_then_cannot_fit_gets_504_not_a_late_503() {
    // 10 candidates at 10 ms each cannot fit 110 ms: alone, that is a 503 at once.
    let (_repo, server) = planned_server(1).await;
    let client = reqwest::Client::new();
    let request = ten_candidates(json!({"timeout_ms": 110}));
    let (status, _) = rank(&client, &server.url, &request).await;
    assert_eq!(status, 503);

    // The same request after a wait for its scoring slot: a 504.
    let slot = server.state.occupy_scoring_slot().await;
    let sent = tokio::spawn({
        let url = format!("{}/rank", server.url);
        async move { client.post(url).json(&request).send().await }
    });
    while server.state.waiting_for_slot() == 0 {
        tokio::task::yield_now().await;
    }
    drop(slot);
    let response = sent.await.expect("joined").expect("sent");
    assert_eq!(response.status(), 504);
    assert!(!response.headers().contains_key("retry-after"));
    server.shutdown().await;
}
