//! Criterion benchmark of the `/rank` path in process, on the shipped bundle that serves
//! (the highest version): JSON decoding (sparse and dense form), feature assembly, each
//! model alone on every candidate (Direct's is the engine's own cost), each profile of the bundle
//! whole (from the decoded request to the ranked items, one thread), and encoding the
//! JSON response, for `examples/rank_request.json` (1,000 candidates) and the same request
//! with its candidates repeated to 5,000. `tools/loadtest.sh` measures the whole service
//! over HTTP.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use giftrank::bundle::Bundle;
use giftrank::http::json;
use giftrank::ranker::features::{Batch, FeatureIndex};
use giftrank::ranker::{pipeline, Serving};
use serde_json::Value;

/// The example request with its candidates repeated (fresh ids) up to `n`.
fn request_body(file: &str, n: usize) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(root.join("examples").join(file)).expect("example request");
    let mut request: Value = serde_json::from_slice(&text).expect("example JSON");
    let candidates = request["candidates"]
        .as_array()
        .expect("candidates")
        .clone();
    let repeated: Vec<Value> = (0..n)
        .map(|i| {
            let mut candidate = candidates[i % candidates.len()].clone();
            candidate["id"] = Value::String(format!("candidate-{i}"));
            candidate
        })
        .collect();
    request["candidates"] = Value::Array(repeated);
    serde_json::to_vec(&request).expect("encodes")
}

/// The shipped bundle that serves: the highest version of `models/gift`.
fn shipped() -> (u64, Bundle) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gift");
    let version = std::fs::read_dir(&root)
        .expect("models/gift")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .expect("a version");
    let bundle = Bundle::load(&root.join(version.to_string())).expect("shipped bundle");
    (version, bundle)
}

fn rank_stages(c: &mut Criterion) {
    let (version, bundle) = shipped();
    let serving = Serving::new(version, bundle);
    let bundle = &serving.bundle;
    let index = FeatureIndex::new(bundle);
    let direct = bundle.model(bundle.default_profile().score);
    let mut group = c.benchmark_group("rank");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for n in [1000, 5000] {
        let sparse = request_body("rank_request.json", n);
        let dense = request_body("rank_request_dense.json", n);
        group.bench_with_input(BenchmarkId::new("decode_sparse", n), &sparse, |b, body| {
            b.iter(|| json::decode(black_box(body)).expect("valid"))
        });
        group.bench_with_input(BenchmarkId::new("decode_dense", n), &dense, |b, body| {
            b.iter(|| json::decode(black_box(body)).expect("valid"))
        });

        let mut request = json::decode(&sparse).expect("valid");
        request.m = None;
        let all: Vec<usize> = (0..n).collect();
        let which = bundle.default_profile().score;
        group.bench_function(BenchmarkId::new("assemble_direct_matrix", n), |b| {
            b.iter(|| {
                let batch = Batch::new(&request, &index).expect("valid");
                batch.matrix(which, direct, &all)
            })
        });
        // Each model alone on every candidate, its matrix ready: Direct is the engine's
        // own cost of a request; a profile's extra models are to cost no more than this.
        let batch = Batch::new(&request, &index).expect("valid");
        for (which, named) in bundle.models.iter().enumerate() {
            let matrix = batch.matrix(which, &named.model, &all);
            let mut out = vec![0.0; n];
            let name = match named.name.as_str() {
                "direct" => "direct".to_owned(),
                other => format!("model_{other}"),
            };
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| named.model.predict(black_box(&matrix), &mut out))
            });
        }
        // Each profile whole, from the decoded request to the ranked items (one thread).
        for profile in &bundle.profiles {
            request.profile = Some(profile.name.clone().into());
            group.bench_function(
                BenchmarkId::new(format!("profile_{}", profile.name), n),
                |b| {
                    b.iter(|| {
                        pipeline::rank(&serving, black_box(&request), Default::default())
                            .expect("ranks")
                    })
                },
            );
        }
        request.profile = None;
        let (ranked, _) = pipeline::rank(&serving, &request, Default::default()).expect("ranks");
        group.bench_function(BenchmarkId::new("encode_json", n), |b| {
            b.iter(|| json::response(version, &request, &ranked, None).expect("encodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, rank_stages);
criterion_main!(benches);
