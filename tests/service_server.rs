//! Real-server tests on `127.0.0.1:0`: rankings equal a reference computed straight from
//! the engine, both request forms agree, and shutdown lets in-flight requests finish —
//! in-process and through SIGTERM to the real binary.

mod common;

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
    // 4,099 candidates (past the two-thread threshold of 2,048, an odd count), with
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
