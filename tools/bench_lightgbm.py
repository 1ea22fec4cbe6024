#!/usr/bin/env python3
"""Time LightGBM's own single-threaded prediction, as the baseline for the Rust engine benchmarks.

Usage (from the repository root)::

    .venv/bin/python tools/bench_lightgbm.py \\
        --model tests/fixtures/engine/bench/model.txt \\
        --data tests/fixtures/engine/bench/data.csv [--lleaves]

``--data`` uses the fixture CSV convention (see ``tools/gen_engine_fixtures.py``):
a header row of feature names, then one row per input, numbers as written by
Python ``repr(float)`` (``nan``, ``inf``, ``-0.0``, ...); an empty cell is NaN.
All columns must be numeric (category strings are not supported here).
The rows are loaded into a float64 C-contiguous numpy array and
``Booster.predict(X, num_threads=1)`` is timed: each run repeats the call
until at least ``--min-seconds`` (default 0.5) have passed, and the best of
``--runs`` (default 5) runs is reported.  The last line printed is
``ns_per_row=<number>`` (nanoseconds per input row, whole batch per call).

With ``--lleaves`` the same is done for lleaves (https://github.com/siboehm/lleaves,
``Model.compile()`` then ``predict(X, n_jobs=1)``) if it is importable; otherwise
a note is printed and it is skipped.  Its result is printed before LightGBM's,
as ``lleaves_ns_per_row=<number>``, so the last line stays LightGBM's.  With
``--lleaves-cache FILE`` lleaves keeps its compiled model in FILE and loads it from
there next time (its compile of a large model takes many minutes).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from typing import Callable, List

import numpy as np


def load_csv(path: str) -> tuple[List[str], np.ndarray]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = []
        for lineno, rec in enumerate(reader, start=2):
            if len(rec) != len(header):
                raise SystemExit(f"{path}:{lineno}: {len(rec)} fields, header has {len(header)}")
            try:
                rows.append([float(c) if c != "" else float("nan") for c in rec])
            except ValueError as e:
                raise SystemExit(f"{path}:{lineno}: non-numeric cell ({e}); only numeric CSVs are supported")
    X = np.ascontiguousarray(np.array(rows, dtype=np.float64).reshape(len(rows), len(header)))
    return header, X


def time_best(fn: Callable[[], object], n_rows: int, runs: int, min_seconds: float) -> float:
    """Best ns/row over `runs` runs; each run repeats fn() until min_seconds elapsed."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(runs):
        reps = 0
        t0 = time.perf_counter()
        while True:
            fn()
            reps += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / (reps * n_rows) * 1e9)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="LightGBM text model (model.txt)")
    ap.add_argument("--data", required=True, help="CSV with a header of feature names")
    ap.add_argument("--runs", type=int, default=5, help="number of timed runs; the best is reported")
    ap.add_argument("--min-seconds", type=float, default=0.5, help="minimum duration of one run")
    ap.add_argument("--lleaves", action="store_true", help="also time lleaves if it is installed")
    ap.add_argument("--lleaves-cache", help="lleaves' compiled model: loaded if it exists, else written")
    args = ap.parse_args()

    import lightgbm as lgb

    header, X = load_csv(args.data)
    booster = lgb.Booster(model_file=args.model)
    names = booster.feature_name()
    if header != names:
        raise SystemExit(f"CSV header does not match the model's feature names:\n  {header}\n  {names}")
    if booster.pandas_categorical:
        print("note: model has pandas_categorical; the CSV must then hold category codes", file=sys.stderr)
    n = X.shape[0]
    print(f"model={args.model} rows={n} features={X.shape[1]} trees={booster.num_trees()} "
          f"lightgbm={lgb.__version__}")

    if args.lleaves:
        try:
            import lleaves  # type: ignore
        except ImportError:
            print("lleaves not installed; skipping")
        else:
            llvm_model = lleaves.Model(model_file=args.model)
            llvm_model.compile(cache=args.lleaves_cache)
            ll = time_best(lambda: llvm_model.predict(X, n_jobs=1), n, args.runs, args.min_seconds)
            ref = booster.predict(X, num_threads=1)
            got = llvm_model.predict(X, n_jobs=1)
            print(f"lleaves max_abs_diff={float(np.max(np.abs(np.asarray(got) - ref))):.3g}")
            print(f"lleaves_ns_per_row={ll:.1f}")

    ns = time_best(lambda: booster.predict(X, num_threads=1), n, args.runs, args.min_seconds)
    print(f"ns_per_row={ns:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
