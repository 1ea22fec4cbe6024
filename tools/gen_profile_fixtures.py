#!/usr/bin/env python3
"""Independent reference for ranking profiles (DESIGN.md 1.1) and their eval rows (7).

Writes the fixtures in ``tests/fixtures/profiles/``: a ``format_version = 2`` bundle, /rank
cases with their expected responses, and the ``profile:<name>`` and ``fusion`` rows of
``giftrank eval`` (section 7) on a labelled data set.

Nothing here is ported from the Rust code. Scores come from LightGBM itself
(``Booster.predict`` of boosters re-loaded from the saved model files), orders from
``numpy.lexsort`` on explicit keys, and the eval metrics from the functions of
``tools/eval_reference.py`` (imported, not rewritten). The ranking of one request, written
out (section 1.1):

* ``d`` = the profile's score model on all N candidates. Each recall source scores all N
  with its model (the score model's source reuses ``d``) and contributes its Top-m
  (``lexsort((index, -score))[:m]``); a request's ``"m"`` replaces the first source's m.
  R = the union, M = |R|.
* the rerank model scores the candidates in R (``s``). Rerank key: ``s`` when alpha == 1,
  else ``alpha * sh + (1 - alpha) * dh`` with ``xh = (x - min_R x) / (max_R x - min_R x)``
  (0.0 when max == min), computed per element with Python floats (IEEE binary64, one
  rounding per operation, no FMA) in exactly that order: the two normalisations, then
  ``alpha * sh``, then ``(1 - alpha) * dh``, then the sum.
* R by ``lexsort((index, -d, -key))``, then the rest by ``lexsort((index, -d))``; the first
  k (default all N). Items: ``score`` = key for i in R else ``d``; ``direct_score`` = ``d``;
  ``stage2_score`` = ``s`` for i in R else null; ``reranked`` = i in R.
* feature values are looked up by name: the candidate's own ``features`` (or its dense
  ``values`` under ``feature_names``) first -- an own ``null`` is missing and is *not*
  replaced by ``context`` -- then ``context``; absent -> NaN.

Files written (all deterministic: fixed seeds, ``num_threads=1``, ``deterministic=True``,
``force_col_wise=True``; every number with Python's float repr / ``json.dumps`` so it parses
back to the same f64)::

    bundle/direct.txt      LightGBM regression on f0,f1,f2,f3 (20 trees, <= 15 leaves)
    bundle/stage2.txt      LightGBM regression on f3,f1,f4, trained on the gift rows only
                           with another target, so its order differs from direct's
    bundle/gift_prob.txt   LightGBM binary (P(gift)) on f5,f0,f2
    bundle/canary.csv      f0..f5 + expected_direct, expected_stage2, expected_gift_prob
    bundle/bundle.toml     format_version = 2, the five profiles (written last)
    requests.json          /rank cases: body + expected response (profile, m, items)
    data.csv               labelled rows (f0..f5, gift_amount) for ``giftrank eval``
    data_expected.json     ``giftrank eval --json`` output for data.csv, see EVAL_COMMAND
    README.md              what these files are

The script checks what each case claims (the overlap of the hybrid sources, the ties in
the named key, ...) and stops if a claim does not hold. Run from the repository root with
the pinned versions of ``tools/requirements.txt``::

    python3 tools/gen_profile_fixtures.py            # (re)writes tests/fixtures/profiles/
    python3 tools/gen_profile_fixtures.py --out DIR  # writes elsewhere, e.g. to diff
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_reference import evaluate, ranking_metrics, top_k_size  # noqa: E402

FEATURES = ["f0", "f1", "f2", "f3", "f4", "f5"]
INTEGER_FEATURES = {"f0", "f1"}  # written as JSON integers in request bodies

# name -> (file, feature list in model column order, objective, rounds, leaves)
MODELS = {
    "direct": ("direct.txt", ["f0", "f1", "f2", "f3"], "regression", 20, 15),
    "stage2": ("stage2.txt", ["f3", "f1", "f4"], "regression", 15, 7),
    "gift_prob": ("gift_prob.txt", ["f5", "f0", "f2"], "binary", 25, 7),
}

# Declaration order matters: eval writes one profile row per profile in this order.
PROFILES = {
    "default": {"score": "direct", "recall": [("direct", 5)], "rerank": "stage2",
                "alpha": None, "max_m": 50},
    "direct": {"score": "direct", "recall": [], "rerank": None, "alpha": None, "max_m": None},
    "fusion": {"score": "direct", "recall": [("direct", 6)], "rerank": "stage2",
               "alpha": 0.25, "max_m": 50},
    "hybrid": {"score": "direct", "recall": [("direct", 4), ("gift_prob", 4)],
               "rerank": "stage2", "alpha": 0.7, "max_m": 50},
    "prob_first": {"score": "gift_prob", "recall": [("gift_prob", 3), ("direct", 3)],
                   "rerank": "stage2", "alpha": None, "max_m": 50},
}
DEFAULT_PROFILE = "default"

EVAL_M = [5, 50, 200]
EVAL_ALPHA = [0.0, 0.5, 1.0]
EVAL_ROWS = 1523  # k1 = 16, k5 = 77
EVAL_COMMAND = ("giftrank eval --bundle tests/fixtures/profiles/bundle "
                "--data tests/fixtures/profiles/data.csv --label gift_amount "
                "--m 5,50,200 --alpha 0,0.5,1 --json FILE")

PARAMS = {
    "learning_rate": 0.2,
    "min_data_in_leaf": 10,
    "num_threads": 1,
    "deterministic": True,
    "force_col_wise": True,
    "seed": 11,
    "verbose": -1,
}


# ---------------------------------------------------------------------------------------
# Synthetic data


def draw_rows(rng: np.random.Generator, n: int) -> tuple[dict, np.ndarray]:
    """Features f0..f5 (rounded, so values repeat and print short) and a gift amount."""
    x = {
        "f0": rng.integers(1, 51, n).astype(np.float64),          # user level
        "f1": rng.integers(0, 2, n).astype(np.float64),           # follows
        "f2": np.round(rng.exponential(20.0, n), 1),              # watch minutes
        "f3": np.round(rng.beta(1.0, 20.0, n), 3),                # streamer gift rate
        "f4": np.round(rng.normal(0.0, 1.0, n), 2),               # wealth
        "f5": np.round(rng.random(n), 2),                         # affinity
    }
    f2 = np.nan_to_num(x["f2"])
    logit = (-6.0 + 1.2 * x["f1"] + 0.02 * f2 + 25.0 * x["f3"] + 2.0 * (x["f5"] - 0.5)
             + 0.015 * x["f0"])
    gift = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    amount = np.maximum(1.0, np.round(np.exp(0.8 + 1.1 * x["f4"] + 0.02 * x["f0"]
                                             + rng.normal(0.0, 0.6, n))))
    y = np.where(gift, amount, 0.0)
    # Missing cells, as in real logs: f2, f4 and f5 are missing in training too, so the
    # models learn a default direction for NaN; f0, f1 and f3 never are (NaN -> 0.0 rule).
    for name, rate in (("f2", 0.10), ("f4", 0.08), ("f5", 0.12)):
        x[name][rng.random(n) < rate] = np.nan
    return x, y


def train_bundle(rng: np.random.Generator, bundle: Path) -> None:
    x, y = draw_rows(rng, 4000)
    gifts = y > 0
    targets = {
        "direct": (np.log1p(y), slice(None)),
        "stage2": (np.log(y[gifts]), gifts),      # amount given a gift: its own order
        "gift_prob": (gifts.astype(np.float64), slice(None)),
    }
    for name, (file, features, objective, rounds, leaves) in MODELS.items():
        label, rows = targets[name]
        matrix = np.column_stack([x[f][rows] for f in features])
        params = {**PARAMS, "objective": objective, "num_leaves": leaves}
        booster = lgb.train(params, lgb.Dataset(matrix, label, feature_name=features),
                            num_boost_round=rounds)
        booster.save_model(str(bundle / file))


# ---------------------------------------------------------------------------------------
# The models, re-loaded from their files


class Models:
    def __init__(self, bundle: Path):
        self.boosters = {}
        for name, (file, features, objective, rounds, leaves) in MODELS.items():
            booster = lgb.Booster(model_file=str(bundle / file))
            assert booster.feature_name() == features, (name, booster.feature_name())
            assert booster.num_trees() == rounds, name
            tree_info = booster.dump_model()["tree_info"]
            assert all(t["num_leaves"] <= 15 for t in tree_info), name
            missing = [n for t in tree_info for n in splits(t["tree_structure"])
                       if n["missing_type"] == "NaN"]
            assert missing and {n["default_left"] for n in missing} == {True, False}, \
                f"{name}: no real missing-value handling"
            self.boosters[name] = booster

    def predict(self, name: str, x: dict, rows=None) -> np.ndarray:
        """Booster.predict on the columns the model names, for rows (default all)."""
        booster = self.boosters[name]
        matrix = np.column_stack([np.asarray(x[f], dtype=np.float64)
                                  for f in booster.feature_name()])
        if rows is not None:
            matrix = matrix[rows]
        if len(matrix) == 0:
            return np.empty(0)
        return booster.predict(matrix)


def splits(node: dict):
    if "split_index" in node:
        yield node
        yield from splits(node["left_child"])
        yield from splits(node["right_child"])


# ---------------------------------------------------------------------------------------
# Section 1.1, independently


def fused_keys(s: list[float], d: list[float], alpha: float) -> list[float]:
    if alpha == 1.0:
        return list(s)

    def normalised(x: list[float]) -> list[float]:
        lo, hi = min(x), max(x)
        if hi == lo:
            return [0.0] * len(x)
        return [(v - lo) / (hi - lo) for v in x]

    sh, dh = normalised(s), normalised(d)
    return [alpha * a + (1.0 - alpha) * b for a, b in zip(sh, dh)]


def rank(profile: dict, scores_of, n: int, m: int | None = None,
         alpha: float | None = None) -> dict:
    """scores_of(model, rows) -> that model's scores of those candidates."""
    index = np.arange(n)
    d = scores_of(profile["score"], index)
    sources = [list(source) for source in profile["recall"]]
    if m is not None:
        assert sources, "a request m needs recall"
        sources[0][1] = m
    in_r = np.zeros(n, dtype=bool)
    tops = []
    for model, source_m in sources:
        scores = d if model == profile["score"] else scores_of(model, index)
        top = np.lexsort((index, -scores))[: min(source_m, n)]
        tops.append(set(top.tolist()))
        in_r[top] = True
    r = index[in_r]
    s = np.full(n, np.nan)
    key = np.full(n, np.nan)
    if alpha is None:
        alpha = 1.0 if profile["alpha"] is None else profile["alpha"]
    if len(r):
        s[r] = scores_of(profile["rerank"], r)
        key[r] = fused_keys([float(v) for v in s[r]], [float(v) for v in d[r]], alpha)
        r_order = r[np.lexsort((r, -d[r], -key[r]))]
    else:
        r_order = r
    rest = index[~in_r]
    order = np.concatenate([r_order, rest[np.lexsort((rest, -d[rest]))]]).astype(np.int64)
    return {"order": order, "d": d, "s": s, "key": key, "in_r": in_r, "tops": tops,
            "r": set(r.tolist()), "alpha": alpha}


def resolve(body: dict) -> dict:
    """Feature columns f0..f5 of a request: own value, else context, else NaN."""
    candidates = body["candidates"]
    context = body.get("context", {})
    x = {f: np.full(len(candidates), np.nan) for f in FEATURES}
    for i, candidate in enumerate(candidates):
        if "values" in candidate:
            own = dict(zip(body["feature_names"], candidate["values"], strict=True))
        else:
            own = candidate["features"]
        for f in FEATURES:
            value = own[f] if f in own else context.get(f)
            x[f][i] = np.nan if value is None else float(value)
    return x


def rank_request(models: Models, body: dict) -> tuple[dict, dict]:
    name = body.get("profile", DEFAULT_PROFILE)
    x = resolve(body)
    n = len(body["candidates"])
    result = rank(PROFILES[name], lambda model, rows: models.predict(model, x, rows), n,
                  m=body.get("m"), alpha=body.get("alpha"))
    k = body.get("k", n)
    items = []
    for i in result["order"][:k].tolist():
        reranked = bool(result["in_r"][i])
        items.append({
            "id": body["candidates"][i]["id"],
            "score": float(result["key"][i] if reranked else result["d"][i]),
            "direct_score": float(result["d"][i]),
            "stage2_score": float(result["s"][i]) if reranked else None,
            "reranked": reranked,
        })
    return {"profile": name, "m": len(result["r"]), "items": items}, result


# ---------------------------------------------------------------------------------------
# Request cases


class Cases:
    def __init__(self, models: Models, rng: np.random.Generator):
        self.models = models
        self.rng = rng
        x, _ = draw_rows(rng, 900)
        # A few more gaps in the pool, also in f0, f1 and f3 (never missing in training).
        for name in ("f0", "f1", "f3"):
            x[name][rng.random(900) < 0.03] = np.nan
        self.pool = [{f: float(x[f][i]) for f in FEATURES} for i in range(900)]
        self.pred = {name: models.predict(name, x) for name in MODELS}
        self.cases = []
        self.descriptions = {}

    # -- building bodies ------------------------------------------------------------

    def ids(self, n: int) -> list[str]:
        """Unique ids in no relation to the input order."""
        return [f"st-{v}" for v in self.rng.choice(9000, size=n, replace=False) + 1000]

    def number(self, name: str, value: float):
        if name in INTEGER_FEATURES and value.is_integer():
            return int(value)
        return value

    def sparse(self, rows: list[dict], skip=(), shuffle=True) -> list[dict]:
        """Sparse candidates; a missing value is null or simply absent (coin flip)."""
        candidates = []
        for row, cid in zip(rows, self.ids(len(rows))):
            names = list(FEATURES)
            if shuffle:
                names = [names[j] for j in self.rng.permutation(len(names))]
            features = {}
            for name in names:
                if name in skip:
                    continue
                value = row[name]
                if math.isnan(value):
                    if self.rng.random() < 0.5:
                        features[name] = None
                else:
                    features[name] = self.number(name, value)
            candidates.append({"id": cid, "features": features})
        return candidates

    def pick(self, n: int, mask=None) -> list[int]:
        allowed = np.arange(len(self.pool)) if mask is None else np.flatnonzero(mask)
        return [int(v) for v in self.rng.choice(allowed, size=n, replace=False)]

    def scores_of(self, pool_rows: list[int]):
        sel = np.asarray(pool_rows, dtype=np.int64)
        return lambda model, rows: self.pred[model][sel][rows]

    def search(self, build, check, tries=20000):
        """build() -> candidate pool rows; the first for which check(rows) holds."""
        for _ in range(tries):
            rows = build()
            if check(rows):
                return rows
        raise SystemExit("search failed: no candidate set has the wanted property")

    def row_result(self, profile: str, pool_rows: list[int], **kw) -> dict:
        return rank(PROFILES[profile], self.scores_of(pool_rows), len(pool_rows), **kw)

    def add(self, name: str, description: str, body: dict, check=None) -> dict:
        assert all(key in {"request_id", "context", "feature_names", "candidates", "m", "k",
                           "profile", "alpha"} for key in body), name
        ids = [c["id"] for c in body["candidates"]]
        assert len(set(ids)) == len(ids), name
        assert 0 <= len(ids) <= 40, name
        expected, result = rank_request(self.models, body)
        if check is not None:
            assert check(result), f"{name}: the case does not show what it claims"
        self.cases.append({"name": name, "body": body, "expected": expected})
        self.descriptions[name] = description
        return result

    def add_pool(self, name: str, description: str, pool_rows: list[int], extra=None,
                 check=None, **encode) -> dict:
        """A sparse case from pool rows; its scores must be the pool's (resolver check)."""
        body = {}
        if extra and "request_id" in extra:
            body["request_id"] = extra["request_id"]
        if extra and "profile" in extra:
            body["profile"] = extra["profile"]
        body["candidates"] = self.sparse([self.pool[i] for i in pool_rows], **encode)
        for key in ("m", "k", "alpha"):
            if extra and key in extra:
                body[key] = extra[key]
        result = self.add(name, description, body, check)
        score_model = PROFILES[body.get("profile", DEFAULT_PROFILE)]["score"]
        assert np.array_equal(result["d"], self.pred[score_model][pool_rows]), name
        return result

    # -- the cases ------------------------------------------------------------------

    def build(self) -> list[dict]:
        rng = self.rng
        d_pool, g_pool = self.pred["direct"], self.pred["gift_prob"]

        rows = self.pick(12)
        body = {"request_id": "default-implicit", "candidates": self.sparse(
            [self.pool[i] for i in rows])}
        body["candidates"][3]["features"]["x_unused"] = 3.5  # a feature no model uses
        self.add("default_implicit", "no \"profile\": the bundle's default_profile (direct "
                 "Top-5, stage2 rerank); an extra feature no model uses", body,
                 lambda r: len(r["r"]) == 5)

        # Direct only, with duplicated rows so d ties (order by index).
        rows = self.pick(12)
        rows = rows[:4] + [rows[9]] + rows[4:8] + [rows[2]] + rows[8:] + [rows[9]]
        self.add_pool("direct_profile", "profile direct: no recall, M = 0, everything by d, "
                      "duplicated rows tie in d", rows, {"profile": "direct"},
                      check=lambda r: len(r["r"]) == 0 and len(set(r["d"].tolist())) < len(rows))

        # fusion at its own alpha, then the same candidates at alpha 0 and 1.
        def fusion_differs(rows):
            fused = self.row_result("fusion", rows)
            plain = self.row_result("fusion", rows, alpha=1.0)
            by_d = self.row_result("fusion", rows, alpha=0.0)
            return (not np.array_equal(fused["order"], plain["order"])
                    and not np.array_equal(fused["order"], by_d["order"])
                    and not np.array_equal(plain["order"], by_d["order"]))

        rows = self.search(lambda: self.pick(20), fusion_differs)
        candidates = self.sparse([self.pool[i] for i in rows])
        self.add("fusion_profile", "profile fusion at its alpha 0.25 (order differs from "
                 "alpha 0 and alpha 1)", {"profile": "fusion", "candidates": candidates},
                 lambda r: len(r["r"]) == 6 and r["alpha"] == 0.25)
        self.add("fusion_alpha_0", "fusion_profile's candidates, request alpha 0: R by "
                 "normalised d, i.e. by d", {"profile": "fusion", "candidates": candidates,
                                             "alpha": 0},
                 lambda r: r["alpha"] == 0.0)
        self.add("fusion_alpha_1", "fusion_profile's candidates, request alpha 1: the key "
                 "is s itself", {"profile": "fusion", "candidates": candidates, "alpha": 1},
                 lambda r: all(r["key"][i] == r["s"][i] for i in r["r"]))

        # default at alpha 0, 0.5, 1: three different orders of R.
        def default_alphas_differ(rows):
            orders = [self.row_result("default", rows, alpha=a)["order"].tolist()
                      for a in (0.0, 0.5, 1.0)]
            return len({tuple(o) for o in orders}) == 3

        rows = self.search(lambda: self.pick(18), default_alphas_differ)
        candidates = self.sparse([self.pool[i] for i in rows])
        plain = self.row_result("default", rows)
        for alpha, label in ((0, "0"), (0.5, "half"), (1, "1")):
            self.add(f"default_alpha_{label}", f"profile default (alpha 1.0) with request "
                     f"alpha {alpha}", {"candidates": candidates, "alpha": alpha},
                     lambda r: r["alpha"] == alpha)
        assert [it["id"] for it in self.cases[-1]["expected"]["items"]] == \
            [candidates[i]["id"] for i in plain["order"]], "alpha 1 must be the plain order"

        # hybrid: both sources pick the same four candidates.
        d_hi, g_hi = np.quantile(d_pool, 0.8), np.quantile(g_pool, 0.8)
        d_lo, g_lo = np.quantile(d_pool, 0.5), np.quantile(g_pool, 0.5)
        stars = self.pick(4, (d_pool > d_hi) & (g_pool > g_hi))
        others = self.pick(10, (d_pool < d_lo) & (g_pool < g_lo))
        rows = others[:3] + stars[:2] + others[3:7] + stars[2:] + others[7:]
        self.add_pool("hybrid_overlap", "profile hybrid, both sources (direct Top-4, "
                      "gift_prob Top-4) pick the same four candidates: M = 4", rows,
                      {"profile": "hybrid"},
                      check=lambda r: r["tops"][0] == r["tops"][1] and len(r["r"]) == 4)

        # hybrid: the two sources pick disjoint sets.
        def disjoint(rows):
            r = self.row_result("hybrid", rows)
            return not (r["tops"][0] & r["tops"][1])

        d_only = (d_pool > d_hi) & (g_pool < g_lo)
        g_only = (g_pool > g_hi) & (d_pool < d_lo)
        rows = self.search(lambda: self.pick(4, d_only) + self.pick(4, g_only) + self.pick(8),
                           disjoint)
        rows = [rows[j] for j in rng.permutation(len(rows))]
        self.add_pool("hybrid_disjoint", "profile hybrid, the sources pick disjoint sets: "
                      "M = 8", rows, {"profile": "hybrid"},
                      check=lambda r: not (r["tops"][0] & r["tops"][1]) and len(r["r"]) == 8)

        # hybrid with request m = 1: only the direct source shrinks.
        def m_override_matters(rows):
            small = self.row_result("hybrid", rows, m=1)
            full = self.row_result("hybrid", rows)
            return (len(small["tops"][0]) == 1 and len(small["tops"][1]) == 4
                    and not small["tops"][0] <= small["tops"][1] and small["r"] != full["r"])

        rows = self.search(lambda: self.pick(20), m_override_matters)
        self.add_pool("hybrid_m_override", "profile hybrid, request m = 1 replaces the first "
                      "source's m (direct: 1), gift_prob keeps m = 4", rows,
                      {"profile": "hybrid", "m": 1},
                      check=lambda r: len(r["tops"][0]) == 1 and len(r["tops"][1]) == 4
                      and len(r["r"]) == 5)

        # prob_first: the score model is gift_prob; a source reuses it.
        def partial_overlap(rows):
            r = self.row_result("prob_first", rows)
            return 3 < len(r["r"]) < 6

        rows = self.search(lambda: self.pick(16), partial_overlap)
        self.add_pool("prob_first_profile", "profile prob_first: d = gift_prob, recall "
                      "gift_prob Top-3 (reuses d) + direct Top-3, overlapping in part", rows,
                      {"profile": "prob_first"},
                      check=lambda r: 3 < len(r["r"]) < 6)

        def prob_first_m(rows):
            r = self.row_result("prob_first", rows, m=6)
            return len(r["tops"][0]) == 6 and 6 < len(r["r"]) < 9

        rows = self.search(lambda: self.pick(15), prob_first_m)
        self.add_pool("prob_first_m_override", "profile prob_first, request m = 6 replaces "
                      "the first source's m (gift_prob: 6), direct keeps 3", rows,
                      {"profile": "prob_first", "m": 6},
                      check=lambda r: len(r["tops"][0]) == 6 and len(r["tops"][1]) == 3)

        rows = self.pick(20)
        self.add_pool("default_m_override", "default profile, request m = 9", rows,
                      {"profile": "default", "m": 9}, check=lambda r: len(r["r"]) == 9)

        rows = self.pick(14)
        self.add_pool("k_inside_recall", "default profile, k = 3 < M = 5: only reranked "
                      "items", rows, {"k": 3}, check=lambda r: len(r["r"]) == 5)
        rows = self.pick(14)
        self.add_pool("k_past_recall", "profile fusion (M = 6), k = 9: six reranked items, "
                      "then three by d", rows, {"profile": "fusion", "k": 9},
                      check=lambda r: len(r["r"]) == 6)

        rows = self.pick(7)
        self.add_pool("m_larger_than_n", "default profile, request m = 30 > N = 7 "
                      "(M = 7) and k = 10 > N", rows, {"m": 30, "k": 10},
                      check=lambda r: len(r["r"]) == 7)
        rows = self.pick(3)
        self.add_pool("hybrid_sources_larger_than_n", "profile hybrid with N = 3: both "
                      "sources' m exceed N, M = 3", rows, {"profile": "hybrid"},
                      check=lambda r: len(r["r"]) == 3)

        self.add("empty_candidates", "N = 0 (and k = 5): m = 0, no items",
                 {"request_id": "empty", "candidates": [], "k": 5},
                 lambda r: len(r["order"]) == 0)

        # Identical features everywhere: every score ties, order = input order.
        same = self.pick(1, np.isnan(np.array([p["f2"] for p in self.pool])))[0]
        rows = [same] * 10
        self.add_pool("identical_candidates", "default profile, ten candidates with the same "
                      "features (f2 missing, null or absent): order = input order", rows,
                      check=lambda r: r["order"].tolist() == list(range(10))
                      and len(set(r["d"].tolist())) == 1 and r["r"] == set(range(5)))
        rows = [self.pick(1)[0]] * 8
        self.add_pool("identical_candidates_hybrid", "profile hybrid, eight identical "
                      "candidates: both sources pick the first four (M = 4), max = min so "
                      "every fused key is 0.0", rows, {"profile": "hybrid"},
                      check=lambda r: r["order"].tolist() == list(range(8))
                      and r["r"] == set(range(4)) and all(r["key"][i] == 0.0 for i in r["r"]))

        # d ties across the recall cut (same f0..f3, different f4/f5: same d, other s).
        def cut_tie():
            a = self.pick(1, (d_pool > np.quantile(d_pool, 0.3))
                          & (d_pool < np.quantile(d_pool, 0.7)))[0]
            above = self.pick(3, d_pool > d_pool[a])
            below = self.pick(6, d_pool < d_pool[a])
            return a, above, below

        for _ in range(1000):
            a, above, below = cut_tie()
            twins = []
            for _ in range(2):
                twin = dict(self.pool[a])
                twin["f4"] = float(np.round(rng.normal(0.0, 1.2), 2))
                twin["f5"] = float(np.round(rng.random(), 2))
                twins.append(twin)
            group = [self.pool[a]] + twins
            s_group = self.models.predict("stage2", {f: [r[f] for r in group] for f in FEATURES})
            if len(set(s_group.tolist())) == 3:
                break
        order = [("b", 0), ("g", 0), ("a", 0), ("b", 1), ("a", 1), ("g", 1), ("b", 2),
                 ("b", 3), ("a", 2), ("g", 2), ("b", 4), ("b", 5)]
        source = {"a": [self.pool[i] for i in above], "b": [self.pool[i] for i in below],
                  "g": group}
        tie_rows = [source[kind][j] for kind, j in order]

        def ties_at_cut(r):
            by_d = np.lexsort((np.arange(len(r["d"])), -r["d"]))
            return r["d"][by_d[4]] == r["d"][by_d[5]] and len(r["r"]) == 5

        self.add("ties_recall_cut", "default profile: three candidates tie in d at "
                 "positions 3-5 of the d order (same f0..f3, different f4 so different s); "
                 "the lower indices are recalled",
                 {"candidates": self.sparse(tie_rows)}, ties_at_cut)

        # s ties inside R: same f1, f3, f4 (stage2's features), different f0/f2 -> other d;
        # and a full duplicate (same s and d).
        def s_ties():
            a = self.pick(1, d_pool > np.quantile(d_pool, 0.85))[0]
            variant = dict(self.pool[a])
            variant["f0"] = float(rng.integers(1, 51))
            variant["f2"] = float(np.round(rng.exponential(20.0), 1))
            low = self.pick(9, d_pool < np.quantile(d_pool, 0.5))
            # variant before a, the duplicate of a last of the three
            return [self.pool[i] for i in low[:2]] + [variant] + [self.pool[i] for i in low[2:5]] \
                + [self.pool[a]] + [self.pool[i] for i in low[5:7]] + [dict(self.pool[a])] \
                + [self.pool[i] for i in low[7:]]

        def s_tie_check(r):
            inside = sorted(r["r"])
            pairs = [(i, j) for i in inside for j in inside if i < j and r["s"][i] == r["s"][j]]
            distinct_d = [(i, j) for i, j in pairs if r["d"][j] > r["d"][i]]
            same_d = [(i, j) for i, j in pairs if r["d"][j] == r["d"][i]]
            return bool(distinct_d) and bool(same_d)

        def s_tie_rows_ok(rows):
            x = {f: [row[f] for row in rows] for f in FEATURES}
            r = rank(PROFILES["default"], lambda model, idx: self.models.predict(model, x, idx),
                     len(rows))
            return s_tie_check(r)

        rows = self.search(s_ties, s_tie_rows_ok, tries=2000)
        self.add("ties_stage2_in_recall", "default profile: inside R two candidates tie in s "
                 "with different d (the later one has the larger d and goes first) and two "
                 "tie in s and d (lower index first)", {"candidates": self.sparse(rows)},
                 s_tie_check)

        # Fused-key ties at alpha 0.5: in R the largest s has the smallest d and vice versa
        # (keys 0.5 * 1 + 0.5 * 0 = 0.5 * 0 + 0.5 * 1), plus a duplicated row in R.
        def fused_rows():
            rows = self.pick(13)
            j = int(rng.integers(0, 13))
            at = int(rng.integers(0, 14))
            return rows[:at] + [rows[j]] + rows[at:]

        def fused_tie_check(r):
            inside = sorted(r["r"])
            pairs = [(i, j) for i in inside for j in inside if i < j and r["key"][i] == r["key"][j]]
            return (any(r["d"][j] > r["d"][i] for i, j in pairs)
                    and any(r["d"][j] == r["d"][i] for i, j in pairs))

        rows = self.search(fused_rows, lambda rows: fused_tie_check(
            self.row_result("fusion", rows, alpha=0.5)))
        self.add_pool("ties_fused_key", "profile fusion, request alpha 0.5: the largest s "
                      "in R has the smallest d and the other way round, so both keys are "
                      "exactly 0.5 (larger d first, here the later one); a duplicated row in "
                      "R ties in key and d", rows, {"profile": "fusion", "alpha": 0.5},
                      check=fused_tie_check)

        # Ties in the rest (outside R): duplicates and d-twins among low candidates.
        high = self.pick(5, d_pool > np.quantile(d_pool, 0.75))
        low = self.pick(8, d_pool < np.quantile(d_pool, 0.6))
        twin = dict(self.pool[low[1]])
        twin["f4"], twin["f5"] = 1.5, 0.33
        rest_rows = ([self.pool[i] for i in (low[0], high[0], low[1], low[2], high[1])]
                     + [self.pool[low[2]], twin, self.pool[high[2]]]
                     + [self.pool[i] for i in (low[3], low[4], high[3], low[5])]
                     + [self.pool[low[2]], self.pool[high[4]], self.pool[low[6]],
                        self.pool[low[7]]])

        def rest_ties(r):
            out = [i for i in range(len(r["d"])) if i not in r["r"]]
            return (len(r["r"]) == 5
                    and sum(r["d"][i] == r["d"][j] for i in out for j in out if i < j) >= 4)

        self.add("ties_rest", "default profile: outside R, a row three times and a d-twin "
                 "(same f0..f3) tie in d: lower index first",
                 {"candidates": self.sparse(rest_rows)}, rest_ties)

        # Every feature missing: `features: {}` and all nulls (both NaN everywhere).
        rows = [self.pool[i] for i in self.pick(6)]
        candidates = self.sparse(rows[:2]) + [{"id": "all-null", "features": {
            f: None for f in FEATURES}}] + self.sparse(rows[2:5]) + [
            {"id": "empty-features", "features": {}}] + self.sparse(rows[5:])
        self.add("all_features_missing", "default profile, m = 8: one candidate with every "
                 "feature null, one with an empty features object (same scores, tie)",
                 {"candidates": candidates, "m": 8},
                 lambda r: r["d"][2] == r["d"][6] and {2, 6} <= r["r"]
                 and r["s"][2] == r["s"][6])

        # Dense form, with context for the one feature not in feature_names.
        names = ["f5", "f3", "x_unused", "f0", "f4", "f2"]
        rows = [dict(self.pool[i]) for i in self.pick(20)]
        f1_context = 1.0
        values = []
        for row in rows:
            row["f1"] = f1_context
            row["x_unused"] = math.nan if self.rng.random() < 0.5 else \
                round(float(self.rng.random()), 2)
            values.append([None if math.isnan(row[n]) else self.number(n, row[n])
                           for n in names])
        body = {"request_id": "dense-1", "profile": "hybrid", "context": {"f1": 1},
                "feature_names": names,
                "candidates": [{"id": cid, "values": v} for cid, v in zip(self.ids(20), values)],
                "k": 15}
        result = self.add("dense_form_hybrid", "dense form (feature_names in another order, "
                          "an unused name, nulls), f1 from context, profile hybrid, k = 15",
                          body)
        x = {f: [row[f] for row in rows] for f in FEATURES}
        assert np.array_equal(result["d"], self.models.predict("direct", x)), "dense resolve"

        # Context shared by all candidates; a candidate's own value wins.
        rows = [dict(self.pool[i]) for i in self.pick(15)]
        candidates = self.sparse(rows, skip=("f0", "f5"))
        context = {"f0": 30, "f5": 0.4}
        for j, (f0, f5) in zip((2, 7, 11), ((23.0, 0.78), (13.0, 0.9), (45.0, 0.05))):
            candidates[j]["features"]["f0"] = self.number("f0", f0)
            candidates[j]["features"]["f5"] = f5
        self.add("context_default_by_name", "\"profile\": \"default\" by name; f0 and f5 "
                 "come from context, three candidates give their own (which win)",
                 {"request_id": "ctx-1", "profile": "default", "context": context,
                  "candidates": candidates},
                 lambda r: len(r["r"]) == 5)
        own = resolve(self.cases[-1]["body"])
        assert [own["f0"][j] for j in range(15) if j not in (2, 7, 11)] == [30.0] * 12
        assert [own["f0"][j] for j in (2, 7, 11)] == [23.0, 13.0, 45.0]

        # An own null is missing, not replaced by context.
        def null_matters(a):
            row = dict(self.pool[a])
            with_ctx = dict(row, f2=12.5, f4=0.8)
            with_nan = dict(row, f2=math.nan, f4=math.nan)
            x = {f: [with_ctx[f], with_nan[f]] for f in FEATURES}
            d = self.models.predict("direct", x)
            s = self.models.predict("stage2", x)
            return d[0] != d[1] and s[0] != s[1]

        rows = [dict(self.pool[i]) for i in self.pick(10)]
        nullers = self.search(lambda: self.pick(2, d_pool > np.quantile(d_pool, 0.7)),
                              lambda pair: all(null_matters(a) for a in pair))
        rows[1], rows[4] = dict(self.pool[nullers[0]]), dict(self.pool[nullers[1]])
        candidates = self.sparse(rows, skip=("f2", "f4"))
        for j in (1, 4):
            candidates[j]["features"]["f2"] = None
            candidates[j]["features"]["f4"] = None
        candidates[6]["features"]["f2"] = 3.1  # an own number wins over context
        self.add("context_candidate_null_wins", "context gives f2 = 12.5 and f4 = 0.8; two "
                 "candidates send f2 and f4 as null: missing (NaN) for them, not the context "
                 "value; one sends its own f2 = 3.1",
                 {"context": {"f2": 12.5, "f4": 0.8}, "candidates": candidates})
        own = resolve(self.cases[-1]["body"])
        assert all(math.isnan(own["f2"][j]) and math.isnan(own["f4"][j]) for j in (1, 4))
        assert own["f2"][6] == 3.1 and own["f2"][0] == 12.5

        names = [c["name"] for c in self.cases]
        assert len(set(names)) == len(names) and 15 <= len(names) <= 30, len(names)
        return self.cases


# ---------------------------------------------------------------------------------------
# Eval (section 7 additions: fusion and profile rows)


def eval_rows(models: Models, data: Path) -> dict:
    frame = pd.read_csv(data, float_precision="round_trip")
    y = frame["gift_amount"].to_numpy(dtype=np.float64)
    x = {f: frame[f].to_numpy(dtype=np.float64) for f in FEATURES}
    n = len(y)
    full = {name: models.predict(name, x) for name in MODELS}

    def scores_of(model, rows):
        return full[model][rows]

    index = np.arange(n)
    by_y = np.lexsort((index, -y))
    truth = {}
    for percent in (1, 5):
        k = top_k_size(percent, n)
        truth[percent] = {"k": k, "rows": set(by_y[:k].tolist())}

    def recall_fields(r: set) -> dict:
        return {f"recall{p}": len(r & truth[p]["rows"]) / truth[p]["k"] for p in (1, 5)}

    default = PROFILES[DEFAULT_PROFILE]
    d, s = full[default["score"]], full[default["rerank"]]
    methods = []
    for name, scores in (("direct", d), ("stage2", s)):
        order = np.lexsort((index, -scores))
        methods.append({"name": name, "m": None, **ranking_metrics(y, order, truth)})

    def fusion_profile(m):
        return {"score": default["score"], "recall": [(default["score"], m)],
                "rerank": default["rerank"], "alpha": None}

    for m in EVAL_M:
        r = rank(fusion_profile(m), scores_of, n, alpha=1.0)
        methods.append({"name": "recall_rerank", "m": m, **recall_fields(r["r"]),
                        **ranking_metrics(y, r["order"], truth)})
    # Cross-check against eval_reference's own direct / stage2 / recall_rerank rows.
    assert methods == evaluate(d, s, y, EVAL_M)["methods"], "eval_reference disagrees"

    for m in EVAL_M:
        for alpha in EVAL_ALPHA:
            r = rank(fusion_profile(m), scores_of, n, alpha=alpha)
            methods.append({"name": "fusion", "m": m, "alpha": alpha, **recall_fields(r["r"]),
                            **ranking_metrics(y, r["order"], truth)})
            if alpha == 1.0:
                plain = next(row for row in methods
                             if row["name"] == "recall_rerank" and row["m"] == m)
                assert {k: v for k, v in methods[-1].items() if k not in ("name", "alpha")} == \
                    {k: v for k, v in plain.items() if k != "name"}, "alpha 1 != recall_rerank"

    for name, profile in PROFILES.items():
        r = rank(profile, scores_of, n)
        row = {"name": f"profile:{name}",
               "m": profile["recall"][0][1] if profile["recall"] else None}
        if profile["rerank"] is not None:
            row["alpha"] = r["alpha"]
        if profile["recall"]:
            row["recall_size"] = len(r["r"])
            row.update(recall_fields(r["r"]))
        row.update(ranking_metrics(y, r["order"], truth))
        methods.append(row)
    return {"n": n, "methods": methods}


def write_data(path: Path, rng: np.random.Generator) -> None:
    x, y = draw_rows(rng, EVAL_ROWS)
    assert (y > 0).mean() < 0.2 and len(set(y[y > 0].tolist())) < (y > 0).sum()
    with open(path, "w") as f:
        f.write(",".join(FEATURES + ["gift_amount"]) + "\n")
        for i in range(EVAL_ROWS):
            missing = "" if i % 3 else "nan"  # both spellings of a missing cell
            cells = [missing if math.isnan(x[c][i]) else repr(float(x[c][i])) for c in FEATURES]
            f.write(",".join(cells + [repr(float(y[i]))]) + "\n")


# ---------------------------------------------------------------------------------------
# Files


def dumps(value, level: int = 0, width: int = 160) -> str:
    """JSON with one short object (a candidate, an item) per line."""
    flat = json.dumps(value, allow_nan=False)
    if not isinstance(value, (list, dict)) or not value or len(flat) + level <= width:
        return flat
    pad = " " * (level + 1)
    if isinstance(value, dict):
        parts = [f"{pad}{json.dumps(k)}: {dumps(v, level + 1, width)}" for k, v in value.items()]
        return "{\n" + ",\n".join(parts) + "\n" + " " * level + "}"
    parts = [pad + dumps(v, level + 1, width) for v in value]
    return "[\n" + ",\n".join(parts) + "\n" + " " * level + "]"


def write_canary(bundle: Path, models: Models, rng: np.random.Generator) -> None:
    x, _ = draw_rows(rng, 16)
    extra = [
        {f: math.nan for f in FEATURES},                                        # all missing
        {"f0": math.nan, "f1": 1.0, "f2": 0.0, "f3": math.nan, "f4": -0.5, "f5": 0.0},
        {"f0": 1000.0, "f1": 0.0, "f2": 5000.5, "f3": 1.0, "f4": -40.0, "f5": 2.0},  # far out
        {"f0": 7.0, "f1": math.nan, "f2": math.nan, "f3": 0.25, "f4": math.nan,
         "f5": math.nan},
    ]
    for row in extra:
        for f in FEATURES:
            x[f] = np.append(x[f], row[f])
    expected = {name: models.predict(name, x) for name in MODELS}
    columns = FEATURES + [f"expected_{name}" for name in MODELS]
    with open(bundle / "canary.csv", "w") as f:
        f.write(",".join(columns) + "\n")
        for i in range(len(x["f0"])):
            cells = [repr(float(x[c][i])) for c in FEATURES]
            cells += [repr(float(expected[name][i])) for name in MODELS]
            f.write(",".join(cells) + "\n")


def bundle_toml() -> str:
    lines = ["format_version = 2", f'default_profile = "{DEFAULT_PROFILE}"', "", "[models]"]
    lines += [f'{name} = "{spec[0]}"' for name, spec in MODELS.items()]
    for name, profile in PROFILES.items():
        lines += ["", f"[profiles.{name}]", f'score = "{profile["score"]}"']
        if profile["recall"]:
            sources = ", ".join(f'{{ model = "{model}", m = {m} }}'
                                for model, m in profile["recall"])
            lines.append(f"recall = [{sources}]")
        if profile["rerank"]:
            lines.append(f'rerank = "{profile["rerank"]}"')
        if profile["alpha"] is not None:
            lines.append(f"alpha = {profile['alpha']!r}")
        if profile["max_m"] is not None:
            lines.append(f"max_m = {profile['max_m']}")
    lines += ["", "[canary]", 'file = "canary.csv"', "tolerance = 1e-9"]
    return "\n".join(lines) + "\n"


README = """\
# Ranking profile fixtures (bundle `format_version = 2`)

Written by `tools/gen_profile_fixtures.py`, run from the repository root with the pinned
versions of `tools/requirements.txt` (lightgbm 4.6.0, numpy 2.2.6, pandas 2.2.3, scipy
1.15.3, scikit-learn 1.6.1): `python3 tools/gen_profile_fixtures.py` (or `--out DIR` to
write elsewhere and diff). The script is deterministic, so re-running it reproduces these
files byte for byte. Do not edit them by hand. It is an independent reference for
DESIGN.md section 1.1 (profiles) and the section 7 `fusion` / `profile:<name>` rows: scores
from LightGBM's `Booster.predict` (boosters re-loaded from the files below), orders from
`numpy.lexsort` on explicit keys, eval metrics from `tools/eval_reference.py`.

| file | content |
|---|---|
| `bundle/direct.txt` | LightGBM regression (20 trees, <= 15 leaves) on `f0, f1, f2, f3` |
| `bundle/stage2.txt` | LightGBM regression (15 trees) on `f3, f1, f4` (another order), trained on the gift rows only with log(amount), so its order differs from direct's |
| `bundle/gift_prob.txt` | LightGBM binary (25 trees; predict gives P(gift)) on `f5, f0, f2` |
| `bundle/canary.csv` | 20 rows: `f0..f5` (missing cells `nan`; one row all missing, one far outside the training range) and `expected_direct`, `expected_stage2`, `expected_gift_prob` |
| `bundle/bundle.toml` | `format_version = 2`, `default_profile = "default"`, the three models and the profiles below, canary tolerance 1e-9 |
| `requests.json` | %(cases)d `/rank` cases, each `{name, body, expected}`: `body` is the request, `expected` = `{profile, m, items}` of the response (items with `id`, `score`, `direct_score`, `stage2_score`, `reranked`); compare scores to 1e-9 |
| `data.csv` | %(rows)d labelled rows: `f0..f5` (missing cells empty or `nan`), label `gift_amount` (mostly 0, many ties) |
| `data_expected.json` | the `--json` output of `%(command)s` |

Training data: f2, f4 and f5 have missing values in training (so those splits carry a
learnt NaN direction); f0, f1 and f3 never do (LightGBM treats their NaN as 0.0).

Profiles, in declaration order (`max_m = 50` wherever there is recall):

| profile | score | recall | rerank | alpha |
|---|---|---|---|---|
| `default` | direct | direct m=5 | stage2 | 1.0 |
| `direct` | direct | none | none | - |
| `fusion` | direct | direct m=6 | stage2 | 0.25 |
| `hybrid` | direct | direct m=4, gift_prob m=4 | stage2 | 0.7 |
| `prob_first` | gift_prob | gift_prob m=3, direct m=3 | stage2 | 1.0 |

Semantics used (section 1.1): `d` = the score model on all N; each source's Top-m (ties:
lower index), a request `m` replaces the first source's m; R = union, `m` = |R|; rerank
key `s` when alpha = 1, else `alpha*sh + (1-alpha)*dh` with `xh = (x - min_R) / (max_R -
min_R)` (0.0 when max = min) in float64, in that operation order; R by key descending
(ties: larger d, lower index), then the rest by d (ties: lower index); first k. Feature
lookup: the candidate's own value (an own `null` is missing, *not* replaced by
`context`), else `context`, else missing.

`data_expected.json` rows: `direct`, `stage2` (default profile's score / rerank models),
`recall_rerank` per M, `fusion` per M (outer) x alpha (inner), then `profile:<name>` per
profile (`m` of its first source or null; `alpha` when it has a rerank model;
`recall_size` = |R|, `recall1`, `recall5` when it has recall).

Cases in `requests.json` (what each one is built to show; the script asserts it):

%(case_list)s
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/profiles"))
    args = parser.parse_args()
    if lgb.__version__ != "4.6.0":
        print(f"warning: lightgbm {lgb.__version__}, the fixtures were made with 4.6.0 "
              "(tools/requirements.txt); the files may differ", file=sys.stderr)
    bundle = args.out / "bundle"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "bundle.toml").unlink(missing_ok=True)  # a bundle is complete when it exists
    rng = np.random.default_rng(20260214)

    train_bundle(rng, bundle)
    models = Models(bundle)
    write_canary(bundle, models, rng)

    cases = Cases(models, rng)
    pool_d, pool_s = cases.pred["direct"], cases.pred["stage2"]
    assert not np.array_equal(np.argsort(pool_d), np.argsort(pool_s))
    assert np.corrcoef(pool_d, pool_s)[0, 1] < 0.9, "stage2 should order differently"
    built = cases.build()
    (args.out / "requests.json").write_text(dumps(built) + "\n")

    write_data(args.out / "data.csv", rng)
    expected = eval_rows(models, args.out / "data.csv")
    (args.out / "data_expected.json").write_text(json.dumps(expected, indent=1) + "\n")

    case_list = "\n".join(f"- `{c['name']}`: {cases.descriptions[c['name']]}" for c in built)
    (args.out / "README.md").write_text(README % {
        "cases": len(built), "rows": EVAL_ROWS, "command": EVAL_COMMAND,
        "case_list": case_list})
    (bundle / "bundle.toml").write_text(bundle_toml())  # written last

    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    assert total < 400_000, f"fixtures too large: {total} bytes"
    print(f"wrote {args.out}/: bundle/ (bundle.toml, direct.txt, stage2.txt, gift_prob.txt, "
          f"canary.csv), requests.json ({len(built)} cases), data.csv, data_expected.json, "
          f"README.md; {total} bytes")


if __name__ == "__main__":
    main()
