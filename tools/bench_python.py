#!/usr/bin/env python3
"""Time giftrank's Python `Model.predict` against LightGBM's `Booster.predict` and
lleaves on the same rows, one and two threads, in one sitting.

Usage (from the repository root, with giftrank installed in the running Python, e.g. the
venv `python/ci.sh` makes, and lleaves in its own venv, see tools/requirements-lleaves.txt):

    target/python-venv/bin/python tools/bench_python.py [--rows 100000] [--rounds 5]
        [--model models/gift/2/direct.txt] [--lleaves-python target/lleaves-venv/bin/python]

The rows are the first `--rows` held-out rows (models/gift/heldout.csv.gz), saved once as
a float64 matrix in model order (target/bench-python/rows.npy). Every measurement runs in
its own process (`--one ENGINE THREADS`): load the model, score once to warm up, then the
best of 3 timed calls on all rows. The engines are interleaved round by round (giftrank,
LightGBM, lleaves at 1 and 2 threads each), and the median over rounds is reported.
Before timing, giftrank's scores are checked against LightGBM's (relative 1e-9).

With `--spark`, instead: the Spark example (examples/spark/rank_eval.py, local[2]) against
`giftrank eval --group` on the same Parquet file (all held-out rows, in `--groups`
impressions scattered over the file), rows per second of each, the Spark job's own clock
(read, rank in mapInPandas, aggregate; not the JVM's start) against the CLI's wall time.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "target" / "bench-python"


def rows_file(model_path: pathlib.Path, n: int) -> pathlib.Path:
    import pandas as pd

    path = OUT / f"rows_{n}.npy"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        names = open(model_path).read().split("feature_names=", 1)[1].split("\n", 1)[0].split()
        df = pd.read_csv(ROOT / "models" / "gift" / "heldout.csv.gz", nrows=n,
                         float_precision="round_trip")
        np.save(path, np.ascontiguousarray(df[names].to_numpy(dtype=np.float64)))
    return path


def predictor(engine: str, model: str, threads: int):
    if engine == "giftrank":
        import giftrank

        m = giftrank.Model(model)
        return lambda X: m.predict(X, n_jobs=threads)
    if engine == "lightgbm":
        import lightgbm

        b = lightgbm.Booster(model_file=model)
        return lambda X: b.predict(X, num_threads=threads)
    if engine == "lleaves":
        import lleaves

        m = lleaves.Model(model_file=model)
        m.compile(cache=str(OUT / (pathlib.Path(model).stem + ".lleaves.o")))
        return lambda X: m.predict(X, n_jobs=threads)
    raise SystemExit(f"unknown engine {engine}")


def one(engine: str, threads: int, model: str, rows: str) -> None:
    X = np.load(rows)
    predict = predictor(engine, model, threads)
    predict(X)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        predict(X)
        best = min(best, time.perf_counter() - t0)
    print(f"seconds={best!r}")


def measure(python: str, engine: str, threads: int, model: str, rows: pathlib.Path) -> float:
    out = subprocess.run(
        [python, __file__, "--one", engine, str(threads), "--model", model, "--rows-file", str(rows)],
        check=True, capture_output=True, text=True,
    ).stdout
    return float(out.strip().splitlines()[-1].split("=", 1)[1])


def spark(groups: int, rounds: int) -> None:
    import json
    import pandas as pd

    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"impressions_{groups}.parquet"
    df = pd.read_csv(ROOT / "models" / "gift" / "heldout.csv.gz", float_precision="round_trip")
    rng = np.random.default_rng(18)
    df["impression_id"] = [f"imp-{g}" for g in rng.integers(0, groups, size=len(df))]
    df.to_parquet(data, index=False)
    bundle = ROOT / "models" / "gift" / "2"
    binary = os.environ.get("GIFTRANK_BIN", str(ROOT / "target" / "release" / "giftrank"))
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    spark_rates, cli_rates = [], []
    for _ in range(rounds):
        out = OUT / "spark.json"
        subprocess.run([sys.executable, str(ROOT / "examples" / "spark" / "rank_eval.py"),
                        "--master", "local[2]", "--bundle", str(bundle), "--data", str(data),
                        "--label", "gift_amount", "--group", "impression_id", "--json", str(out)],
                       check=True, env=env, capture_output=True)
        spark_rates.append(json.loads(out.read_text())["rows_per_second"])
        t0 = time.perf_counter()
        subprocess.run([binary, "eval", "--bundle", str(bundle), "--data", str(data),
                        "--label", "gift_amount", "--group", "impression_id",
                        "--json", str(OUT / "cli.json")], check=True, capture_output=True)
        cli_rates.append(len(df) / (time.perf_counter() - t0))
    print(f"{len(df):,} rows, {groups} groups, local[2], median of {rounds}:")
    print(f"| Spark job (rank every profile + grouped metrics) | {statistics.median(spark_rates):,.0f} rows/s |")
    print(f"| giftrank eval --group (every method row) | {statistics.median(cli_rates):,.0f} rows/s |")


def main() -> None:
    parser = argparse.ArgumentParser(description="giftrank vs LightGBM vs lleaves, Python predict")
    parser.add_argument("--model", default=str(ROOT / "models" / "gift" / "2" / "direct.txt"))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lleaves-python", default=str(ROOT / "target" / "lleaves-venv" / "bin" / "python"))
    parser.add_argument("--spark", action="store_true", help="time the Spark example instead")
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--one", nargs=2, metavar=("ENGINE", "THREADS"), help=argparse.SUPPRESS)
    parser.add_argument("--rows-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one[0], int(args.one[1]), args.model, args.rows_file)
        return

    if args.spark:
        spark(args.groups, args.rounds)
        return
    rows = rows_file(pathlib.Path(args.model), args.rows)
    X = np.load(rows)
    import giftrank
    import lightgbm

    ours = giftrank.Model(args.model).predict(X)
    theirs = lightgbm.Booster(model_file=args.model).predict(X)
    worst = float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300)))
    assert worst <= 1e-9, f"giftrank differs from LightGBM by {worst:.3g} (relative)"
    print(f"{len(X):,} rows of {args.model}: giftrank equals LightGBM (max relative difference {worst:.2g})")

    engines = [("giftrank", sys.executable), ("lightgbm", sys.executable)]
    if os.path.exists(args.lleaves_python):
        engines.append(("lleaves", args.lleaves_python))
    else:
        print(f"no lleaves: {args.lleaves_python} does not exist")
    times = {(e, t): [] for e, _ in engines for t in (1, 2)}
    for r in range(args.rounds):
        for threads in (1, 2):
            for engine, python in engines:
                times[(engine, threads)].append(measure(python, engine, threads, args.model, rows))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    base = statistics.median(times[("lightgbm", 1)])
    print("\n| engine | threads | ms per call (median) | ns per row | rows per second | LightGBM 1 thread / this |")
    print("|---|---:|---:|---:|---:|---:|")
    for (engine, threads), values in times.items():
        t = statistics.median(values)
        print(f"| {engine} | {threads} | {t * 1e3:.1f} | {t / len(X) * 1e9:.0f} | "
              f"{len(X) / t:,.0f} | {base / t:.1f}× |")


if __name__ == "__main__":
    main()
