#!/usr/bin/env bash
# The engine speed table: for each model shape, ns per row of LightGBM's
# Booster.predict(num_threads=1), lleaves (if installed) and giftrank bench with
# each instruction set this CPU has, all in one sitting on the same 1,000 rows.
#
# Usage (from the repository root, after the set-up in README.md):
#   tools/bench_engine.sh [PYTHON]
# PYTHON defaults to target/lleaves-venv/bin/python when it exists (see
# tools/requirements-lleaves.txt), else .venv/bin/python (no lleaves column).
# Shapes: the committed bench fixture, the shipped Direct and Stage2 models, and
# the shapes tools/gen_bench_models.py trains into target/bench-models (among them
# deep unbalanced Huber trees and a 250-feature model). lleaves is not run on
# t500_l255: its compile did not finish in 13 minutes (9.5 GB); LLEAVES_SKIP lists
# the shapes to leave out (default t500_l255). lleaves' compiled models are kept in
# target/bench-models/lleaves-cache (delete them after changing a model).
set -euo pipefail

python=${1:-}
if [[ -z $python ]]; then
    if [[ -x target/lleaves-venv/bin/python ]]; then
        python=target/lleaves-venv/bin/python
    else
        python=.venv/bin/python
    fi
fi
out=target/bench-models
cargo build --release --quiet
[[ -d $out/wide_f250_t300_l63 ]] || .venv/bin/python tools/gen_bench_models.py --out "$out"

# The shipped models score the first 1,000 held-out rows (the 16 feature columns).
mkdir -p "$out/shipped" "$out/lleaves-cache"
zcat models/gift/heldout.csv.gz | cut -d, -f1-16 | awk "NR <= 1001" >"$out/shipped/data.csv"

shapes=(
    "fixture_t300_l63 tests/fixtures/engine/bench/model.txt tests/fixtures/engine/bench/data.csv"
    "shipped_direct_t300_l31 models/gift/1/direct.txt $out/shipped/data.csv"
    "shipped_stage2_t300_l15 models/gift/1/stage2.txt $out/shipped/data.csv"
)
for shape in t100_l31 t300_l127 t500_l255 huber_t300_l255 wide_f250_t300_l63; do
    shapes+=("$shape $out/$shape/model.txt $out/$shape/data.csv")
done

last() { grep "^$1=" | tail -n 1 | cut -d= -f2; }

printf '| shape | LightGBM | lleaves | giftrank portable | giftrank avx2 | giftrank avx512 | LightGBM / giftrank best |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for line in "${shapes[@]}"; do
    read -r name model data <<<"$line"
    lleaves=--lleaves
    [[ " ${LLEAVES_SKIP-t500_l255} " == *" $name "* ]] && lleaves=
    [[ -n $lleaves ]] && lleaves+=" --lleaves-cache $out/lleaves-cache/$name.o"
    py=$("$python" tools/bench_lightgbm.py --model "$model" --data "$data" $lleaves 2>&1)
    lgb=$(last ns_per_row <<<"$py")
    ll=$(last lleaves_ns_per_row <<<"$py" || true)
    row="| $name | $lgb | ${ll:--}"
    best=
    for isa in portable avx2 avx512; do
        res=$(target/release/giftrank bench --model "$model" --data "$data" --isa "$isa")
        if [[ $(last isa <<<"$res") == "$isa" ]]; then
            ns=$(last ns_per_row <<<"$res")
            row+=" | $ns"
            best=$ns
        else
            row+=" | -"
        fi
    done
    printf "%s | %s× |\n" "$row" "$(awk -v a="$lgb" -v b="$best" 'BEGIN { printf "%.1f", a / b }')"
done
