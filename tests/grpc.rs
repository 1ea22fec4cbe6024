//! The gRPC and protobuf transports against a real server on `127.0.0.1:0`, through the
//! tonic client generated from `proto/giftrank/v1/ranker.proto`: rankings equal the JSON
//! path's, the health service follows readiness into shutdown, and each error has its
//! gRPC code and names the field at fault.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use giftrank::config::Config;
use giftrank::grpc::RANK_ROUTE;
use giftrank::proto::v1 as pb;
use giftrank::proto::v1::feature_value::Kind;
use giftrank::proto::v1::ranker_client::RankerClient;
use prost::Message;
use serde_json::{json, Value};
use tonic::codegen::{http, Bytes};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

async fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .expect("endpoint")
        .connect()
        .await
        .expect("gRPC connection")
}

async fn ranker(url: &str) -> RankerClient<Channel> {
    RankerClient::new(channel(url).await)
}

fn value(v: &Value) -> pb::FeatureValue {
    let kind = match v {
        Value::Null => None,
        Value::Number(n) => Some(Kind::Number(n.as_f64().expect("f64"))),
        Value::String(s) => Some(Kind::Label(s.clone())),
        other => panic!("not a feature value: {other}"),
    };
    pb::FeatureValue { kind }
}

fn features(object: Option<&Value>) -> BTreeMap<String, pb::FeatureValue> {
    object
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, v)| (name.clone(), value(v)))
        .collect()
}

/// The protobuf message of a JSON `/rank` body, written out field by field.
fn to_proto(request: &Value) -> pb::RankRequest {
    pb::RankRequest {
        request_id: request["request_id"].as_str().map(str::to_owned),
        context: features(request.get("context")),
        feature_names: request
            .get("feature_names")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|n| n.as_str().expect("name").to_owned())
            .collect(),
        candidates: request["candidates"]
            .as_array()
            .expect("candidates")
            .iter()
            .map(|c| pb::Candidate {
                id: c["id"].as_str().expect("id").to_owned(),
                features: features(c.get("features")),
                values: c
                    .get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(value)
                    .collect(),
            })
            .collect(),
        m: request["m"].as_u64(),
        k: request["k"].as_u64(),
        profile: request["profile"].as_str().map(str::to_owned),
        alpha: request["alpha"].as_f64(),
        timeout_ms: request["timeout_ms"].as_u64(),
        allow_degraded: request["allow_degraded"].as_bool(),
        routing_key: request["routing_key"].as_str().map(str::to_owned),
    }
}

/// Everything a JSON `/rank` response says, in the protobuf response's shape.
fn from_json(body: &Value) -> pb::RankResponse {
    pb::RankResponse {
        request_id: body["request_id"].as_str().map(str::to_owned),
        model_version: body["model_version"]
            .as_str()
            .expect("model_version")
            .to_owned(),
        m: body["m"].as_u64().expect("m"),
        profile: body["profile"].as_str().expect("profile").to_owned(),
        degraded: body["degraded"].as_str().map(str::to_owned),
        items: body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| pb::RankedItem {
                id: item["id"].as_str().expect("id").to_owned(),
                score: item["score"].as_f64().expect("score"),
                direct_score: item["direct_score"].as_f64().expect("direct_score"),
                stage2_score: item["stage2_score"].as_f64(),
                reranked: item["reranked"].as_bool().expect("reranked"),
            })
            .collect(),
    }
}

async fn rank_json(url: &str, body: &Value) -> pb::RankResponse {
    let response = reqwest::Client::new()
        .post(format!("{url}/rank"))
        .json(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    from_json(&response.json().await.expect("JSON"))
}

fn small_request(n: usize) -> Value {
    let mut request = common::example("rank_request.json");
    let candidates = request["candidates"].as_array().expect("candidates")[..n].to_vec();
    request["candidates"] = json!(candidates);
    request.as_object_mut().expect("object").remove("m");
    request.as_object_mut().expect("object").remove("k");
    request
}

fn requests(state: &giftrank::ranker::Ranker, status: &str) -> u64 {
    state
        .metrics
        .http_requests
        .with_label_values(&[RANK_ROUTE, status])
        .get()
}

fn rejected(state: &giftrank::ranker::Ranker, reason: &str) -> u64 {
    state.metrics.rejected.with_label_values(&[reason]).get()
}

async fn start(change: impl FnOnce(&mut Config)) -> (tempfile::TempDir, common::Running) {
    let repo = common::temp_repo();
    let mut config = common::test_config(repo.path());
    change(&mut config);
    let server = common::start(config).await;
    (repo, server)
}

#[tokio::test]
async fn grpc_ranks_exactly_as_the_json_path() {
    let (_repo, server) = start(|_| {}).await;
    let mut client = ranker(&server.grpc_url).await;
    for name in ["rank_request.json", "rank_request_dense.json"] {
        let json = common::example(name);
        let expected = rank_json(&server.url, &json).await;
        let got = client
            .rank(to_proto(&json))
            .await
            .unwrap_or_else(|s| panic!("{name}: {s:?}"))
            .into_inner();
        // Ids, scores (bit for bit), M, version and request id.
        assert_eq!(got, expected, "{name}");
        assert_eq!(got.items.len(), 50, "{name}");
        assert_eq!(got.request_id.as_deref(), Some("example-1"));
    }
    // Without a request_id in the message, the x-request-id metadata is echoed.
    let mut message = to_proto(&small_request(3));
    message.request_id = None;
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-request-id", "from-metadata".parse().expect("ascii"));
    let got = client.rank(request).await.expect("ranked").into_inner();
    assert_eq!(got.request_id.as_deref(), Some("from-metadata"));
    assert_eq!(got.items.len(), 3);
    // Counted with the HTTP listener's metrics, by method and HTTP-equivalent status.
    assert_eq!(requests(&server.state, "200"), 3);
    server.shutdown().await;
}

/// POSTs `body` to `url` as `application/x-protobuf`.
async fn post_protobuf(http: &reqwest::Client, url: &str, body: Vec<u8>) -> reqwest::Response {
    post_as(http, url, "application/x-protobuf", body).await
}

/// POSTs `body` to `url` with the content type `content_type`.
async fn post_as(
    http: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    http.post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn protobuf_over_http_ranks_exactly_as_json() {
    let (_repo, server) = start(|_| {}).await;
    let http = reqwest::Client::new();
    let url = format!("{}/rank", server.url);
    for name in ["rank_request.json", "rank_request_dense.json"] {
        let json = common::example(name);
        let expected = rank_json(&server.url, &json).await;
        // A protobuf request is answered in protobuf.
        let response = post_protobuf(&http, &url, to_proto(&json).encode_to_vec()).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["content-type"], "application/x-protobuf");
        let body = response.bytes().await.expect("body");
        let got = pb::RankResponse::decode(body).expect("a protobuf RankResponse");
        assert_eq!(got, expected, "{name}");
        // A JSON request is answered in protobuf when Accept asks for it.
        let response = http
            .post(&url)
            .header("accept", "application/json;q=0.5, application/x-protobuf")
            .json(&json)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["content-type"], "application/x-protobuf");
        let body = response.bytes().await.expect("body");
        assert_eq!(pb::RankResponse::decode(body).expect("protobuf"), expected);
    }
    // A body that is not a RankRequest is a 400 (errors are JSON whatever the format).
    let response = post_protobuf(&http, &url, vec![0xff_u8, 0xff, 0xff]).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("JSON error");
    assert_eq!(error["error"]["code"], "invalid_request");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("body: ")),
        "{error}"
    );
    // Validation names the field as it does for JSON.
    let mut message = to_proto(&small_request(2));
    message.m = Some(0);
    let response = post_protobuf(&http, &url, message.encode_to_vec()).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("JSON error");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("m: ")),
        "{error}"
    );
    // Other content types stay 415.
    let response = post_as(&http, &url, "application/grpc", message.encode_to_vec()).await;
    assert_eq!(response.status(), 415);
    server.shutdown().await;
}

fn health_request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

async fn check(health: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    health
        .check(health_request(service))
        .await
        .unwrap_or_else(|s| panic!("check {service:?}: {s:?}"))
        .into_inner()
        .status()
}

#[tokio::test]
async fn health_is_serving_then_not_serving_once_shutdown_begins() {
    let (_repo, server) = start(|_| {}).await;
    let mut health = HealthClient::new(channel(&server.grpc_url).await);
    for service in ["", "giftrank.v1.Ranker"] {
        assert_eq!(check(&mut health, service).await, ServingStatus::Serving);
    }
    let unknown = health.check(health_request("giftrank.v1.Nope")).await;
    assert_eq!(unknown.expect_err("unknown service").code(), Code::NotFound);

    // Watch the service whose status is set last, so that once it changes both have.
    let mut watch = health
        .watch(health_request("giftrank.v1.Ranker"))
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("status").expect("one");
    assert_eq!(first.status(), ServingStatus::Serving);
    server.state.begin_shutdown();
    let next = watch.message().await.expect("status").expect("one more");
    assert_eq!(next.status(), ServingStatus::NotServing);
    // The stream ends there, so that it does not hold up the drain.
    assert!(watch.message().await.expect("clean end").is_none());
    for service in ["", "giftrank.v1.Ranker"] {
        assert_eq!(check(&mut health, service).await, ServingStatus::NotServing);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_health_watcher_sees_not_serving_and_does_not_hold_up_the_drain() {
    // A drain held up by the watcher would wait out this deadline.
    let (_repo, mut server) = start(|c| c.drain_timeout_secs = 3_600).await;
    let mut health = HealthClient::new(channel(&server.grpc_url).await);
    let mut watch = health
        .watch(health_request(""))
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("status").expect("one");
    assert_eq!(first.status(), ServingStatus::Serving);

    // The server's own shutdown, as on SIGTERM: the watcher hears NOT_SERVING first.
    server.stop.take().expect("running").send(()).expect("stop");
    let next = watch.message().await.expect("status").expect("one more");
    assert_eq!(next.status(), ServingStatus::NotServing);
    assert!(watch.message().await.expect("clean end").is_none());
    let drained = tokio::time::timeout(Duration::from_secs(60), &mut server.task).await;
    drained
        .expect("the drain ends without waiting for its deadline")
        .expect("join")
        .expect("server exits cleanly");
    // The listener is closed after the drain.
    assert!(Endpoint::from_shared(server.grpc_url.clone())
        .expect("endpoint")
        .connect()
        .await
        .is_err());
}

async fn invalid(client: &mut RankerClient<Channel>, request: pb::RankRequest) -> String {
    let status = client.rank(request).await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status.message().to_owned()
}

#[tokio::test]
async fn invalid_requests_are_invalid_argument_naming_the_field() {
    let (_repo, server) = start(|_| {}).await;
    let mut client = ranker(&server.grpc_url).await;

    let mut duplicate = to_proto(&small_request(3));
    duplicate.candidates[2].id = duplicate.candidates[0].id.clone();
    let message = invalid(&mut client, duplicate).await;
    assert!(message.starts_with("candidates[2].id: "), "{message}");

    let mut m_zero = to_proto(&small_request(3));
    m_zero.m = Some(0);
    let message = invalid(&mut client, m_zero).await;
    assert!(message.starts_with("m: 0 is outside 1..="), "{message}");

    let mut short = to_proto(&common::example("rank_request_dense.json"));
    short.candidates[4].values.pop();
    let message = invalid(&mut client, short).await;
    assert!(
        message.starts_with("candidates[4].values: 7 values for 8 feature_names"),
        "{message}"
    );

    let mut nan = to_proto(&small_request(3));
    nan.candidates[1].features.insert(
        "streamer_fans".into(),
        pb::FeatureValue {
            kind: Some(Kind::Number(f64::NAN)),
        },
    );
    let message = invalid(&mut client, nan).await;
    assert!(
        message.starts_with("candidates[1].features.streamer_fans: NaN is not a finite number"),
        "{message}"
    );

    let mut label = to_proto(&small_request(3));
    label.context.insert(
        "hour".into(),
        pb::FeatureValue {
            kind: Some(Kind::Label("noon".into())),
        },
    );
    let message = invalid(&mut client, label).await;
    assert!(
        message.starts_with("context.hour: `noon` is a string"),
        "{message}"
    );

    let mut request = tonic::Request::new(to_proto(&small_request(3)));
    request
        .metadata_mut()
        .insert("grpc-timeout", "soon".parse().expect("ascii"));
    let status = client.rank(request).await.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("grpc-timeout: "), "{status:?}");

    // Bytes that are not a RankRequest: the client's fault too (tonic would say INTERNAL).
    let raw = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<Bytes>>();
    let frame = Bytes::from_static(&[0, 0, 0, 0, 3, 0xff, 0xff, 0xff]);
    let request = http::Request::post(format!("{}{RANK_ROUTE}", server.grpc_url))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(frame))
        .expect("request");
    let response = raw.request(request).await.expect("answered");
    let status = tonic::Status::from_header_map(response.headers()).expect("trailers-only");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("body: "), "{status:?}");

    assert_eq!(requests(&server.state, "400"), 7);
    assert_eq!(requests(&server.state, "200"), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn over_the_limits_is_resource_exhausted() {
    let (_repo, server) = start(|c| {
        c.max_candidates = 10;
        c.max_body_bytes = 8 * 1024;
    })
    .await;
    let mut client = ranker(&server.grpc_url).await;

    let status = client
        .rank(to_proto(&small_request(11)))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("candidates: 11 candidates, more than the limit of 10"),
        "{status:?}"
    );
    assert_eq!(rejected(&server.state, "too_many_candidates"), 1);

    // A message over max_body_bytes is refused before it is decoded.
    let big = to_proto(&common::repeated_request(200));
    assert!(big.encoded_len() > 8 * 1024);
    let status = client.rank(big).await.expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        "body: larger than the limit of 8192 bytes"
    );
    assert_eq!(rejected(&server.state, "body_too_large"), 1);
    assert_eq!(requests(&server.state, "413"), 2);

    // Within the limits, the same connection still ranks.
    let ok = client.rank(to_proto(&small_request(10))).await;
    assert_eq!(ok.expect("ranked").into_inner().items.len(), 10);
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_house_is_resource_exhausted_with_a_retry_pushback() {
    let (_repo, server) = start(|c| c.max_inflight_requests = 1).await;
    let mut client = ranker(&server.grpc_url).await;
    let held = server.state.admit().expect("the only place");
    let status = client
        .rank(to_proto(&small_request(3)))
        .await
        .expect_err("shed");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status
            .metadata()
            .get("grpc-retry-pushback-ms")
            .and_then(|v| v.to_str().ok()),
        Some("1000")
    );
    assert_eq!(rejected(&server.state, "overloaded"), 1);
    assert_eq!(requests(&server.state, "503"), 1);
    drop(held);
    let ok = client.rank(to_proto(&small_request(3))).await;
    assert_eq!(ok.expect("ranked").into_inner().items.len(), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_whose_own_deadline_cannot_wait_is_resource_exhausted_at_once() {
    let (_repo, server) = start(|c| c.scoring_slots = 1).await;
    let mut client = ranker(&server.grpc_url).await;
    server.state.assume_slot_time(Duration::from_millis(400));
    let slot = server.state.occupy_scoring_slot().await;
    // Its turn in 400 ms; the message's own 300 ms leaves no room. Had it queued behind
    // the held slot, it would have been DEADLINE_EXCEEDED after 300 ms.
    let mut request = to_proto(&small_request(3));
    request.timeout_ms = Some(300);
    let status = client.rank(request.clone()).await.expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // The same message POSTed as protobuf: field 9 is read before the body is decoded.
    let http = reqwest::Client::new();
    let url = format!("{}/rank", server.url);
    let response = post_protobuf(&http, &url, request.encode_to_vec()).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(rejected(&server.state, "deadline"), 0);
    assert_eq!(server.state.waiting_for_slot(), 0);
    drop(slot);

    // A timeout_ms of 0 does not cap the deadline; the request is refused for it.
    request.timeout_ms = Some(0);
    assert!(invalid(&mut client, request).await.contains("timeout_ms"));
    server.shutdown().await;
}

/// A client over plain hyper: unlike tonic's `Channel`, it does not enforce
/// `grpc-timeout` itself (tonic's would answer CANCELLED first), so what the client gets
/// is the server's answer.
fn deadline_blind_client(
    url: &str,
) -> RankerClient<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        tonic::body::Body,
    >,
> {
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http();
    RankerClient::with_origin(http, url.parse().expect("uri"))
}

#[tokio::test]
async fn past_the_deadline_is_deadline_exceeded() {
    let (_repo, server) = start(|_| {}).await;
    let mut client = deadline_blind_client(&server.grpc_url);
    // 10,000 candidates take far longer than 1 ms to decode and score.
    let mut request = tonic::Request::new(to_proto(&common::repeated_request(10_000)));
    request.set_timeout(Duration::from_millis(1));
    let status = client.rank(request).await.expect_err("too late");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(rejected(&server.state, "deadline"), 1);
    assert_eq!(requests(&server.state, "504"), 1);
    // A generous client timeout leaves the configured deadline in charge.
    let mut request = tonic::Request::new(to_proto(&small_request(3)));
    request.set_timeout(Duration::from_secs(3_600));
    assert!(client.rank(request).await.is_ok());
    server.shutdown().await;

    // The configured deadline applies without a client timeout.
    let (_repo, server) = start(|c| c.request_timeout_ms = 1).await;
    let mut client = deadline_blind_client(&server.grpc_url);
    let status = client
        .rank(to_proto(&common::repeated_request(10_000)))
        .await
        .expect_err("too late");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(rejected(&server.state, "deadline"), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_in_flight_call_completes_across_shutdown() {
    let (_repo, server) = start(|c| c.request_timeout_ms = 60_000).await;
    let mut client = ranker(&server.grpc_url).await;
    let mut big = to_proto(&common::repeated_request(10_000));
    big.k = Some(10);
    let in_flight = tokio::spawn(async move { client.rank(big).await });
    // Wait until the server has admitted the call (the gauge counts it), then shut down.
    while server.state.metrics.inflight.get() == 0 && !in_flight.is_finished() {
        tokio::task::yield_now().await;
    }
    server.shutdown().await;
    let response = in_flight.await.expect("join").expect("ranked");
    assert_eq!(response.into_inner().items.len(), 10);
}

/// The numeric-category fixture (LightGBM-made): its model, and rows whose category is
/// given as a number, each with `Booster.predict` on a pandas DataFrame.
fn numeric_categories() -> (std::path::PathBuf, Value) {
    let dir = common::repo_root().join("tests/fixtures/engine/pandas_numeric_categories");
    let text = std::fs::read_to_string(dir.join("service_rows.json")).expect("rows");
    (
        dir.join("model.txt"),
        serde_json::from_str(&text).expect("JSON"),
    )
}

fn close(got: f64, want: f64) -> bool {
    got == want || (got - want).abs() <= 1e-9 * got.abs().max(want.abs())
}

#[tokio::test]
async fn a_category_given_as_a_number_means_the_same_in_json_protobuf_grpc_and_csv() {
    let (model, fixture) = numeric_categories();
    let rows = fixture["rows"].as_array().expect("rows");
    // One version whose two models are the fixture model.
    let repo = tempfile::tempdir().expect("temp");
    let version = repo.path().join("1");
    std::fs::create_dir_all(&version).expect("dir");
    std::fs::copy(&model, version.join("model.txt")).expect("copy");
    std::fs::write(
        version.join("bundle.toml"),
        format!(
            "format_version = 1\n[recall]\nmodel = \"model.txt\"\ndefault_m = {n}\nmax_m = {n}\n[rerank]\nmodel = \"model.txt\"\n",
            n = rows.len()
        ),
    )
    .expect("bundle");
    let server = common::start(common::test_config(repo.path())).await;

    let expected: BTreeMap<String, f64> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| (format!("r{i}"), row["expected"].as_f64().expect("expected")))
        .collect();
    let request = json!({
        "candidates": rows.iter().enumerate().map(|(i, row)| json!({
            "id": format!("r{i}"),
            "features": row["features"],
        })).collect::<Vec<_>>(),
    });
    let check = |path: &str, response: &pb::RankResponse| {
        assert_eq!(response.items.len(), rows.len(), "{path}");
        for item in &response.items {
            let want = expected[&item.id];
            assert!(
                close(item.direct_score, want),
                "{path} {}: {} != LightGBM's {want}",
                item.id,
                item.direct_score
            );
        }
    };
    check("JSON", &rank_json(&server.url, &request).await);

    let http = reqwest::Client::new();
    let response = post_protobuf(
        &http,
        &format!("{}/rank", server.url),
        to_proto(&request).encode_to_vec(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let decoded =
        pb::RankResponse::decode(response.bytes().await.expect("body")).expect("protobuf");
    check("protobuf", &decoded);

    let mut client = ranker(&server.grpc_url).await;
    let response = client.rank(to_proto(&request)).await.expect("ranked");
    check("gRPC", &response.into_inner());
    server.shutdown().await;

    // The same rows as CSV text, the category written as a float (`3.0`).
    let names: Vec<&str> = fixture["feature_names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().expect("name"))
        .collect();
    let mut csv = names.join(",");
    for row in rows {
        csv.push('\n');
        let cells: Vec<String> = names
            .iter()
            .map(|name| match &row["features"][*name] {
                Value::Number(n) if *name == "bucket" => format!("{:?}", n.as_f64().expect("f64")),
                Value::Number(n) => format!("{}", n.as_f64().expect("f64")),
                _ => String::new(),
            })
            .collect();
        csv.push_str(&cells.join(","));
    }
    let data = repo.path().join("rows.csv");
    std::fs::write(&data, csv + "\n").expect("csv");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_giftrank"))
        .args(["score", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("giftrank score");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scores: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().expect("a score"))
        .collect();
    assert_eq!(scores.len(), rows.len());
    for (i, (got, row)) in scores.iter().zip(rows).enumerate() {
        let want = row["expected"].as_f64().expect("expected");
        assert!(close(*got, want), "CSV row {i}: {got} != LightGBM's {want}");
    }
}

// --- Profiles against the independent reference (tools/gen_profile_fixtures.py) ----------

/// A repository whose version 1 is the profiles fixture bundle (format 2).
fn profiles_repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("temp");
    common::copy_dir(
        &common::repo_root().join("tests/fixtures/profiles/bundle"),
        &repo.path().join("1"),
    );
    repo
}

/// `got` is the fixture's expected response: profile, M, ids, flags and scores bit for
/// bit, except a fused key (alpha < 1), which may differ by 1e-12.
fn assert_reference(case: &Value, got: &pb::RankResponse, path: &str) {
    let name = format!("{path} {}", case["name"].as_str().expect("name"));
    let expected = &case["expected"];
    assert_eq!(
        got.profile,
        expected["profile"].as_str().expect("profile"),
        "{name}"
    );
    assert_eq!(got.m, expected["m"].as_u64().expect("m"), "{name}");
    let items = expected["items"].as_array().expect("items");
    let ids: Vec<&str> = got.items.iter().map(|i| i.id.as_str()).collect();
    let want: Vec<&str> = items
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, want, "{name}: order");
    for (item, want) in got.items.iter().zip(items) {
        let at = format!("{name} {}", item.id);
        assert_eq!(
            item.reranked,
            want["reranked"].as_bool().expect("reranked"),
            "{at}"
        );
        assert_eq!(
            item.direct_score,
            want["direct_score"].as_f64().expect("d"),
            "{at}"
        );
        assert_eq!(item.stage2_score, want["stage2_score"].as_f64(), "{at}");
        let key = want["score"].as_f64().expect("score");
        let fused = item.reranked && item.stage2_score != Some(key);
        if fused {
            assert!(
                (item.score - key).abs() <= 1e-12,
                "{at}: key {} != {key}",
                item.score
            );
        } else {
            assert_eq!(item.score, key, "{at}");
        }
    }
}

#[tokio::test]
async fn every_profile_ranks_as_the_reference_over_json_protobuf_and_grpc() {
    let repo = profiles_repo();
    let server = common::start(common::test_config(repo.path())).await;
    let text =
        std::fs::read_to_string(common::repo_root().join("tests/fixtures/profiles/requests.json"))
            .expect("cases");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("JSON");
    assert!(cases.len() >= 15);
    let http = reqwest::Client::new();
    let url = format!("{}/rank", server.url);
    let mut client = ranker(&server.grpc_url).await;
    for case in &cases {
        let body = &case["body"];
        assert_reference(case, &rank_json(&server.url, body).await, "JSON");
        let response = post_protobuf(&http, &url, to_proto(body).encode_to_vec()).await;
        assert_eq!(response.status(), 200);
        let decoded =
            pb::RankResponse::decode(response.bytes().await.expect("body")).expect("protobuf");
        assert_reference(case, &decoded, "protobuf");
        let response = client.rank(to_proto(body)).await.expect("ranked");
        assert_reference(case, &response.into_inner(), "gRPC");
    }
    // Every request was counted under its profile, as a full ranking.
    let counted: u64 = ["default", "direct", "fusion", "hybrid", "prob_first"]
        .iter()
        .map(|p| {
            server
                .state
                .metrics
                .rank_requests
                .with_label_values(&[p, "full"])
                .get()
        })
        .sum();
    assert_eq!(counted, 3 * cases.len() as u64);
    server.shutdown().await;
}

#[tokio::test]
async fn profile_parameters_that_do_not_apply_are_400_naming_the_field() {
    let repo = profiles_repo();
    let server = common::start(common::test_config(repo.path())).await;
    let candidates =
        json!([{"id": "a", "features": {"f0": 1}}, {"id": "b", "features": {"f0": 2}}]);
    let mut client = ranker(&server.grpc_url).await;
    for (extra, field, words) in [
        (json!({"profile": "main"}), "profile", "`main` is not a profile of model version 1 (it has: default, direct, fusion, hybrid, prob_first)"),
        (json!({"profile": "direct", "m": 5}), "m", "profile `direct` has no recall"),
        (json!({"profile": "direct", "alpha": 0.5}), "alpha", "profile `direct` has no rerank model"),
        (json!({"profile": "fusion", "alpha": 1.5}), "alpha", "1.5 is outside [0, 1]"),
        (json!({"alpha": -0.1}), "alpha", "is outside [0, 1]"),
        (json!({"profile": "hybrid", "m": 51}), "m", "outside 1..=50 (max_m of profile `hybrid`"),
        (json!({"alpha": "high"}), "alpha", "invalid type"),
    ] {
        let mut body = json!({"candidates": candidates});
        for (key, value) in extra.as_object().expect("object") {
            body[key] = value.clone();
        }
        let response = reqwest::Client::new()
            .post(format!("{}/rank", server.url))
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.expect("JSON");
        let message = error["error"]["message"].as_str().expect("message");
        assert!(message.starts_with(&format!("{field}: ")), "{message}");
        assert!(message.contains(words), "{message}");
        if body["alpha"].is_string() {
            continue; // protobuf has no such value
        }
        let status = invalid(&mut client, to_proto(&body)).await;
        assert!(status.starts_with(&format!("{field}: ")), "{status}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn grpc_says_how_an_answer_was_degraded_and_refuses_when_told_not_to() {
    // Every model costs 10 ms per candidate to the planner: 3 candidates fit a 50 ms
    // deadline only without rerank ((50 - 0.5) / 1.25 = 39.6 ms >= 30 ms, < 40 ms).
    let (_repo, server) = start(|c| c.fixed_cost_ns_per_row = 10_000_000).await;
    let mut client = ranker(&server.grpc_url).await;
    let mut message = to_proto(&small_request(3));
    message.timeout_ms = Some(50);
    let answer = client
        .rank(message.clone())
        .await
        .expect("ranked")
        .into_inner();
    assert_eq!(answer.degraded.as_deref(), Some("recall_only"));
    assert!(answer
        .items
        .iter()
        .all(|i| !i.reranked && i.stage2_score.is_none()));
    message.allow_degraded = Some(false);
    let status = client.rank(message).await.expect_err("refused");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let full = client
        .rank(to_proto(&small_request(3)))
        .await
        .expect("ranked")
        .into_inner();
    assert_eq!(full.degraded, None);
    server.shutdown().await;
}
