#!/usr/bin/env python3
"""Train the extra model shapes the engine speed table is measured on.

Usage (from the repository root)::

    .venv/bin/python tools/gen_bench_models.py [--out target/bench-models]

Writes ``<out>/<shape>/model.txt`` and ``<out>/<shape>/data.csv`` (1,000 held-out
rows, header = the model's feature names) for each shape below.  The data is the
committed benchmark fixture's distribution (``bench_data`` in
``tools/gen_engine_fixtures.py``): 20 features, 18 numeric with about 10% NaN,
two categorical (50 and 6 categories), a binary label.  For the ``t*_l*`` shapes
only the number of trees and leaves changes, so the table shows how the engine
scales with model shape.  Two shapes differ in kind:

- ``huber_t300_l255``: a Huber regression on the same features (the label plus
  heavy-tailed noise), 255 leaves and no depth limit, so leaf-wise growth makes
  deep, unbalanced trees (the script prints their depths and fails if the deepest
  is below 20).
- ``wide_f250_t300_l63``: 250 numeric features (about 5% NaN each), a binary
  label, 300 trees of 63 leaves.

Seeds are fixed and training is single-threaded and deterministic, so the files
are reproducible; they are not committed (the fixture and the shipped models are
the committed references).

``tools/bench_engine.sh`` calls this, then times every shape with ``giftrank bench``
and ``tools/bench_lightgbm.py``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_engine_fixtures import COMMON_PARAMS, bench_data, fmt, inject, mixed_features, signal  # noqa: E402

# name -> (trees, leaves)
SHAPES = {
    "t100_l31": (100, 31),
    "t300_l127": (300, 127),
    "t500_l255": (500, 255),
}
DEEP, WIDE = "huber_t300_l255", "wide_f250_t300_l63"


def tree_depths(booster) -> list[tuple[int, float]]:
    """Per tree: the deepest leaf and the mean leaf depth (root = depth 0)."""
    out = []
    for tree in booster.dump_model()["tree_info"]:
        depths = []
        stack = [(tree["tree_structure"], 0)]
        while stack:
            node, depth = stack.pop()
            if "leaf_value" in node:
                depths.append(depth)
            else:
                stack += [(node["left_child"], depth + 1), (node["right_child"], depth + 1)]
        out.append((max(depths), sum(depths) / len(depths)))
    return out


def save(booster, out: str, names: list[str], rows: np.ndarray) -> None:
    os.makedirs(out, exist_ok=True)
    booster.save_model(os.path.join(out, "model.txt"))
    with open(os.path.join(out, "data.csv"), "w", encoding="utf-8") as f:
        f.write(",".join(names) + "\n")
        for row in rows:
            f.write(",".join(fmt(v) for v in row) + "\n")


def wide_data(rng: np.random.Generator, n: int, k: int = 250):
    """k numeric features with ~5% NaN each, a binary label from the first 40."""
    Xc = mixed_features(rng, n, k)
    X = inject(rng, Xc, range(k), 0.05, float("nan"))
    logit = 1.5 * signal(X[:, :40]) - 0.5
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
    return X, y, [f"f{j:03d}" for j in range(k)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="target/bench-models", help="output directory")
    args = ap.parse_args()

    import lightgbm as lgb

    n_train, n_rows = 20000, 1000
    X, _, y, names, categorical = bench_data(np.random.default_rng(311), n_train + n_rows)
    for shape, (trees, leaves) in SHAPES.items():
        params = dict(COMMON_PARAMS)
        params.update({"seed": 311, "objective": "binary", "num_leaves": leaves,
                       "learning_rate": 0.05, "min_data_in_leaf": 10, "feature_fraction": 0.9,
                       "bagging_fraction": 0.8, "bagging_freq": 1, "cat_smooth": 5.0,
                       "min_data_per_group": 20})
        train = lgb.Dataset(X[:n_train], y[:n_train], feature_name=names,
                            categorical_feature=categorical, free_raw_data=False)
        booster = lgb.train(params, train, num_boost_round=trees)
        out = os.path.join(args.out, shape)
        save(booster, out, names, X[n_train:])
        print(f"{out}: {booster.num_trees()} trees, num_leaves={leaves}")

    # Deep, unbalanced trees: Huber loss on a noisy continuous label, no depth limit.
    rng = np.random.default_rng(312)
    noisy = 3.0 * y + rng.standard_t(2.0, len(y))
    params = dict(COMMON_PARAMS)
    params.update({"seed": 312, "objective": "huber", "alpha": 1.0, "num_leaves": 255,
                   "max_depth": -1, "learning_rate": 0.05, "min_data_in_leaf": 5,
                   "min_sum_hessian_in_leaf": 0.0, "feature_fraction": 0.9,
                   "bagging_fraction": 0.8, "bagging_freq": 1, "cat_smooth": 5.0,
                   "min_data_per_group": 20})
    train = lgb.Dataset(X[:n_train], noisy[:n_train], feature_name=names,
                        categorical_feature=categorical, free_raw_data=False)
    booster = lgb.train(params, train, num_boost_round=300)
    depths = tree_depths(booster)
    deepest = max(d for d, _ in depths)
    mean = sum(m for _, m in depths) / len(depths)
    out = os.path.join(args.out, DEEP)
    save(booster, out, names, X[n_train:])
    print(f"{out}: {booster.num_trees()} trees, num_leaves=255, depth max {deepest}, "
          f"mean leaf depth {mean:.1f}")
    if deepest < 20:
        raise SystemExit(f"{DEEP}: the deepest leaf is at depth {deepest}, not >= 20")

    # Many features.
    Xw, yw, wide_names = wide_data(np.random.default_rng(313), n_train + n_rows)
    params = dict(COMMON_PARAMS)
    params.update({"seed": 313, "objective": "binary", "num_leaves": 63, "learning_rate": 0.05,
                   "min_data_in_leaf": 10, "feature_fraction": 0.9, "bagging_fraction": 0.8,
                   "bagging_freq": 1})
    train = lgb.Dataset(Xw[:n_train], yw[:n_train], feature_name=wide_names, free_raw_data=False)
    booster = lgb.train(params, train, num_boost_round=300)
    out = os.path.join(args.out, WIDE)
    save(booster, out, wide_names, Xw[n_train:])
    print(f"{out}: {booster.num_trees()} trees, num_leaves=63, {len(wide_names)} features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
