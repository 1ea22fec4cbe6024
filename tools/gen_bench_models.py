#!/usr/bin/env python3
"""Train the extra model shapes the engine speed table is measured on.

Usage (from the repository root)::

    .venv/bin/python tools/gen_bench_models.py [--out target/bench-models]

Writes ``<out>/<shape>/model.txt`` and ``<out>/<shape>/data.csv`` (1,000 held-out
rows, header = the model's feature names) for each shape below.  The data is the
committed benchmark fixture's distribution (``bench_data`` in
``tools/gen_engine_fixtures.py``): 20 features, 18 numeric with about 10% NaN,
two categorical (50 and 6 categories), a binary label.  Only the number of trees
and leaves changes, so the table shows how the engine scales with model shape.
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
from gen_engine_fixtures import COMMON_PARAMS, bench_data, fmt  # noqa: E402

# name -> (trees, leaves)
SHAPES = {
    "t100_l31": (100, 31),
    "t300_l127": (300, 127),
    "t500_l255": (500, 255),
}


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
        os.makedirs(out, exist_ok=True)
        booster.save_model(os.path.join(out, "model.txt"))
        with open(os.path.join(out, "data.csv"), "w", encoding="utf-8") as f:
            f.write(",".join(names) + "\n")
            for row in X[n_train:]:
                f.write(",".join(fmt(v) for v in row) + "\n")
        print(f"{out}: {booster.num_trees()} trees, num_leaves={leaves}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
