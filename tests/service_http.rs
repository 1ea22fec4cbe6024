//! Handler tests through `router(state)` with `oneshot`: every status of DESIGN.md §2,
//! each error body naming the offending field.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use giftrank::config::Config;
use giftrank::http::router;
use giftrank::ranker::Ranker;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Fixture {
    _repo: tempfile::TempDir,
    state: Arc<Ranker>,
}

fn fixture(adjust: impl FnOnce(&mut Config)) -> Fixture {
    let repo = common::temp_repo();
    let mut config = common::test_config(repo.path());
    adjust(&mut config);
    let state = Ranker::start(config);
    Fixture { _repo: repo, state }
}

async fn post(
    state: &Arc<Ranker>,
    content_type: &str,
    body: impl Into<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let request = Request::post("/rank")
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .expect("request");
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

async fn post_json(state: &Arc<Ranker>, body: &Value) -> (StatusCode, Value) {
    let (status, _, body) = post(state, "application/json", body.to_string()).await;
    (status, body)
}

fn small_request() -> Value {
    let mut request = common::example("rank_request.json");
    let candidates = request["candidates"].as_array_mut().expect("candidates");
    candidates.truncate(20);
    request["m"] = json!(5);
    request["k"] = json!(10);
    request
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn ranks_a_sparse_request() {
    let f = fixture(|_| {});
    let request = small_request();
    let (status, body) = post_json(&f.state, &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["m"], 5);
    assert_eq!(body["model_version"], "1");
    assert_eq!(body["request_id"], request["request_id"]);
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 10);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["reranked"], i < 5);
        assert_eq!(item["stage2_score"].is_null(), i >= 5);
        let expected_score = if i < 5 {
            &item["stage2_score"]
        } else {
            &item["direct_score"]
        };
        assert_eq!(&item["score"], expected_score);
    }
    let serving = f.state.models.serving().expect("serving");
    let expected = common::reference_rank(&serving.bundle, &request);
    assert_eq!(common::response_items(&body), expected);
}

#[tokio::test]
async fn malformed_and_invalid_requests_are_400_naming_the_field() {
    let f = fixture(|_| {});
    let base = small_request();
    let first_feature = base["candidates"][1]["features"]
        .as_object()
        .and_then(|o| o.keys().next().cloned())
        .expect("a feature");

    let (status, _, body) = post(&f.state, "application/json", "{\"candidates\": [").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("EOF"), "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");

    let label_field = format!("candidates[1].features.{first_feature}");
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut r = base.clone();
                r["kk"] = json!(3);
                r
            },
            "kk",
        ),
        (
            {
                let mut r = base.clone();
                r["m"] = json!(0);
                r
            },
            "m:",
        ),
        (
            {
                let mut r = base.clone();
                r["m"] = json!(100_000);
                r
            },
            "m:",
        ),
        (
            {
                let mut r = base.clone();
                r["m"] = json!(-1);
                r
            },
            "m:",
        ),
        (
            {
                let mut r = base.clone();
                r["k"] = json!(0);
                r
            },
            "k:",
        ),
        (
            {
                let mut r = base.clone();
                r["candidates"][3]["id"] = r["candidates"][0]["id"].clone();
                r
            },
            "candidates[3].id",
        ),
        (
            {
                let mut r = base.clone();
                r["candidates"][1]["features"][&first_feature] = json!(true);
                r
            },
            "candidates[1].features",
        ),
        (
            {
                let mut r = base.clone();
                r["candidates"][1]["features"][&first_feature] = json!("red");
                r
            },
            &label_field,
        ),
        (
            {
                let mut r = base.clone();
                r["candidates"][2]["extra"] = json!(1);
                r
            },
            "candidates[2]",
        ),
        (
            {
                let mut r = base.clone();
                r["candidates"][2]["values"] = json!([1.0]);
                r
            },
            "candidates[2].values",
        ),
        (
            {
                let mut r = base.clone();
                r["context"] = json!({"hour": "late"});
                r
            },
            "context.hour",
        ),
        (
            {
                let mut r = base.clone();
                r.as_object_mut().expect("object").remove("candidates");
                r
            },
            "candidates",
        ),
    ];
    for (request, field) in cases {
        let (status, body) = post_json(&f.state, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert!(
            message(&body).contains(field),
            "expected `{field}` in {body}"
        );
    }

    // A non-finite number cannot be written in JSON; an overflowing one is refused.
    let text = base
        .to_string()
        .replacen("\"m\":5", "\"m\":5,\"context\":{\"hour\":1e999}", 1);
    let (status, _, body) = post(&f.state, "application/json", text).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Dense form: a values row of the wrong length.
    let mut dense = common::example("rank_request_dense.json");
    dense["candidates"]
        .as_array_mut()
        .expect("candidates")
        .truncate(5);
    dense["candidates"][4]["values"]
        .as_array_mut()
        .expect("values")
        .pop();
    let (status, body) = post_json(&f.state, &dense).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("candidates[4].values"), "{body}");
}

#[tokio::test]
async fn bodies_and_candidate_counts_over_the_limits_are_413() {
    let f = fixture(|c| {
        c.max_body_bytes = 4096;
        c.max_candidates = 10;
    });
    let (status, _, body) = post(&f.state, "application/json", vec![b' '; 5000]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(message(&body).contains("body"), "{body}");

    let mut request = small_request();
    for c in request["candidates"].as_array_mut().expect("candidates") {
        c["features"] = json!({});
    }
    let (status, body) = post_json(&f.state, &request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(message(&body).contains("candidates"), "{body}");
}

#[tokio::test]
async fn other_content_types_are_415() {
    let f = fixture(|_| {});
    let (status, _, body) = post(&f.state, "text/plain", small_request().to_string()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(message(&body).contains("Content-Type"), "{body}");
}

#[tokio::test]
async fn a_full_house_sheds_load_with_503_and_retry_after() {
    let f = fixture(|c| c.max_inflight_requests = 1);
    let held = f.state.admit().expect("the only place");
    let (status, headers, body) =
        post(&f.state, "application/json", small_request().to_string()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        headers
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().expect("ascii")),
        Some("1")
    );
    assert_eq!(body["error"]["code"], "overloaded");
    assert_eq!(headers[header::CONNECTION], "close");
    drop(held);
    let (status, _) = post_json(&f.state, &small_request()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_request_past_its_deadline_is_504() {
    let f = fixture(|c| c.request_timeout_ms = 1);
    // 10,000 candidates take far longer than 1 ms to decode and score.
    let request = common::repeated_request(10_000);
    let (status, body) = post_json(&f.state, &request).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["error"]["code"], "deadline_exceeded");
}

async fn get(state: &Arc<Ranker>, path: &str) -> (StatusCode, String) {
    let request = Request::get(path).body(Body::empty()).expect("request");
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("response");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn health_readiness_models_and_metrics() {
    let f = fixture(|_| {});
    assert_eq!(get(&f.state, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&f.state, "/readyz").await.0, StatusCode::OK);

    let (status, models) = get(&f.state, "/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    let models: Value = serde_json::from_str(&models).expect("json");
    assert_eq!(models["serving"]["version"], "1");
    assert_eq!(models["serving"]["default_m"], 200);
    assert_eq!(models["serving"]["max_m"], 1000);
    assert!(models["serving"]["recall"]["features"]
        .as_array()
        .is_some_and(|f| !f.is_empty()));
    assert!(models["serving"]["loaded_at"].as_str().is_some());
    assert_eq!(models["versions"][0]["state"], "serving");

    post_json(&f.state, &small_request()).await;
    let (status, metrics) = get(&f.state, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for name in [
        "giftrank_http_requests_total{route=\"/rank\",status=\"200\"} 1",
        "giftrank_request_duration_seconds_bucket{route=\"/rank\"",
        "giftrank_rank_stage_duration_seconds_count{profile=\"default\",stage=\"recall\"} 1",
        "giftrank_rank_stage_duration_seconds_count{profile=\"default\",stage=\"rerank\"} 1",
        "giftrank_rank_requests_total{outcome=\"full\",profile=\"default\"} 1",
        "giftrank_rank_requests_total{outcome=\"degraded\",profile=\"default\"} 0",
        "giftrank_rank_candidates_sum 20",
        "giftrank_rank_recall_size_sum 5",
        "giftrank_recall_size 200",
        "giftrank_model_info{version=\"1\"} 1",
        "giftrank_model_reloads_total{outcome=\"loaded\"} 1",
        "giftrank_inflight_requests 0",
    ] {
        assert!(metrics.contains(name), "missing `{name}` in\n{metrics}");
    }

    f.state.begin_shutdown();
    assert_eq!(
        get(&f.state, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn the_shipped_format_2_version_lists_its_profiles_and_counts_each() {
    let repo = tempfile::tempdir().expect("temp");
    common::copy_dir(
        &common::repo_root().join("models/gift/2"),
        &repo.path().join("2"),
    );
    let state = Ranker::start(common::test_config(repo.path()));
    let (status, models) = get(&state, "/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    let serving: Value = serde_json::from_str::<Value>(&models).expect("json")["serving"].clone();
    assert_eq!(serving["format_version"], 2);
    assert_eq!(serving["default_profile"], "default");
    let names: Vec<&str> = serving["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["direct", "stage2", "gift_prob"]);
    assert_eq!(serving["models"][2]["objective"], "binary");
    let profiles = serving["profiles"].as_array().expect("profiles");
    let by_name = |name: &str| profiles.iter().find(|p| p["name"] == name).expect(name);
    assert_eq!(
        by_name("default"),
        &json!({"name": "default", "score": "direct", "recall": [{"model": "direct", "m": 200}],
                "rerank": "stage2", "alpha": 1.0, "max_m": 1000})
    );
    assert_eq!(
        by_name("direct"),
        &json!({"name": "direct", "score": "direct", "recall": [], "rerank": null, "alpha": null, "max_m": null})
    );
    let hybrid = by_name("hybrid");
    assert_eq!(hybrid["recall"][1]["model"], "gift_prob");
    assert!(hybrid["alpha"].as_f64().is_some_and(|a| a < 1.0));
    assert_eq!(
        (serving["default_m"].clone(), serving["max_m"].clone()),
        (json!(200), json!(1000))
    );

    // Each profile answers under its name, and is counted under it.
    for profile in ["default", "direct", "fusion", "hybrid"] {
        let mut request = small_request();
        request["profile"] = json!(profile);
        request.as_object_mut().expect("object").remove("m");
        request.as_object_mut().expect("object").remove("k");
        let (status, body) = post_json(&state, &request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["profile"], profile);
        let reranked = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|i| i["reranked"] == true)
            .count();
        assert_eq!(reranked as u64, body["m"].as_u64().expect("m"), "{profile}");
        if profile == "direct" {
            assert_eq!(body["m"], 0);
        }
    }
    let (_, metrics) = get(&state, "/metrics").await;
    for profile in ["default", "direct", "fusion", "hybrid"] {
        let line =
            format!("giftrank_rank_requests_total{{outcome=\"full\",profile=\"{profile}\"}} 1");
        assert!(metrics.contains(&line), "missing `{line}` in\n{metrics}");
    }
    assert!(metrics.contains(
        "giftrank_rank_stage_duration_seconds_count{profile=\"direct\",stage=\"recall\"} 1"
    ));
    assert!(!metrics.contains("{profile=\"direct\",stage=\"rerank\"}"));
}

#[tokio::test]
async fn admin_routes_do_not_exist_on_the_public_listener() {
    let f = fixture(|_| {});
    for path in ["/admin/reload", "/admin/unpin", "/admin/pin/1"] {
        let request = Request::post(path).body(Body::empty()).expect("request");
        let response = router(f.state.clone())
            .oneshot(request)
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn with_no_valid_version_it_starts_live_but_not_ready() {
    let repo = tempfile::tempdir().expect("temp");
    std::fs::create_dir_all(repo.path().join("4")).expect("dir");
    std::fs::write(repo.path().join("4/bundle.toml"), "format_version = 1\n").expect("write");
    let state = Ranker::start(common::test_config(repo.path()));
    assert!(!state.is_ready());
    assert_eq!(get(&state, "/healthz").await.0, StatusCode::OK);
    assert_eq!(
        get(&state, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (status, body) = post_json(&state, &small_request()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "not_ready");
    let (_, models) = get(&state, "/v1/models").await;
    let models: Value = serde_json::from_str(&models).expect("JSON");
    assert_eq!(models["serving"], Value::Null);
    assert_eq!(models["versions"][0]["version"], 4);
    assert_eq!(models["versions"][0]["state"], "rejected");

    // A valid version appears: the next reload serves it, no restart.
    common::copy_dir(
        &common::repo_root().join("models/gift/1"),
        &repo.path().join("5"),
    );
    state.reload();
    assert!(state.is_ready());
    assert_eq!(state.models.serving_version(), Some(5));
    assert_eq!(post_json(&state, &small_request()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn duplicate_feature_names_are_400_naming_both_positions() {
    let f = fixture(|_| {});
    let dense = common::example("rank_request_dense.json");
    let names = dense["feature_names"].as_array().expect("names").clone();
    let width = names.len();
    let mut candidates = dense["candidates"].as_array().expect("candidates").clone();
    candidates.truncate(3);
    for c in &mut candidates {
        c["values"].as_array_mut().expect("values").push(json!(1.0));
    }
    // A known name twice (last-wins before), and an unknown one twice.
    for duplicate in [names[0].clone(), json!("not_a_model_feature")] {
        let mut request = dense.clone();
        let mut twice = names.clone();
        if duplicate == names[0] {
            twice.push(duplicate.clone());
        } else {
            twice[1] = duplicate.clone();
            twice.push(duplicate.clone());
        }
        request["feature_names"] = Value::Array(twice);
        request["candidates"] = Value::Array(candidates.clone());
        let (status, body) = post_json(&f.state, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let first = if duplicate == names[0] { 0 } else { 1 };
        let text = message(&body);
        assert!(
            text.contains(&format!("feature_names[{width}]"))
                && text.contains(&format!("feature_names[{first}]")),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_huge_list_of_unique_unknown_names_is_checked_in_linear_time() {
    // 200,000 distinct names not in any model: a quadratic scan takes minutes here.
    let f = fixture(|_| {});
    let names: Vec<String> = (0..200_000).map(|i| format!("unknown_{i}")).collect();
    let request = json!({
        "feature_names": names,
        "candidates": [{"id": "a", "values": vec![Value::Null; 200_000]}],
    });
    let (status, body) = post_json(&f.state, &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn every_known_counter_exists_at_zero_from_the_start() {
    let f = fixture(|_| {});
    let (_, text) = get(&f.state, "/metrics").await;
    for reason in giftrank::metrics::REJECT_REASONS {
        let line = format!("giftrank_rejected_requests_total{{reason=\"{reason}\"}} 0");
        assert!(text.contains(&line), "missing `{line}`");
    }
    for outcome in ["loaded", "rejected"] {
        let prefix = format!("giftrank_model_reloads_total{{outcome=\"{outcome}\"}} ");
        assert!(text.contains(&prefix), "missing `{prefix}`");
    }
}

#[tokio::test]
async fn a_ranking_job_that_panics_gives_back_its_place_and_the_gauge() {
    let f = fixture(|c| c.max_inflight_requests = 1);
    let admission = f.state.admit().expect("a place");
    assert_eq!(f.state.metrics.inflight.get(), 1);
    let deadline = giftrank::ranker::Deadline::from_arrival(
        std::time::Instant::now(),
        std::time::Duration::from_secs(60),
        None,
    );
    let result: Result<(), _> = f
        .state
        .run(admission, deadline, |_, _, _| {
            panic!("a bug in a ranking job")
        })
        .await;
    assert!(matches!(
        result,
        Err(giftrank::ranker::RankError::Internal(_))
    ));
    assert_eq!(f.state.metrics.inflight.get(), 0);
    assert_eq!(
        post_json(&f.state, &small_request()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_openapi_document_covers_every_public_route_and_the_examples_validate() {
    let f = fixture(|_| {});
    let (status, text) = get(&f.state, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let document: Value = serde_json::from_str(&text).expect("JSON");
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        document["openapi"]
    );
    for route in [
        "/rank",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/models",
        "/openapi.json",
    ] {
        assert!(document["paths"].get(route).is_some(), "{route} is missing");
    }
    assert!(document["paths"].get("/admin/reload").is_none());

    // The request schema, resolved within the document, as a JSON Schema.
    let mut schema = document.clone();
    schema["$ref"] = json!("#/components/schemas/RankRequest");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    for example in ["rank_request.json", "rank_request_dense.json"] {
        let request = common::example(example);
        let errors: Vec<String> = validator
            .iter_errors(&request)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{example}: {errors:?}");
    }
    for wrong in [
        json!({"candidates": [], "kk": 3}),
        json!({"candidates": [{"id": "a", "features": {"fans": true}}]}),
        json!({"candidates": [{"id": 7}]}),
        json!({}),
        json!({"candidates": [], "alpha": 1.5}),
        json!({"candidates": [], "timeout_ms": 0}),
        json!({"candidates": [], "allow_degraded": "no"}),
        json!({"candidates": [], "routing_key": 7}),
    ] {
        assert!(!validator.is_valid(&wrong), "{wrong} validated");
    }
    // Every request field of DESIGN.md §2 is in the document.
    let every_field = json!({"request_id": "r", "context": {}, "candidates": [], "profile": "hybrid",
        "m": 5, "alpha": 0.5, "k": 3, "timeout_ms": 100, "allow_degraded": false,
        "routing_key": "user-1"});
    assert!(validator.is_valid(&every_field));

    // A real response validates against the response schema, which names every field.
    let mut schema = document.clone();
    schema["$ref"] = json!("#/components/schemas/RankResponse");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let (status, response) = post_json(&f.state, &small_request()).await;
    assert_eq!(status, StatusCode::OK);
    let errors: Vec<String> = validator
        .iter_errors(&response)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let properties = &document["components"]["schemas"]["RankResponse"]["properties"];
    for field in [
        "request_id",
        "model_version",
        "profile",
        "m",
        "degraded",
        "items",
    ] {
        assert!(
            properties.get(field).is_some(),
            "RankResponse lacks {field}"
        );
    }
}
