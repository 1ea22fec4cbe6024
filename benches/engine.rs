//! Criterion benchmark of batch scoring, 1,000 rows per call, with every instruction set
//! this CPU has: the committed benchmark fixture (300 trees × 63 leaves, NaNs and
//! categorical splits) and the shipped Direct and Stage2 models on held-out rows.
//! `tools/bench_engine.sh` puts the same models beside LightGBM and lleaves.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use giftrank::commands::load_model_and_rows;
use giftrank::engine::Isa;

const ROWS: usize = 1000;

fn batch_scoring(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("tests/fixtures/engine/bench");
    let heldout = root.join("models/gift/heldout.csv.gz");
    let cases = [
        (
            "fixture_t300_l63",
            fixture.join("model.txt"),
            fixture.join("data.csv"),
        ),
        (
            "direct_t300_l31",
            root.join("models/gift/1/direct.txt"),
            heldout.clone(),
        ),
        (
            "stage2_t300_l15",
            root.join("models/gift/1/stage2.txt"),
            heldout,
        ),
    ];
    let mut group = c.benchmark_group("predict_1000_rows");
    group.throughput(Throughput::Elements(ROWS as u64));
    for (name, model, data) in cases {
        let (mut model, rows) = load_model_and_rows(&model, &data).expect("bench inputs");
        let rows = rows.rows(0..ROWS.min(rows.num_rows()));
        let mut out = vec![0.0; rows.num_rows() * model.num_outputs()];
        for isa in Isa::ALL {
            if model.set_isa(isa) != isa {
                continue;
            }
            group.bench_function(format!("{name}/{isa}"), |b| {
                b.iter(|| model.predict(&rows, &mut out))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, batch_scoring);
criterion_main!(benches);
