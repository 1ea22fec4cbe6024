#!/usr/bin/env python3
"""Build the default model bundles ``models/gift/1/`` and ``models/gift/2/`` and their
fixtures, reproducibly.

One command, from the repository root, regenerates everything:

    .venv/bin/python tools/train_default_models.py

(needs only the packages pinned in ``tools/requirements.txt``; under a minute on 2 idle cores,
a few minutes when the cores are busy: it trains five models).
Pass ``--dry-run`` to train and print the sanity report without writing any file.
The outputs are byte-identical from run to run (same data, same models, same fixtures).

Version 1 is the seed experiment as first shipped (``format_version = 1``: Direct recall, Stage2
rerank) and stays what it was, byte for byte, so ops can pin it to roll back. Version 2
(``format_version = 2``, DESIGN.md sections 1.1 and 4) adds a P(gift) classifier and four
profiles; its fusion and hybrid settings (FUSION_ALPHA, HYBRID_*) are chosen on a validation
split that no shipped model trained on, by ``tools/tune_profiles.py``; the held-out split is
only ever reported on.

Steps
-----
1. ``tools/gen_gift_data.py`` generates 1,000,000 synthetic KuaiLive-shaped impressions
   (seed 20260109; ~2% carry a gift; see that file's docstring for the generative model).
2. Time split, rows sorted by ``timestamp``:
     version 1: the earliest 90% train;
     version 2: the earliest 80% train, the next 10% are the validation split;
     both:      the last 10% are held out.
3. LightGBM 4.6 (num_threads=2, deterministic=True, fixed seeds), over the same 16 features,
   with ``user_province`` and ``streamer_category`` declared categorical (integer codes, no
   pandas categories). Direct and Stage2 are regression (L2) on ``log1p(gift_amount)``:
     * Direct (recall)     - all training impressions, 300 trees, 31 leaves.
     * Stage2 (rerank)     - gift training impressions only, 300 trees, 15 leaves.
     * gift_prob (version 2 only, second recall source) - binary (log loss) on
                             ``gift_amount > 0`` over all training impressions, 300 trees,
                             31 leaves; scores are P(gift).
   Version 1 trains Direct and Stage2 on its 90%; version 2 trains all three on its 80%.
4. Writes, per DESIGN.md section 4 (in each version ``bundle.toml`` last, after removing any
   old one first):
     models/gift/1/direct.txt, stage2.txt   Booster.save_model
     models/gift/1/canary.csv               50 held-out rows (2 with each feature that has
                                            missing values missing, 5 gifts, the rest at
                                            random): the models' features, then
                                            expected_direct, expected_stage2 (predictions of the
                                            boosters re-loaded from the saved files); floats as
                                            Python repr, missing as ``nan``
     models/gift/1/bundle.toml              format_version = 1
     models/gift/2/direct.txt, stage2.txt, gift_prob.txt
     models/gift/2/canary.csv               the same 50 held-out rows (chosen the same way, by
                                            a generator with the same seed), with
                                            expected_direct, expected_stage2, expected_gift_prob
     models/gift/2/bundle.toml              format_version = 2: models direct, stage2,
                                            gift_prob; profiles default (the seed's
                                            recall-rerank, what version 1 serves), direct
                                            (Direct-only), fusion, hybrid (see BUNDLE_V2)
   and the fixtures:
     models/gift/heldout.csv.gz             the whole held-out split (100,000 rows): the 16
                                            features + ``gift_amount`` (raw coins, 0 = no gift),
                                            missing as ``nan``; gzip without name/mtime
     models/gift/validation.csv.gz          version 2's validation split (100,000 rows), same
                                            format; what tools/tune_profiles.py tunes on
     examples/rank_request.json             a /rank request (sparse form), 1,000 candidates
     examples/rank_request_dense.json       the same request in dense form
5. Prints a sanity report on the held-out split: gift rate, amount quantiles and the seed
   experiment's metrics (DESIGN.md section 7) for version 1's direct, stage2 and
   recall_rerank at M = 50, 100, 200, 500, 1000 with all held-out rows as one ranking; then
   for version 2: gift_prob's AUC and its correlation with Direct, and the same metrics for
   each model alone and each profile (ranked by DESIGN.md section 1.1, computed here in
   numpy: a cross-check for ``giftrank eval --bundle models/gift/2``).

The example request: ``context`` holds the user and context features (user_*, hour,
weekday) of one held-out gift impression; the candidates are 1,000 held-out impressions with
distinct streamers, id ``streamer-<streamer_id>``, carrying the streamer and user-streamer
features (missing = null). The dense form lists the same features in the same order. The
report ends with the example's expected top-5 (section 1 ranking, M = 200) under version 1
and under each profile of version 2.
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

# Version 2's fusion and hybrid profiles: chosen on the validation split by
# tools/tune_profiles.py (which never reads the held-out split); `tune_profiles.py --check`
# fails when these differ from its choice. The models do not depend on them, so changing
# them and re-running this script rewrites only models/gift/2/bundle.toml.
FUSION_ALPHA = 0.85
HYBRID_DIRECT_M = 200
HYBRID_PROB_M = 200
HYBRID_ALPHA = 0.8

SEED = 20260109
N_ROWS = 1_000_000
TRAIN_FRACTION = 0.9  # version 1: earliest 90% train, the rest held out
TRAIN_FRACTION_V2 = 0.8  # version 2: earliest 80% train, up to TRAIN_FRACTION validation
DEFAULT_M = 200  # recall size of the default (and fusion) profile, as version 1's default_m
MAX_M = 1000
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
GIFT_PROB_PARAMS = dict(COMMON, objective="binary", num_leaves=31, min_data_in_leaf=200,
                        max_bin=255)
GIFT_PROB_ROUNDS = 300

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


def bundle_v2_toml():
    """Version 2's bundle.toml (DESIGN.md section 4, format_version = 2)."""
    return f"""format_version = 2
default_profile = "default"

[models]
direct = "direct.txt"
stage2 = "stage2.txt"
gift_prob = "gift_prob.txt"

# default - the seed's recall-rerank (Direct Top-{DEFAULT_M}, Stage2 rerank), exactly what version 1
# serves, so requests that name no profile rank as before. Pick it for NDCG-weighted slots
# (e.g. the Top-100 display positions): NDCG@100 well above Direct-only at the same Top-1%.
[profiles.default]
score = "direct"
recall = [{{ model = "direct", m = {DEFAULT_M} }}]
rerank = "stage2"
max_m = {MAX_M}

# direct - Direct-only order, no Stage2 call (the cheapest). Pick it for the main surface, where
# Top-1% capture is what counts: the seed's Gate-5A decision keeps Direct-only there.
[profiles.direct]
score = "direct"

# fusion - as default, but the rerank key is {FUSION_ALPHA!r} x Stage2 + {round(1 - FUSION_ALPHA, 6)!r} x Direct (each min-max
# scaled over the recalled set); alpha chosen for the best NDCG@100 on the validation split.
# Pick it instead of default for NDCG-weighted slots once it has tested better online.
[profiles.fusion]
score = "direct"
recall = [{{ model = "direct", m = {DEFAULT_M} }}]
rerank = "stage2"
alpha = {FUSION_ALPHA!r}
max_m = {MAX_M}

# hybrid - recall is the union of Direct's Top-{HYBRID_DIRECT_M} and gift_prob's Top-{HYBRID_PROB_M} (P(gift)), fused rerank
# (alpha {HYBRID_ALPHA!r}). Pick it where recall coverage of the true top gifts matters as well as NDCG@100:
# the seed's Gate-5A bottleneck was Direct's coverage. Stage2 scores up to {HYBRID_DIRECT_M + HYBRID_PROB_M} candidates.
# Quotas and alpha chosen on the validation split (tools/tune_profiles.py).
[profiles.hybrid]
score = "direct"
recall = [{{ model = "direct", m = {HYBRID_DIRECT_M} }}, {{ model = "gift_prob", m = {HYBRID_PROB_M} }}]
rerank = "stage2"
alpha = {HYBRID_ALPHA!r}
max_m = {MAX_M}

[canary]
file = "canary.csv"
tolerance = 1e-9
"""


# The profiles of bundle_v2_toml(), for the report (DESIGN.md section 1.1).
def profiles_v2():
    return {
        "default": dict(score="direct", recall=[("direct", DEFAULT_M)], rerank="stage2", alpha=1.0),
        "direct": dict(score="direct", recall=[], rerank=None, alpha=1.0),
        "fusion": dict(score="direct", recall=[("direct", DEFAULT_M)], rerank="stage2",
                       alpha=FUSION_ALPHA),
        "hybrid": dict(score="direct", recall=[("direct", HYBRID_DIRECT_M),
                                               ("gift_prob", HYBRID_PROB_M)],
                       rerank="stage2", alpha=HYBRID_ALPHA),
    }


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


def profile_order(scores, profile):
    """DESIGN.md section 1.1: the order of one profile and its recalled set R.

    ``scores`` maps a model name to its scores over all rows. Rerank key: s when alpha = 1,
    else alpha * s^ + (1 - alpha) * d^ with x^ = min-max scaled over R (0 when max = min);
    R by that key descending (ties: larger d, then lower index), then the rest by d."""
    d = scores[profile["score"]]
    n = len(d)
    by_d = order_by(d)
    in_r = np.zeros(n, dtype=bool)
    for model, m in profile["recall"]:
        in_r[order_by(scores[model])[: min(m, n)]] = True
    r = np.flatnonzero(in_r)
    if len(r) == 0:
        return by_d, r
    s, dr = scores[profile["rerank"]][r], d[r]
    alpha = profile["alpha"]
    if alpha == 1.0:
        key = s
    else:
        def scaled(x):
            lo, hi = x.min(), x.max()
            return np.zeros_like(x) if hi == lo else (x - lo) / (hi - lo)
        key = alpha * scaled(s) + (1.0 - alpha) * scaled(dr)
    top = r[np.lexsort((r, -dr, -key))]
    return np.concatenate([top, by_d[~in_r[by_d]]]), r


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


def metric_row(name, m, pi, y, recalled=None):
    """One section 7 row for ranking pi; recall{K} from the recalled rows when given."""
    r = dict(name=name, m=m)
    if recalled is not None:
        r["recall_size"] = len(recalled)
        for pct in (1, 5):
            k = math.ceil(pct * len(y) / 100)
            r[f"recall{pct}"] = len(set(true_top(y, k).tolist()).intersection(recalled.tolist())) / k
    r.update(top1=top_capture(pi, y, 1), top5=top_capture(pi, y, 5), ndcg100=ndcg(pi, y),
             spearman=spearman(pi, y))
    return r


def evaluate_v2(scores, y):
    """Version 2 on one labelled split: each model's order alone, then each profile."""
    rows = [metric_row(name, None, order_by(x), y) for name, x in scores.items()]
    for name, prof in profiles_v2().items():
        pi, r = profile_order(scores, prof)
        rows.append(metric_row(f"profile:{name}", prof["recall"][0][1] if prof["recall"] else None,
                               pi, y, r if prof["recall"] else None))
    return rows


def print_rows(rows, gate_ndcg=None):
    """The report's metric table. With gate_ndcg, adds the seed's Gate-5A (Top-1% >= 56% and
    NDCG@100 above gate_ndcg, Direct-only's)."""
    print(f"{'method':16s} {'M':>5s} {'|R|':>5s} {'recall1':>8s} {'recall5':>8s} {'top1':>7s} "
          f"{'top5':>7s} {'ndcg100':>8s} {'spearman':>8s}" + ("  gate-5A" if gate_ndcg is not None else ""))
    for r in rows:
        line = (f"{r['name']:16s} {str(r['m'] or '-'):>5s} {str(r.get('recall_size', '-')):>5s} "
                f"{(format(r['recall1'], '.2%') if 'recall1' in r else '-'):>8s} "
                f"{(format(r['recall5'], '.2%') if 'recall5' in r else '-'):>8s} "
                f"{r['top1']:7.2%} {r['top5']:7.2%} {r['ndcg100']:8.4f} {r['spearman']:8.4f}")
        if gate_ndcg is not None:
            ok = r["top1"] >= 0.56 and r["ndcg100"] > gate_ndcg
            line += "  PASS" if ok else "  FAIL"
        print(line)


# ---------------------------------------------------------------- model summary
def model_summary(path):
    b = lgb.Booster(model_file=path)
    dump = b.dump_model()
    leaves = sum(t["num_leaves"] for t in dump["tree_info"])
    return dict(trees=b.num_trees(), leaves=leaves, bytes=os.path.getsize(path),
                features=b.feature_name())


def print_model(name, path, feats):
    sm = model_summary(path)
    print(f"{name}: trees {sm['trees']} leaves {sm['leaves']} bytes {sm['bytes']}")
    imp = lgb.Booster(model_file=path).feature_importance("gain")
    top = sorted(zip(feats, imp), key=lambda t: -t[1])[:6]
    print("   top gain:", ", ".join(f"{f}={v / imp.sum():.2f}" for f, v in top))


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


def write_canary(path, held, feats, expected, rng):
    """N_CANARY held-out rows: 2 with each feature that has missing values missing, 5 gifts,
    the rest drawn at random; written in row order. ``expected`` is a list of (model name,
    scores over the held-out rows): one column expected_<name> each."""
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
        f.write(",".join(feats + [f"expected_{name}" for name, _ in expected]) + "\n")
        for i in idx:
            f.write(",".join([fmt(x) for x in X[i]] + [fmt(e[i]) for _, e in expected]) + "\n")
    return idx


def write_split(path, held, feats):
    """One labelled split (held-out, validation): features + label as CSV, gzip with no file
    name and mtime 0 (byte-reproducible). Integer-valued columns are written without a decimal
    point; missing is ``nan``."""
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


# ---------------------------------------------------------------- training
def train_models(part, feats, with_gift_prob):
    """Direct and Stage2 (and gift_prob) on one training split; returns ({name: booster}, log)."""
    amount = part[gen.LABEL].to_numpy()
    ytr = np.log1p(amount)
    Xtr = part[feats].to_numpy(dtype=np.float64)
    gmask = amount > 0
    models, log = {}, []

    t = time.time()
    dset = lgb.Dataset(Xtr, ytr, feature_name=feats, categorical_feature=gen.CATEGORICAL_FEATURES,
                       free_raw_data=True)
    models["direct"] = lgb.train(DIRECT_PARAMS, dset, num_boost_round=DIRECT_ROUNDS)
    log.append(f"direct in {time.time() - t:.1f}s on {len(ytr)} rows")
    t = time.time()
    sset = lgb.Dataset(Xtr[gmask], ytr[gmask], feature_name=feats,
                       categorical_feature=gen.CATEGORICAL_FEATURES, free_raw_data=True)
    models["stage2"] = lgb.train(STAGE2_PARAMS, sset, num_boost_round=STAGE2_ROUNDS)
    log.append(f"stage2 in {time.time() - t:.1f}s on {gmask.sum()} rows")
    if with_gift_prob:
        t = time.time()
        pset = lgb.Dataset(Xtr, gmask.astype(np.float64), feature_name=feats,
                           categorical_feature=gen.CATEGORICAL_FEATURES, free_raw_data=True)
        models["gift_prob"] = lgb.train(GIFT_PROB_PARAMS, pset, num_boost_round=GIFT_PROB_ROUNDS)
        log.append(f"gift_prob in {time.time() - t:.1f}s on {len(ytr)} rows")
    return models, ", ".join(log)


def write_version(outdir, models, held, feats, bundle_text):
    """Saves one version directory (bundle.toml removed first, written last) and returns the
    saved files and the held-out scores of the boosters re-loaded from them (exactly what the
    service loads). The canary rows come from a generator seeded SEED + 1 that is also returned:
    version 1 goes on drawing the example request from it."""
    os.makedirs(outdir, exist_ok=True)
    bundle = os.path.join(outdir, "bundle.toml")
    if os.path.exists(bundle):
        os.remove(bundle)  # the version is incomplete until bundle.toml is written again
    paths, scores = {}, {}
    Xh = held[feats].to_numpy(dtype=np.float64)
    for name, booster in models.items():
        paths[name] = os.path.join(outdir, f"{name}.txt")
        booster.save_model(paths[name])
        loaded = lgb.Booster(model_file=paths[name])
        assert loaded.feature_name() == feats
        scores[name] = loaded.predict(Xh, num_threads=2)
    rng = np.random.default_rng(SEED + 1)
    canary_idx = write_canary(os.path.join(outdir, "canary.csv"), held, feats, list(scores.items()), rng)
    with open(bundle, "w") as f:
        f.write(bundle_text)
    return paths, scores, canary_idx, rng


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description="Build models/gift/1, models/gift/2 and fixtures")
    ap.add_argument("--dry-run", action="store_true", help="train and report, write nothing")
    ap.add_argument("--rows", type=int, default=N_ROWS,
                    help="impressions to generate (default 1,000,000; others change the shipped files)")
    args = ap.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t0 = time.time()
    df = gen.generate(args.rows, SEED)
    n_train = int(len(df) * TRAIN_FRACTION)
    n_train2 = int(len(df) * TRAIN_FRACTION_V2)
    train, held = df.iloc[:n_train], df.iloc[n_train:].reset_index(drop=True)
    train2, valid = df.iloc[:n_train2], df.iloc[n_train2:n_train].reset_index(drop=True)
    feats = gen.FEATURES
    print(f"generated {len(df)} rows in {time.time() - t0:.1f}s: version 1 train {len(train)}; "
          f"version 2 train {len(train2)}, validation {len(valid)}; heldout {len(held)}")

    models1, log1 = train_models(train, feats, with_gift_prob=False)
    print(f"version 1 trained {log1}")
    models2, log2 = train_models(train2, feats, with_gift_prob=True)
    print(f"version 2 trained {log2}")

    out = os.path.join(root, "models", "gift")
    exdir = os.path.join(root, "examples")
    tmpdir = None
    if args.dry_run:
        import tempfile
        tmpdir = tempfile.mkdtemp()
        out = exdir = tmpdir
    paths1, scores1, canary1, rng = write_version(os.path.join(out, "1"), models1, held, feats,
                                                  BUNDLE_TOML)
    paths2, scores2, canary2, _ = write_version(os.path.join(out, "2"), models2, held, feats,
                                                bundle_v2_toml())
    write_split(os.path.join(out, "heldout.csv.gz"), held, feats)
    write_split(os.path.join(out, "validation.csv.gz"), valid, feats)
    os.makedirs(exdir, exist_ok=True)
    Xr, ids = write_examples(exdir, held, rng)
    written = {name: os.path.getsize(os.path.join(out, name))
               for name in ("heldout.csv.gz", "validation.csv.gz")}
    y = held[gen.LABEL].to_numpy()

    # ------------------------------------------------------------ report
    print("\n== data")
    for name, part in [("all", df), ("train v1", train), ("train v2", train2), ("valid", valid),
                       ("heldout", held)]:
        a = part[gen.LABEL].to_numpy()
        g = a[a > 0]
        print(f"{name:8s} rows {len(a):8d} gifts {len(g):6d} rate {len(g) / len(a):.4%} "
              f"amount p50 {np.quantile(g, .5):.0f} p90 {np.quantile(g, .9):.0f} "
              f"p99 {np.quantile(g, .99):.0f} max {g.max():.0f}")
    print("missing rates (heldout):",
          {f: round(float(held[f].isna().mean()), 4) for f in feats if held[f].isna().any()})
    print("files:", ", ".join(f"{k} {v} bytes" for k, v in written.items()))
    print("features:", ",".join(feats))

    print("\n== version 1 models (earliest 90%)")
    for name, p in paths1.items():
        print_model(name, p, feats)
    d, s = scores1["direct"], scores1["stage2"]
    print(f"score correlation direct vs stage2 (heldout): {np.corrcoef(d, s)[0, 1]:.3f}")
    print(f"canary rows: {len(canary1)}")

    print("\n== version 1: seed metrics on the held-out split as one ranking (N = %d)" % len(y))
    print_rows(evaluate(d, s, y))

    print("\n== version 2 models (earliest 80%)")
    for name, p in paths2.items():
        print_model(name, p, feats)
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    d2, s2, p2 = scores2["direct"], scores2["stage2"], scores2["gift_prob"]
    print(f"gift_prob on heldout: AUC {roc_auc_score(y > 0, p2):.4f} "
          f"(direct's AUC {roc_auc_score(y > 0, d2):.4f}); mean P(gift) {p2.mean():.4%} "
          f"vs gift rate {(y > 0).mean():.4%}")
    print(f"score correlation (heldout): gift_prob vs direct pearson {np.corrcoef(p2, d2)[0, 1]:.3f} "
          f"spearman {spearmanr(p2, d2).statistic:.3f}; direct vs stage2 pearson "
          f"{np.corrcoef(d2, s2)[0, 1]:.3f}")
    top_d, top_p = set(order_by(d2)[:DEFAULT_M].tolist()), set(order_by(p2)[:DEFAULT_M].tolist())
    print(f"Top-{DEFAULT_M} overlap direct vs gift_prob (heldout): {len(top_d & top_p)}")
    print(f"canary rows: {len(canary2)} (the same rows as version 1: {np.array_equal(canary1, canary2)})")
    print(f"profiles: FUSION_ALPHA {FUSION_ALPHA}, hybrid direct m {HYBRID_DIRECT_M} + gift_prob m "
          f"{HYBRID_PROB_M}, alpha {HYBRID_ALPHA}")

    print("\n== version 2 on the held-out split as one ranking (N = %d; report only, tuned on "
          "validation)" % len(y))
    rows2 = evaluate_v2(scores2, y)
    gate = next(r["ndcg100"] for r in rows2 if r["name"] == "profile:direct")
    print_rows(rows2, gate_ndcg=gate)
    print("gate-5A: Top-1% >= 56% and NDCG@100 above profile:direct's")

    # the example request's expected answer (DESIGN sections 1, 1.1), for cross-checking the
    # service: the request's "m" replaces the m of a profile's first recall source
    Xe = Xr[feats].to_numpy(dtype=np.float64)
    de = lgb.Booster(model_file=paths1["direct"]).predict(Xe)
    se = lgb.Booster(model_file=paths1["stage2"]).predict(Xe)
    pe = recall_rerank_order(de, se, 200)[:5]
    print("\nexample request top-5, version 1:", [(ids[i], round(float(se[i]), 6)) for i in pe])
    with open(os.path.join(exdir, "rank_request.json")) as f:
        req_m = json.load(f)["m"]
    ex = {name: lgb.Booster(model_file=p).predict(Xe) for name, p in paths2.items()}
    for name, prof in profiles_v2().items():
        if prof["recall"]:
            prof["recall"][0] = (prof["recall"][0][0], req_m)
            note = f"m = {req_m}"
        else:
            note = "no m: a request m is a 400 for it"
        pe, _ = profile_order(ex, prof)
        print(f"example request top-5, version 2, profile {name} ({note}):",
              [ids[i] for i in pe[:5]])
    if tmpdir:
        import shutil
        shutil.rmtree(tmpdir)
    print(f"\ntotal {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
