#!/usr/bin/env python3
"""Independent reference for ``giftrank eval`` (DESIGN.md section 7): writes the fixtures
in ``tests/fixtures/eval/`` and the metric values the Rust code must reproduce (to 1e-9).

The metrics here are computed with numpy, ``scipy.stats.spearmanr`` and
``sklearn.metrics.ndcg_score``, not by porting the Rust code:

* every ranking is a ``numpy.lexsort`` on explicit keys (score descending, then row index;
  for recall-rerank: Stage2 descending, Direct descending, row index);
* ``ndcg100`` is ``ndcg_score([y], [-position], k=100)`` (for a single row, which sklearn
  refuses, the formula below). sklearn averages the gains of tied
  scores (``ignore_ties=False``), which is not section 7's "lower row index first", so the
  ranking is handed to sklearn as the distinct scores ``-position`` (position 0 is best):
  then sklearn's DCG is exactly section 7's sum over the first 100 positions of
  ``y / log2(i + 2)``, and its ideal DCG is the same sum over ``y`` sorted descending
  (0 when that is 0). The script also computes that formula directly and stops if the two
  disagree by more than 1e-12;
* ``spearman`` is ``spearmanr(y, -position)``: average ranks of y against the (distinct)
  ranks of -position. When y is constant scipy gives NaN; giftrank reports ``null``;
* ``top{K}`` and ``recall{K}`` are set intersections with k = ceil(K*N/100) (integer
  arithmetic) and the true Top-K% = the first k rows by y descending, then row index.

With ``--group`` (section 7) each group of rows is evaluated on its own by the same
``evaluate`` and every metric is averaged over the groups whose label sum is > 0; Spearman
over those groups where spearmanr is defined (not NaN: labels and positions both vary).

Files written (all deterministic: fixed seeds, ``num_threads=1``, ``deterministic=True``)::

    scores.csv             label,d,s,group: 3,037 rows of given scores with ties in d, s and
                           label, in 384 groups (300 of one row, one of three equal positive
                           labels, the rest of 2 to 150 rows, rows of a group scattered)
    scores_expected.json   section 7 JSON for scores.csv at the M list in its "m_list" key
    scores_grouped_expected.json   the same with --group group
    edge_cases.json        small cases (all-zero labels, N < 100, M > N, ties, N = 2 ...):
                           inputs d, s, y, the M list and the expected section 7 JSON
    group_cases.json       small grouped cases (groups of one row, all-zero groups, no
                           positive group at all, one group, ties, constant positive labels):
                           inputs d, s, y, groups, the M list and the expected JSON
    bundle/1/              a tiny model bundle (bundle.toml, direct.txt, stage2.txt) trained
                           with LightGBM; the two models use different feature lists
    data.csv               1,537 labelled rows for that bundle (features with missing cells,
                           label column gift_amount, group column session_id)
    data.parquet           the same rows as Parquet, written by pandas with pyarrow: integer
                           and boolean columns, float columns with nulls, session_id as a
                           pandas category (dictionary of strings), zstd, row groups of 400
    data_expected.json     section 7 JSON of ``giftrank eval`` on data.csv with the default
                           M list, scores from LightGBM's ``Booster.predict``
    data_grouped_expected.json     the same with --group session_id

Groups are drawn from a random generator of their own (seed GROUP_SEED), so adding them
changed no other number in these files.

Run from the repository root with the pinned versions of ``tools/requirements.txt``::

    .venv/bin/python tools/eval_reference.py            # (re)writes tests/fixtures/eval/
    .venv/bin/python tools/eval_reference.py --out DIR  # writes elsewhere, e.g. to diff
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import ConstantInputWarning, spearmanr
from sklearn.metrics import ndcg_score

SCORES_M_LIST = [1, 7, 30, 31, 50, 100, 152, 200, 500, 1000, 3037, 5000]
DEFAULT_M_LIST = [50, 100, 200, 500, 1000]
BUNDLE_DEFAULT_M = 200  # default_m of the fixture bundle (bundle/1/bundle.toml)
GROUP_SEED = 20260110


# ---------------------------------------------------------------------------------------
# Section 7, independently


def top_k_size(percent: int, n: int) -> int:
    """k = ceil(K * N / 100), in integers."""
    return -(-percent * n // 100)


def order_by(scores: np.ndarray) -> np.ndarray:
    """Row indices by score descending, ties by lower row index."""
    return np.lexsort((np.arange(len(scores)), -scores))


def recall_rerank_order(d: np.ndarray, s: np.ndarray, m: int) -> np.ndarray:
    by_d = order_by(d)
    m = min(m, len(d))
    top = by_d[:m]
    # lexsort: the last key is the primary one.
    reranked = top[np.lexsort((top, -d[top], -s[top]))]
    return np.concatenate([reranked, by_d[m:]])


def direct_ndcg(y: np.ndarray, order: np.ndarray, depth: int = 100) -> float:
    discounts = 1.0 / np.log2(np.arange(min(depth, len(y))) + 2.0)
    ideal = float(np.sum(np.sort(y)[::-1][: len(discounts)] * discounts))
    if ideal == 0.0:
        return 0.0
    return float(np.sum(y[order][: len(discounts)] * discounts)) / ideal


def ranking_metrics(y: np.ndarray, order: np.ndarray, truth: dict) -> dict:
    n = len(y)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    score = -position.astype(np.float64)  # distinct: sklearn's tie averaging never applies

    check = direct_ndcg(y, order)
    # sklearn refuses a single document (a group of one row); there the formula stands alone.
    ndcg = float(ndcg_score(y[np.newaxis, :], score[np.newaxis, :], k=100)) if n > 1 else check
    if abs(ndcg - check) > 1e-12:
        raise SystemExit(f"sklearn ndcg_score {ndcg!r} != section 7 formula {check!r}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)  # constant y: NaN, expected
        rho = spearmanr(y, score).statistic
    spearman = None if math.isnan(rho) else float(rho)

    out = {}
    for percent in (1, 5):
        k = truth[percent]["k"]
        out[f"top{percent}"] = len(truth[percent]["rows"] & set(order[:k].tolist())) / k
    out["ndcg100"] = ndcg
    out["spearman"] = spearman
    return out


def evaluate(d: np.ndarray, s: np.ndarray, y: np.ndarray, m_list: list[int]) -> dict:
    n = len(y)
    by_y = order_by(y)
    truth = {}
    for percent in (1, 5):
        k = top_k_size(percent, n)
        truth[percent] = {"k": k, "rows": set(by_y[:k].tolist())}

    methods = []
    for name, scores in (("direct", d), ("stage2", s)):
        methods.append({"name": name, "m": None, **ranking_metrics(y, order_by(scores), truth)})
    by_d = order_by(d)
    for m in m_list:
        recalled = set(by_d[: min(m, n)].tolist())
        entry = {"name": "recall_rerank", "m": m}
        for percent in (1, 5):
            entry[f"recall{percent}"] = len(recalled & truth[percent]["rows"]) / truth[percent]["k"]
        entry.update(ranking_metrics(y, recall_rerank_order(d, s, m), truth))
        methods.append(entry)
    return {"n": n, "methods": methods}


RANKING_KEYS = ("top1", "top5", "ndcg100")
RECALL_KEYS = ("recall1", "recall5")


def evaluate_grouped(d: np.ndarray, s: np.ndarray, y: np.ndarray, groups: np.ndarray,
                     m_list: list[int]) -> dict:
    """Section 7 with --group: ``evaluate`` on each group's rows (in row order), then each
    metric's mean over the groups whose label sum is > 0 (0 when there is none), Spearman's
    over those of them where it is defined (null when there is none)."""
    _, first = np.unique(groups, return_index=True)
    per_group = []
    for value in groups[np.sort(first)]:
        rows = np.flatnonzero(groups == value)
        if y[rows].sum() > 0:
            per_group.append(evaluate(d[rows], s[rows], y[rows], m_list))
    names = [("direct", None), ("stage2", None)] + [("recall_rerank", m) for m in m_list]
    methods = []
    for j, (name, m) in enumerate(names):
        rows = [g["methods"][j] for g in per_group]
        entry = {"name": name, "m": m}
        keys = (RECALL_KEYS if m is not None else ()) + RANKING_KEYS
        for key in keys:
            entry[key] = float(np.mean([r[key] for r in rows])) if rows else 0.0
        defined = [r["spearman"] for r in rows if r["spearman"] is not None]
        entry["spearman"] = float(np.mean(defined)) if defined else None
        methods.append(entry)
    return {"n": len(y), "groups": len(first), "groups_used": len(per_group),
            "sizes_used": [int(np.sum(groups == v)) for v in groups[np.sort(first)]
                           if y[groups == v].sum() > 0],
            "methods": methods}


def grouped_profile_row(expected: dict, default_m: int) -> dict:
    """``profile:default`` with --group: recall_rerank at default_m, |R| = min(default_m,
    N) averaged over the groups averaged."""
    sizes = expected.pop("sizes_used")
    row = default_profile_row(expected, default_m, 0)
    row["recall_size"] = float(np.mean([min(default_m, n) for n in sizes])) if sizes else 0.0
    return row


# ---------------------------------------------------------------------------------------
# Fixture data


def gift_labels(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Mostly 0; gifts from a small heavy-tailed set of amounts, so labels tie a lot."""
    amounts = np.array([1, 1, 1, 1, 2, 2, 3, 5, 5, 10, 10, 20, 52, 100, 520, 1314, 0.5, 2.25])
    gift = rng.random(n) < rate
    return np.where(gift, rng.choice(amounts, size=n), 0.0)


def scores_fixture(rng: np.random.Generator) -> dict:
    n = 3037  # not a multiple of 100: k1 = 31, k5 = 152
    y = gift_labels(rng, n, 0.06)
    signal = np.log1p(y)
    # Direct: noisy, rounded to 0.01 -> many ties, including among the gifts.
    d = np.round(1.0 / (1.0 + np.exp(-(0.8 * signal + rng.normal(0, 1.0, n) - 2.5))), 2)
    # Stage2: better on amounts, coarser (0.1) -> even more ties; a few exact -0.0.
    s = np.round(0.6 * signal + rng.normal(0, 0.6, n), 1)
    s[s == 0.0] = -0.0
    return {"y": y, "d": d, "s": s}


def edge_cases(rng: np.random.Generator) -> list[dict]:
    cases = []

    def add(name, d, s, y, m_list):
        d, s, y = (np.asarray(v, dtype=np.float64) for v in (d, s, y))
        cases.append({"name": name, "d": d, "s": s, "y": y, "m": m_list})

    n = 250
    add("all_zero_labels", rng.normal(size=n), rng.normal(size=n), np.zeros(n), [1, 3, 50, 300])
    n = 37
    add("n_below_100", np.round(rng.random(n), 1), np.round(rng.random(n), 1),
        gift_labels(rng, n, 0.3), [1, 2, 10, 37, 100])
    n = 20
    add("constant_positive_labels", rng.random(n), rng.random(n), np.full(n, 5.0), [1, 5, 20])
    n = 205
    add("ties_everywhere", rng.integers(0, 2, n), rng.integers(0, 2, n),
        rng.integers(0, 3, n), [1, 2, 3, 11, 100, 205, 206])
    n = 2
    add("two_rows", [0.5, 0.5], [1.0, 2.0], [0.0, 3.0], [1, 2, 3])
    n = 101  # k1 = 2, k5 = 6
    add("k_rounding_101", np.round(rng.random(n), 2), np.round(rng.random(n), 2),
        gift_labels(rng, n, 0.2), [1, 2, 6, 7, 101])
    n = 150
    y = gift_labels(rng, n, 0.1)
    add("scores_ignore_labels", np.zeros(n), np.zeros(n), y, [10, 150])
    return cases


def score_groups(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """Group names for the scores fixture: three rows with label 1 in one group (equal
    positive labels: no Spearman), 300 groups of one row, the rest in groups of 2 to 150
    rows; every group's rows scattered over the file; names in no particular order."""
    n = len(y)
    ids = np.full(n, -1)
    equal = np.flatnonzero(y == 1.0)[:3]
    ids[equal] = 0
    rest = rng.permutation(np.setdiff1d(np.arange(n), equal))
    ids[rest[:300]] = np.arange(1, 301)
    position, group = 300, 301
    while position < len(rest):
        size = int(rng.choice([2, 3, 5, 8, 13, 40, 150]))
        ids[rest[position:position + size]] = group
        position, group = position + size, group + 1
    names = rng.permutation(group)
    return np.array([f"g{names[i]:04d}" for i in ids])


def group_cases(rng: np.random.Generator) -> list[dict]:
    cases = []

    def add(name, d, s, y, groups, m_list):
        d, s, y = (np.asarray(v, dtype=np.float64) for v in (d, s, y))
        cases.append({"name": name, "d": d, "s": s, "y": y, "groups": np.asarray(groups),
                      "m": m_list})

    n = 40
    add("groups_of_one_row", np.round(rng.random(n), 1), np.round(rng.random(n), 1),
        gift_labels(rng, n, 0.4), np.arange(n), [1, 2, 5])
    n = 120
    groups = rng.integers(0, 12, n)
    y = gift_labels(rng, n, 0.15)
    y[np.isin(groups, [0, 3, 7])] = 0.0  # three groups with labels all zero
    add("all_zero_groups", np.round(rng.random(n), 1), rng.integers(0, 3, n), y, groups,
        [1, 3, 10, 50])
    n = 30
    add("no_positive_group", rng.random(n), rng.random(n), np.zeros(n), rng.integers(0, 4, n),
        [1, 5])
    n = 205
    add("one_group", rng.integers(0, 2, n), rng.integers(0, 2, n), rng.integers(0, 3, n),
        np.full(n, 7), [1, 3, 11, 205, 206])
    n = 90
    add("ties_in_groups", rng.integers(0, 3, n), rng.integers(0, 3, n), rng.integers(0, 3, n),
        rng.integers(0, 9, n), [1, 2, 4, 100])
    n = 24
    y = gift_labels(rng, n, 0.5)
    groups = np.repeat(np.arange(6), 4)
    y[groups == 2] = 5.0  # labels equal and positive: no Spearman in that group
    y[20:] = [0.0, 0.0, 0.0, 3.0]  # positions vary, labels too
    add("constant_positive_group", rng.random(n), rng.random(n), y, groups, [1, 2])
    n = 60
    add("two_rows_per_group", np.round(rng.random(n), 1), np.round(rng.random(n), 1),
        gift_labels(rng, n, 0.3), np.arange(n) // 2, [1, 2])
    return cases


def sessions(rng: np.random.Generator, n: int) -> np.ndarray:
    """Session ids for data.csv: groups of 1 to 25 rows scattered over the file."""
    ids = np.empty(n, dtype=np.int64)
    rows = rng.permutation(n)
    position, session = 0, 0
    while position < n:
        size = int(rng.choice([1, 1, 1, 2, 3, 4, 6, 10, 25]))
        ids[rows[position:position + size]] = session
        position, session = position + size, session + 1
    return ids


def bundle_fixture(out: Path, rng: np.random.Generator, group_rng: np.random.Generator) -> None:
    """Trains the tiny Direct / Stage2 pair and writes bundle/1 and data.csv."""
    direct_features = ["user_level", "follows", "watch_minutes", "gift_rate"]
    stage2_features = ["user_level", "wealth", "watch_minutes"]
    all_features = ["user_level", "follows", "watch_minutes", "gift_rate", "wealth"]

    def rows(n):
        x = {
            "user_level": rng.integers(1, 61, n).astype(np.float64),
            "follows": rng.integers(0, 2, n).astype(np.float64),
            "watch_minutes": np.round(rng.exponential(30.0, n), 1),
            "gift_rate": np.round(rng.beta(1, 30, n), 4),
            "wealth": np.round(rng.normal(0, 1, n), 2),
        }
        logit = -4.0 + 1.5 * x["follows"] + 0.03 * x["watch_minutes"] + 40 * x["gift_rate"]
        gift = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
        amount = np.maximum(1.0, np.round(np.exp(1.0 + 1.2 * x["wealth"] + rng.normal(0, 0.7, n))))
        y = np.where(gift, amount, 0.0)
        # Missing cells, as in real logs.
        x["watch_minutes"][rng.random(n) < 0.08] = np.nan
        x["gift_rate"][rng.random(n) < 0.05] = np.nan
        return x, y

    params = {
        "objective": "regression",
        "num_leaves": 7,
        "learning_rate": 0.2,
        "min_data_in_leaf": 10,
        "num_threads": 1,
        "deterministic": True,
        "seed": 7,
        "verbose": -1,
    }
    x_train, y_train = rows(6000)

    def matrix(x, names, mask=slice(None)):
        return np.column_stack([x[f][mask] for f in names])

    direct = lgb.train(params, lgb.Dataset(matrix(x_train, direct_features), y_train,
                                           feature_name=direct_features), num_boost_round=20)
    gifts = y_train > 0
    stage2 = lgb.train(params, lgb.Dataset(matrix(x_train, stage2_features, gifts),
                                           np.log1p(y_train[gifts]),
                                           feature_name=stage2_features), num_boost_round=15)

    version = out / "bundle" / "1"
    version.mkdir(parents=True, exist_ok=True)
    direct.save_model(str(version / "direct.txt"))
    stage2.save_model(str(version / "stage2.txt"))
    (version / "bundle.toml").write_text(
        "format_version = 1\n\n[recall]\nmodel = \"direct.txt\"\ndefault_m = 200\nmax_m = 1000\n\n"
        "[rerank]\nmodel = \"stage2.txt\"\n"
    )

    x, y = rows(1537)
    session = sessions(group_rng, len(y))
    columns = ["row_id", *all_features, "gift_amount", "session_id"]
    with open(out / "data.csv", "w") as f:
        f.write(",".join(columns) + "\n")
        for i in range(len(y)):
            cells = [str(i)] + ["" if math.isnan(x[c][i]) else repr(float(x[c][i]))
                                for c in all_features] + [repr(float(y[i])), str(session[i])]
            f.write(",".join(cells) + "\n")
    write_parquet(out / "data.parquet", x, y, session)

    # Score the rows as written (parsed back from the CSV text) with LightGBM itself.
    d = direct.predict(matrix(x, direct_features))
    s = stage2.predict(matrix(x, stage2_features))
    expected = evaluate(d, s, y, DEFAULT_M_LIST)
    expected["methods"].append(default_profile_row(expected, BUNDLE_DEFAULT_M, len(y)))
    write_json(out / "data_expected.json", expected)
    grouped = evaluate_grouped(d, s, y, session, DEFAULT_M_LIST)
    grouped["methods"].append(grouped_profile_row(grouped, BUNDLE_DEFAULT_M))
    write_json(out / "data_grouped_expected.json", grouped)


def write_parquet(path: Path, x: dict, y: np.ndarray, session: np.ndarray) -> None:
    """data.csv's rows as pandas writes them to Parquet: whole-number features as int64,
    ``follows`` as bool, the rest float64 (NaN written as null), session_id as a pandas
    category of strings; zstd, row groups of 400 rows."""
    frame = pd.DataFrame({
        "row_id": np.arange(len(y), dtype=np.int64),
        "user_level": x["user_level"].astype(np.int64),
        "follows": x["follows"] > 0,
        "watch_minutes": x["watch_minutes"],
        "gift_rate": x["gift_rate"],
        "wealth": x["wealth"],
        "gift_amount": y,
        "session_id": pd.Categorical([str(v) for v in session]),
    })
    frame.to_parquet(path, engine="pyarrow", compression="zstd", index=False,
                     row_group_size=400)


def default_profile_row(expected: dict, default_m: int, n: int) -> dict:
    """The ``profile:default`` row of a format 1 bundle: its one profile is recall-rerank at
    ``default_m`` (section 1.1), so the row is that recall_rerank row with alpha 1 and
    recall_size = min(default_m, N)."""
    row = next(r for r in expected["methods"] if r["name"] == "recall_rerank" and r["m"] == default_m)
    metrics = {k: v for k, v in row.items() if k not in ("name", "m", "recall1", "recall5")}
    return {"name": "profile:default", "m": default_m, "alpha": 1.0, "recall_size": min(default_m, n),
            "recall1": row["recall1"], "recall5": row["recall5"], **metrics}


# ---------------------------------------------------------------------------------------


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/eval"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20260109)
    group_rng = np.random.default_rng(GROUP_SEED)

    f = scores_fixture(rng)
    f["group"] = score_groups(group_rng, f["y"])
    with open(args.out / "scores.csv", "w") as out:
        out.write("label,d,s,group\n")
        for y, d, s, g in zip(f["y"], f["d"], f["s"], f["group"]):
            out.write(f"{float(y)!r},{float(d)!r},{float(s)!r},{g}\n")
    expected = evaluate(f["d"], f["s"], f["y"], SCORES_M_LIST)
    write_json(args.out / "scores_expected.json", {"m_list": SCORES_M_LIST, **expected})
    grouped = evaluate_grouped(f["d"], f["s"], f["y"], f["group"], SCORES_M_LIST)
    grouped.pop("sizes_used")
    write_json(args.out / "scores_grouped_expected.json", {"m_list": SCORES_M_LIST, **grouped})

    cases = []
    for case in edge_cases(rng):
        cases.append({
            "name": case["name"],
            "d": case["d"].tolist(),
            "s": case["s"].tolist(),
            "y": case["y"].tolist(),
            "m_list": case["m"],
            "expected": evaluate(case["d"], case["s"], case["y"], case["m"]),
        })
    write_json(args.out / "edge_cases.json", cases)

    cases = []
    for case in group_cases(group_rng):
        expected = evaluate_grouped(case["d"], case["s"], case["y"], case["groups"], case["m"])
        expected.pop("sizes_used")
        cases.append({
            "name": case["name"],
            "d": case["d"].tolist(),
            "s": case["s"].tolist(),
            "y": case["y"].tolist(),
            "groups": case["groups"].tolist(),
            "m_list": case["m"],
            "expected": expected,
        })
    write_json(args.out / "group_cases.json", cases)

    bundle_fixture(args.out, rng, group_rng)
    print(f"wrote {args.out}/: scores.csv, scores_expected.json, scores_grouped_expected.json, "
          "edge_cases.json, group_cases.json, bundle/1/, data.csv, data.parquet, "
          "data_expected.json, data_grouped_expected.json")


if __name__ == "__main__":
    main()
