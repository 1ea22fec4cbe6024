//! Criterion benchmark of the `/rank` path stage by stage, in process, on the shipped
//! bundle: JSON decoding (sparse and dense form), feature assembly, Direct on every
//! candidate, Top-M, Stage2 on the M (with the final order), and encoding the JSON
//! response, for `examples/rank_request.json` (1,000 candidates, M = 200) and the same
//! request with its candidates repeated to 5,000. `tools/loadtest.sh` measures the
//! whole service over HTTP.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use giftrank::bundle::Bundle;
use giftrank::http::json;
use giftrank::order;
use giftrank::ranker::features::{Batch, FeatureIndex, Side};
use giftrank::ranker::{Ranked, RankedItem};
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

fn rank_stages(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = Bundle::load(&root.join("models/gift/1")).expect("shipped bundle");
    let index = FeatureIndex::new(&bundle);
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

        let request = json::decode(&sparse).expect("valid");
        let m = request.m.map_or(bundle.default_m, |m| m as usize);
        let all: Vec<usize> = (0..n).collect();
        group.bench_function(BenchmarkId::new("assemble_direct_matrix", n), |b| {
            b.iter(|| {
                let batch = Batch::new(&request, &index).expect("valid");
                batch.matrix(Side::Direct, &bundle.direct, &all)
            })
        });
        let batch = Batch::new(&request, &index).expect("valid");
        let matrix = batch.matrix(Side::Direct, &bundle.direct, &all);
        let mut d = vec![0.0; n];
        group.bench_function(BenchmarkId::new("direct", n), |b| {
            b.iter(|| bundle.direct.predict(black_box(&matrix), &mut d))
        });
        group.bench_function(BenchmarkId::new("top_m", n), |b| {
            b.iter(|| order::recall(black_box(&d), m))
        });
        let recalled = order::recall(&d, m);
        let mut s = vec![0.0; recalled.len()];
        group.bench_function(BenchmarkId::new("stage2_and_order", n), |b| {
            b.iter(|| {
                let matrix = batch.matrix(Side::Stage2, &bundle.stage2, &recalled);
                bundle.stage2.predict(&matrix, &mut s);
                order::order(&d, &recalled, &s, request.k.map_or(n, |k| k as usize))
            })
        });
        let order = order::order(&d, &recalled, &s, request.k.map_or(n, |k| k as usize));
        let ranked = Ranked {
            m: recalled.len(),
            items: order
                .into_iter()
                .map(|(index, stage2_score)| RankedItem {
                    index,
                    direct_score: d[index],
                    stage2_score,
                })
                .collect(),
        };
        group.bench_function(BenchmarkId::new("encode_json", n), |b| {
            b.iter(|| json::response(1, &request, &ranked, None).expect("encodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, rank_stages);
criterion_main!(benches);
