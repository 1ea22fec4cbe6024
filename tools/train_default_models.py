#!/usr/bin/env python3
"""Build the default model bundle ``models/gift/1/`` and its fixtures, reproducibly.

One command, from the repository root, regenerates everything:

    .venv/bin/python tools/train_default_models.py

(needs only the packages pinned in ``tools/requirements.txt``; under a minute on 2 idle cores,
a few minutes when the cores are busy).
Pass ``--dry-run`` to train and print the sanity report without writing any file.
The outputs are byte-identical from run to run (same data, same models, same fixtures).

Steps
-----
1. ``tools/gen_gift_data.py`` generates 1,000,000 synthetic KuaiLive-shaped impressions
   (seed 20260109; ~2% carry a gift; see that file's docstring for the generative model).
2. Time split: rows sorted by ``timestamp``; the earliest 90% train, the last 10% are held out.
3. LightGBM 4.6 (num_threads=2, deterministic=True, fixed seeds), both models regression (L2)
   on ``log1p(gift_amount)`` over the same 16 features, with ``user_province`` and
   ``streamer_category`` declared categorical (integer codes, no pandas categories):
     * Direct (recall)  - all training impressions, 300 trees, 31 leaves.
     * Stage2 (rerank)  - gift training impressions only, 300 trees, 15 leaves.
4. Writes, per DESIGN.md section 4 (``bundle.toml`` last, after removing any old one first):
     models/gift/1/direct.txt, stage2.txt   Booster.save_model
     models/gift/1/canary.csv               50 held-out rows (2 with each feature that has
                                            missing values missing, 5 gifts, the rest at
                                            random): the models' features, then
                                            expected_direct, expected_stage2 (predictions of the
                                            boosters re-loaded from the saved files); floats as
                                            Python repr, missing as ``nan``
     models/gift/1/bundle.toml
   and the fixtures:
     models/gift/heldout.csv.gz             the whole held-out split (100,000 rows): the 16
                                            features + ``gift_amount`` (raw coins, 0 = no gift),
                                            missing as ``nan``; gzip without name/mtime
     examples/rank_request.json             a /rank request (sparse form), 1,000 candidates
     examples/rank_request_dense.json       the same request in dense form
5. Prints a sanity report on the held-out split: gift rate, amount quantiles and the seed
   experiment's metrics (DESIGN.md section 7) for direct, stage2 and recall_rerank at
   M = 50, 100, 200, 500, 1000 with all held-out rows as one ranking.

The example request: ``context`` holds the user and context features (user_*, hour,
weekday) of one held-out gift impression; the candidates are 1,000 held-out impressions with
distinct streamers, id ``streamer-<streamer_id>``, carrying the streamer and user-streamer
features (missing = null). The dense form lists the same features in the same order. The
report ends with the example's expected top-5 (section 1 ranking, M = 200).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time

import lightgbm as lgb
import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_gift_data as gen  # noqa: E402

SEED = 20260109
N_ROWS = 1_000_000
TRAIN_FRACTION = 0.9
N_CANARY = 50
N_CANDIDATES = 1000
M_VALUES = [50, 100, 200, 500, 1000]

COMMON = {
    "objective": "regression",
    "learning_rate": 0.05,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 2,
    "deterministic": True,
    "force_col_wise": True,
    "seed": SEED,
    "verbosity": -1,
}
DIRECT_PARAMS = dict(COMMON, num_leaves=31, min_data_in_leaf=200, max_bin=255)
DIRECT_ROUNDS = 300
STAGE2_PARAMS = dict(COMMON, num_leaves=15, min_data_in_leaf=40, max_bin=255)
STAGE2_ROUNDS = 300

BUNDLE_TOML = """format_version = 1
[recall]
model = "direct.txt"
default_m = 200
max_m = 1000
[rerank]
model = "stage2.txt"
[canary]
file = "canary.csv"
tolerance = 1e-9
"""


# ---------------------------------------------------------------- metrics (DESIGN.md section 7)
def order_by(score):
    """Row indices best first: score descending, ties lower index first."""
    return np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")


def recall_rerank_order(d, s, m):
    n = len(d)
    m = min(m, n)
    by_d = order_by(d)
    top, rest = by_d[:m], by_d[m:]
    # s desc, then d desc, then index asc
    top = top[np.lexsort((top, -d[top], -s[top]))]
    return np.concatenate([top, rest])


def true_top(y, k):
    return order_by(y)[:k]


def top_capture(pi, y, pct):
    k = math.ceil(pct * len(y) / 100)
    t = set(true_top(y, k).tolist())
    return len(t.intersection(pi[:k].tolist())) / k


def ndcg(pi, y, at=100):
    disc = 1.0 / np.log2(np.arange(at) + 2)
    ideal = np.sort(y)[::-1][:at]
    idcg = float(np.sum(ideal * disc[: len(ideal)]))
    if idcg == 0:
        return 0.0
    got = y[pi[:at]]
    return float(np.sum(got * disc[: len(got)])) / idcg


def spearman(pi, y):
    from scipy.stats import rankdata

    n = len(y)
    ry = rankdata(y)  # average ranks
    pos = np.empty(n)
    pos[pi] = np.arange(n)
    rp = rankdata(-pos)
    return float(np.corrcoef(ry, rp)[0, 1])


def evaluate(d, s, y):
    rows = []
    for name, pi in [("direct", order_by(d)), ("stage2", order_by(s))]:
        rows.append(dict(name=name, m=None, top1=top_capture(pi, y, 1), top5=top_capture(pi, y, 5),
                         ndcg100=ndcg(pi, y), spearman=spearman(pi, y)))
    by_d = order_by(d)
    for m in M_VALUES:
        pi = recall_rerank_order(d, s, m)
        r = dict(name="recall_rerank", m=m)
        for pct in (1, 5):
            k = math.ceil(pct * len(y) / 100)
            r[f"recall{pct}"] = len(set(true_top(y, k).tolist()).intersection(by_d[:m].tolist())) / k
        r.update(top1=top_capture(pi, y, 1), top5=top_capture(pi, y, 5), ndcg100=ndcg(pi, y),
                 spearman=spearman(pi, y))
        rows.append(r)
    return rows


# ---------------------------------------------------------------- model summary
def model_summary(path):
    b = lgb.Booster(model_file=path)
    dump = b.dump_model()
    leaves = sum(t["num_leaves"] for t in dump["tree_info"])
    return dict(trees=b.num_trees(), leaves=leaves, bytes=os.path.getsize(path),
                features=b.feature_name())


# ---------------------------------------------------------------- writers
def fmt(v):
    v = float(v)
    return "nan" if math.isnan(v) else repr(v)


def json_num(v):
    v = float(v)
    if math.isnan(v):
        return None
    if v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def write_canary(path, held, feats, d, s, rng):
    """N_CANARY held-out rows: 2 with each feature that has missing values missing, 5 gifts,
    the rest drawn at random; written in row order."""
    picked = []
    for f in feats:
        miss = np.flatnonzero(held[f].isna().to_numpy())
        if len(miss):
            picked += list(rng.choice(miss, 2, replace=False))
    picked += list(rng.choice(np.flatnonzero(held[gen.LABEL].to_numpy() > 0), 5, replace=False))
    for i in rng.permutation(len(held)):
        if len(set(picked)) >= N_CANARY:
            break
        picked.append(i)
    idx = np.array(sorted(set(int(i) for i in picked)))
    X = held[feats].to_numpy(dtype=np.float64)
    with open(path, "w", newline="") as f:
        f.write(",".join(feats + ["expected_direct", "expected_stage2"]) + "\n")
        for i in idx:
            f.write(",".join([fmt(x) for x in X[i]] + [fmt(d[i]), fmt(s[i])]) + "\n")
    return idx


def write_heldout(path, held, feats):
    """Features + label as CSV, gzip with no file name and mtime 0 (byte-reproducible).
    Integer-valued columns are written without a decimal point; missing is ``nan``."""
    out = held[feats + [gen.LABEL]].copy()
    for c in out.columns:
        v = out[c].to_numpy(dtype=np.float64)
        ok = ~np.isnan(v)
        if np.all(v[ok] == np.round(v[ok])) and np.all(np.abs(v[ok]) < 2**53):
            out[c] = out[c].astype("Int64")
    text = out.to_csv(index=False, na_rep="nan", lineterminator="\n")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                compresslevel=9) as f:
        f.write(text.encode())


def write_examples(dirpath, held, rng):
    ctx_feats = gen.USER_FEATURES + gen.CONTEXT_FEATURES
    cand_feats = gen.STREAMER_FEATURES + gen.PAIR_FEATURES
    # the context is a held-out impression that carried a gift (a user who does gift)
    ctx_row = held.iloc[int(rng.choice(np.flatnonzero(held[gen.LABEL].to_numpy() > 0)))]
    # candidates: held-out impressions with distinct streamers, in a seeded random order
    perm = rng.permutation(len(held))
    sids = held["streamer_id"].to_numpy()[perm]
    _, first = np.unique(sids, return_index=True)
    chosen = perm[np.sort(first)][:N_CANDIDATES]
    assert len(chosen) == N_CANDIDATES
    cands = held.iloc[chosen]
    context = {f: json_num(ctx_row[f]) for f in ctx_feats}
    sparse = {"request_id": "example-1", "context": context, "candidates": [], "m": 200, "k": 50}
    dense = {"request_id": "example-1", "context": context, "feature_names": cand_feats,
             "candidates": [], "m": 200, "k": 50}
    for _, r in cands.iterrows():
        cid = f"streamer-{int(r['streamer_id'])}"
        sparse["candidates"].append({"id": cid, "features": {f: json_num(r[f]) for f in cand_feats}})
        dense["candidates"].append({"id": cid, "values": [json_num(r[f]) for f in cand_feats]})
    for name, obj in [("rank_request.json", sparse), ("rank_request_dense.json", dense)]:
        with open(os.path.join(dirpath, name), "w") as f:
            json.dump(obj, f, separators=(",", ":"))
            f.write("\n")
    # the full feature matrix in model order, for the report
    X = cands.copy()
    for f in ctx_feats:
        X[f] = ctx_row[f]
    return X, [c["id"] for c in sparse["candidates"]]


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description="Build models/gift/1 and fixtures")
    ap.add_argument("--dry-run", action="store_true", help="train and report, write nothing")
    ap.add_argument("--rows", type=int, default=N_ROWS,
                    help="impressions to generate (default 1,000,000; others change the shipped files)")
    args = ap.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t0 = time.time()
    df = gen.generate(args.rows, SEED)
    n_train = int(len(df) * TRAIN_FRACTION)
    train, held = df.iloc[:n_train], df.iloc[n_train:].reset_index(drop=True)
    feats = gen.FEATURES
    print(f"generated {len(df)} rows in {time.time() - t0:.1f}s: train {len(train)}, heldout {len(held)}")

    ytr = np.log1p(train[gen.LABEL].to_numpy())
    Xtr = train[feats].to_numpy(dtype=np.float64)
    gmask = train[gen.LABEL].to_numpy() > 0

    t1 = time.time()
    dset = lgb.Dataset(Xtr, ytr, feature_name=feats, categorical_feature=gen.CATEGORICAL_FEATURES,
                       free_raw_data=True)
    direct = lgb.train(DIRECT_PARAMS, dset, num_boost_round=DIRECT_ROUNDS)
    t2 = time.time()
    sset = lgb.Dataset(Xtr[gmask], ytr[gmask], feature_name=feats,
                       categorical_feature=gen.CATEGORICAL_FEATURES, free_raw_data=True)
    stage2 = lgb.train(STAGE2_PARAMS, sset, num_boost_round=STAGE2_ROUNDS)
    t3 = time.time()
    print(f"trained direct in {t2 - t1:.1f}s on {len(ytr)} rows, stage2 in {t3 - t2:.1f}s on {gmask.sum()} rows")

    outdir = os.path.join(root, "models", "gift", "1")
    tmpdir = None
    if args.dry_run:
        import tempfile
        tmpdir = tempfile.mkdtemp()
        outdir = tmpdir
    os.makedirs(outdir, exist_ok=True)
    bundle = os.path.join(outdir, "bundle.toml")
    if os.path.exists(bundle):
        os.remove(bundle)  # the version is incomplete until bundle.toml is written again
    direct_path = os.path.join(outdir, "direct.txt")
    stage2_path = os.path.join(outdir, "stage2.txt")
    direct.save_model(direct_path)
    stage2.save_model(stage2_path)
    # score with the boosters as saved, exactly what the service loads
    direct = lgb.Booster(model_file=direct_path)
    stage2 = lgb.Booster(model_file=stage2_path)
    Xh = held[feats].to_numpy(dtype=np.float64)
    d = direct.predict(Xh, num_threads=2)
    s = stage2.predict(Xh, num_threads=2)
    y = held[gen.LABEL].to_numpy()

    rng = np.random.default_rng(SEED + 1)
    assert direct.feature_name() == feats and stage2.feature_name() == feats
    canary_idx = write_canary(os.path.join(outdir, "canary.csv"), held, feats, d, s, rng)
    with open(bundle, "w") as f:
        f.write(BUNDLE_TOML)
    if not args.dry_run:
        write_heldout(os.path.join(root, "models", "gift", "heldout.csv.gz"), held, feats)
        exdir = os.path.join(root, "examples")
        os.makedirs(exdir, exist_ok=True)
        Xr, ids = write_examples(exdir, held, rng)
    else:
        import tempfile
        Xr, ids = write_examples(tempfile.mkdtemp(), held, rng)

    # ------------------------------------------------------------ report
    print("\n== data")
    for name, part in [("all", df), ("train", train), ("heldout", held)]:
        a = part[gen.LABEL].to_numpy()
        g = a[a > 0]
        print(f"{name:8s} rows {len(a):8d} gifts {len(g):6d} rate {len(g) / len(a):.4%} "
              f"amount p50 {np.quantile(g, .5):.0f} p90 {np.quantile(g, .9):.0f} "
              f"p99 {np.quantile(g, .99):.0f} max {g.max():.0f}")
    print("missing rates (heldout):",
          {f: round(float(held[f].isna().mean()), 4) for f in feats if held[f].isna().any()})
    print("\n== models")
    for name, p in [("direct", direct_path), ("stage2", stage2_path)]:
        sm = model_summary(p)
        print(f"{name}: trees {sm['trees']} leaves {sm['leaves']} bytes {sm['bytes']}")
        imp = lgb.Booster(model_file=p).feature_importance("gain")
        top = sorted(zip(feats, imp), key=lambda t: -t[1])[:6]
        print("   top gain:", ", ".join(f"{f}={v / imp.sum():.2f}" for f, v in top))
    print("features:", ",".join(feats))
    print(f"score correlation direct vs stage2 (heldout): {np.corrcoef(d, s)[0, 1]:.3f}")
    print(f"canary rows: {len(canary_idx)}")

    print("\n== seed metrics on the held-out split as one ranking (N = %d)" % len(y))
    print(f"{'method':16s} {'M':>5s} {'recall1':>8s} {'recall5':>8s} {'top1':>7s} {'top5':>7s} {'ndcg100':>8s} {'spearman':>8s}")
    for r in evaluate(d, s, y):
        print(f"{r['name']:16s} {str(r['m'] or '-'):>5s} "
              f"{(format(r['recall1'], '.2%') if 'recall1' in r else '-'):>8s} "
              f"{(format(r['recall5'], '.2%') if 'recall5' in r else '-'):>8s} "
              f"{r['top1']:7.2%} {r['top5']:7.2%} {r['ndcg100']:8.4f} {r['spearman']:8.4f}")

    # the example request's expected answer (DESIGN section 1), for cross-checking the service
    Xe = Xr[feats].to_numpy(dtype=np.float64)
    de, se = direct.predict(Xe), stage2.predict(Xe)
    pe = recall_rerank_order(de, se, 200)[:5]
    print("\nexample request top-5:", [(ids[i], round(float(se[i]), 6)) for i in pe])
    if tmpdir:
        import shutil
        shutil.rmtree(tmpdir)
    print(f"\ntotal {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
