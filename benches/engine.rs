//! Criterion benchmark of batch scoring on the committed benchmark fixture
//! (300 trees × 63 leaves, NaNs and categorical splits, 1,000 rows).

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use giftrank::commands::load_model_and_rows;

fn batch_scoring(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine/bench");
    let (model, rows) =
        load_model_and_rows(&dir.join("model.txt"), &dir.join("data.csv")).expect("bench fixture");
    let mut out = vec![0.0; rows.num_rows() * model.num_outputs()];
    let mut group = c.benchmark_group("predict");
    group.throughput(Throughput::Elements(rows.num_rows() as u64));
    group.bench_function("bench_fixture_1000_rows", |b| {
        b.iter(|| model.predict(&rows, &mut out))
    });
    group.finish();
}

criterion_group!(benches, batch_scoring);
criterion_main!(benches);
