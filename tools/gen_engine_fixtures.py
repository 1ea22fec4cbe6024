#!/usr/bin/env python3
"""Generate the LightGBM reference fixtures for the Rust scoring engine tests.

What it produces
----------------
For every case below this script trains one small LightGBM model on synthetic
numpy (or pandas) data with fixed seeds and writes a directory
``tests/fixtures/engine/<case>/`` containing:

``model.txt``
    ``Booster.save_model(path)`` output (default arguments: text format, all
    iterations).
``data.csv``
    Header = the model's feature names (all of them, in model order, exactly as
    on the ``feature_names=`` line of ``model.txt``), then one row per input.
    Numbers are written with ``repr(float(x))`` so they parse back to the very
    same f64: ``nan``, ``inf``, ``-inf``, ``-0.0``, ``1e-35``,
    ``1.0000000180025095e-35`` ...  In the ``pandas_categorical`` case the
    category columns hold the category strings (an empty cell is a missing
    value, ``__unseen__`` is a string never seen in training); in
    ``pandas_numeric_categories`` the categories are numbers and so are the
    cells (``3.0``), apart from the empty and ``__unseen__`` ones.
``expected.csv``
    ``Booster.predict(X)`` on exactly those rows, same order.  ``X`` is a
    float64 numpy array built from the same values (for the pandas cases: a
    DataFrame whose category columns use the training ``CategoricalDtype``, so
    LightGBM does its own category mapping; pandas matches numbers to numeric
    categories by value).  Header ``prediction`` for
    single-output models, ``class_0,class_1,...`` for multi-output ones.
``raw.csv``
    Same as ``expected.csv`` but ``Booster.predict(X, raw_score=True)``.
``rows.txt``
    One line per data row saying what the row exercises (``ordinary``,
    ``special <feature>=<value>``, ``threshold ...``, ``cat_split ...``) --
    only a debugging aid for the tests.
``service_rows.json`` (``pandas_numeric_categories`` only)
    The data rows a JSON request can carry (no infinities, no text in the
    category column), with each category given as a JSON number, missing values
    as ``null``, and ``Booster.predict``'s score: for checking the service path
    against LightGBM.

The data rows are: ordinary held-out rows, then rows that are ordinary except
for one cell set to a special value (NaN, 0.0, -0.0, +-1e-35, +-1e-36,
+-1.0000000180025095e-35 (= float32 1e-35 = LightGBM's kZeroThreshold), +-inf,
+-1e300; for categorical features also negative, fractional, unseen and huge
values), then rows that put a feature exactly on a numeric split threshold read
from ``Booster.dump_model()`` and one ulp above/below it
(``numpy.nextafter``), and rows that hit categories inside/outside categorical
split bitsets.

Each case also has checks on the model text (e.g. that the missing-type bits,
``num_cat>0``, ``is_linear=1``, ``average_output``, ``pandas_categorical`` or
``num_leaves=1`` that the case is meant to cover are really there); the script
fails loudly if a check does not hold.

How to run
----------
From the repository root, with the pinned versions in ``tools/requirements.txt``::

    python -m venv .venv && .venv/bin/pip install -r tools/requirements.txt
    .venv/bin/python tools/gen_engine_fixtures.py

This (re)writes ``tests/fixtures/engine/``.  Everything is deterministic (fixed
seeds, ``num_threads=1``, ``deterministic=True``), so re-running it reproduces
the committed fixtures byte for byte.  ``--only case1,case2`` regenerates just
some cases; ``--out DIR`` writes elsewhere (e.g. to diff against the committed
fixtures); ``--verify`` trains nothing and re-checks the files already written
(parses data.csv back, predicts with the saved model.txt, compares bitwise with
expected.csv and raw.csv).

Note: a few special categorical inputs (``inf``, ``-inf``, ``1e10``,
``2147483648.0``) make LightGBM's C++ do ``static_cast<int>`` of an
out-of-range double, which is undefined behaviour; on x86-64 it yields
INT_MIN, i.e. "negative category -> right child".  The fixtures record what
LightGBM does on x86-64.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "engine"

EXPECTED_VERSIONS = {"lightgbm": "4.6.0", "numpy": "2.2.6", "pandas": "2.2.3"}

NAN = float("nan")
INF = float("inf")
# float32(1e-35) widened to f64; this is LightGBM's kZeroThreshold.
F32_1E35 = float(np.float32(1e-35))
assert repr(F32_1E35) == "1.0000000180025095e-35"

NUMERIC_SPECIALS: List[float] = [
    NAN, 0.0, -0.0,
    1e-35, -1e-35, 1e-36, -1e-36, F32_1E35, -F32_1E35,
    INF, -INF, 1e300, -1e300,
]


def categorical_specials(n_categories: int) -> List[float]:
    """Special inputs for a categorical feature coded 0..n_categories-1."""
    return [
        NAN, 0.0, -0.0, 1e-36, F32_1E35,
        -1.0, -3.7, -0.5, -0.99, 0.5, 2.5, 7.9,
        float(n_categories), float(n_categories + 7), 1000.0, 1e10,
        2147483647.0, 2147483648.0, INF, -INF,
    ]


PANDAS_CAT_SPECIALS = ["__unseen__", ""]


def numeric_category_specials(categories: Sequence) -> list:
    """Special inputs for a pandas category column whose categories are numbers: each
    category as a float, numbers that are not categories (near ones, negative, huge,
    fractional, infinite), a missing cell and a text cell."""
    near = float(np.nextafter(float(categories[0]), -INF))
    return [float(c) for c in categories] + [
        0.0, -0.0, -1.0, 5.0, 43.0, 1000.0, 3.5, near, 1e300, INF, -INF, "", "__unseen__",
    ]


def numeric_categories(categories: Sequence) -> bool:
    """Whether a pandas category list holds numbers (then cells are written as numbers)."""
    return all(isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, (bool, np.bool_))
               for c in categories)


def category_cell(value, categories: Sequence):
    """A data.csv cell of a category column as the value put into the DataFrame: '' is
    missing; text spelling a number is that number when the categories are numbers."""
    if isinstance(value, str):
        if value == "":
            return None
        if numeric_categories(categories):
            try:
                return float(value)
            except ValueError:
                return value
    return value

# Parameters shared by every case.
COMMON_PARAMS = {
    "verbose": -1,
    "num_threads": 1,
    "deterministic": True,
    "force_col_wise": True,
}


# ----------------------------------------------------------------------------
# Synthetic data helpers
# ----------------------------------------------------------------------------

def mixed_features(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n x k float64 matrix; column j's distribution depends on j % 5."""
    cols = []
    for j in range(k):
        kind = j % 5
        if kind == 0:
            c = rng.normal(0.0, 1.0, n)
        elif kind == 1:
            c = rng.uniform(0.0, 10.0, n)
        elif kind == 2:
            c = rng.integers(0, 8, n).astype(np.float64)
        elif kind == 3:
            c = rng.lognormal(0.0, 1.0, n)
        else:
            c = np.round(rng.normal(0.0, 3.0, n), 1)
        cols.append(c)
    return np.column_stack(cols).astype(np.float64)


def signal(X: np.ndarray, nan_effects: Optional[Dict[int, float]] = None) -> np.ndarray:
    """A nonlinear function of the columns (NaN cells contribute nan_effects[j])."""
    n, k = X.shape
    s = np.zeros(n)
    for j in range(k):
        x = X[:, j]
        isnan = np.isnan(x)
        xf = np.where(isnan, 0.0, x)
        kind = j % 5
        w = 1.0 / (1.0 + 0.3 * j)
        if kind == 0:
            g = np.sin(2.0 * xf) + 0.5 * xf
        elif kind == 1:
            g = 0.25 * xf - 0.8 * (xf > 6.0)
        elif kind == 2:
            g = 0.9 * (xf >= 3) - 0.7 * (xf == 5)
        elif kind == 3:
            g = 0.7 * np.log1p(np.abs(xf))
        else:
            g = 0.2 * xf + 0.3 * np.abs(xf) * (xf < -2)
        if nan_effects and j in nan_effects:
            g = np.where(isnan, nan_effects[j], g)
        s += w * g
    if k >= 2:
        x0 = np.nan_to_num(X[:, 0])
        x1 = np.nan_to_num(X[:, 1])
        s += 0.5 * x0 * (x1 > 5.0)
    s = s - s.mean()
    return s / (s.std() + 1e-12)


def inject(rng: np.random.Generator, X: np.ndarray, cols: Sequence[int], frac: float,
           value: float) -> np.ndarray:
    X = X.copy()
    for j in cols:
        mask = rng.random(X.shape[0]) < frac
        X[mask, j] = value
    return X


def make_groups(rng: np.random.Generator, n: int, lo: int = 5, hi: int = 30) -> np.ndarray:
    sizes = []
    total = 0
    while total < n:
        s = int(rng.integers(lo, hi + 1))
        s = min(s, n - total)
        sizes.append(s)
        total += s
    return np.array(sizes, dtype=np.int64)


# ----------------------------------------------------------------------------
# Case description
# ----------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    seed: int
    params: dict
    num_boost_round: int
    X_train: object                # np.ndarray or pd.DataFrame
    y_train: np.ndarray
    X_ordinary: object             # held-out rows (same distribution as training)
    X_base: object                 # clean rows used as the base of special rows
    group: Optional[np.ndarray] = None
    categorical: List[int] = field(default_factory=list)   # numpy cases: categorical indices
    feature_names: Optional[List[str]] = None
    n_ordinary: int = 100
    n_total: Optional[int] = None  # if set, ordinary rows fill up to this many rows
    max_thresholds: int = 30
    max_cat_splits: int = 8
    checks: List[Callable[["ModelText"], None]] = field(default_factory=list)
    description: str = ""
    service_rows: bool = False     # also write service_rows.json (see the module docs)

    @property
    def is_pandas(self) -> bool:
        return isinstance(self.X_train, pd.DataFrame)


# ----------------------------------------------------------------------------
# Model text inspection (for the checks)
# ----------------------------------------------------------------------------

class ModelText:
    def __init__(self, text: str):
        self.text = text
        self.lines = text.splitlines()
        self.header: Dict[str, str] = {}
        self.trees: List[Dict[str, str]] = []
        cur: Optional[Dict[str, str]] = None
        for line in self.lines:
            if line.startswith("Tree="):
                cur = {"Tree": line[5:]}
                self.trees.append(cur)
                continue
            if line.startswith("end of trees"):
                cur = None
                continue
            if "=" in line:
                k, v = line.split("=", 1)
                if cur is not None:
                    cur[k] = v
                elif not self.trees:
                    self.header[k] = v
        self.pandas_line = next((l for l in self.lines if l.startswith("pandas_categorical:")), None)

    def decision_types(self) -> List[int]:
        out: List[int] = []
        for t in self.trees:
            v = t.get("decision_type", "")
            if v:
                out.extend(int(x) for x in v.split())
        return out

    def missing_types(self, numeric_only: bool = True) -> set:
        return {(d >> 2) & 3 for d in self.decision_types() if not (numeric_only and d & 1)}

    def num_cat_total(self) -> int:
        return sum(int(t.get("num_cat", "0")) for t in self.trees)

    def max_bitset_words(self) -> int:
        best = 0
        for t in self.trees:
            if int(t.get("num_cat", "0")) > 0:
                b = [int(x) for x in t["cat_boundaries"].split()]
                best = max(best, max(b2 - b1 for b1, b2 in zip(b, b[1:])))
        return best

    def num_single_leaf_trees(self) -> int:
        return sum(1 for t in self.trees if t.get("num_leaves") == "1")

    def is_linear(self) -> bool:
        return any(t.get("is_linear") == "1" for t in self.trees)

    def summary(self) -> str:
        dts = sorted(set(self.decision_types()))
        parts = [
            f"objective={self.header.get('objective', '?')!r}",
            f"trees={len(self.trees)}",
            f"decision_types={dts}",
        ]
        if self.num_cat_total():
            parts.append(f"num_cat_total={self.num_cat_total()} max_bitset_words={self.max_bitset_words()}")
        if "average_output" in self.lines:
            parts.append("average_output")
        if self.is_linear():
            parts.append("is_linear=1")
        if self.num_single_leaf_trees():
            parts.append(f"single_leaf_trees={self.num_single_leaf_trees()}")
        if self.pandas_line and self.pandas_line != "pandas_categorical:null":
            parts.append("pandas_categorical")
        return " ".join(parts)


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def has_line(line: str):
    def f(m: ModelText) -> None:
        check(line in m.lines, f"expected line {line!r} in model text")
    return f


def objective_is(value: str):
    def f(m: ModelText) -> None:
        check(m.header.get("objective") == value,
              f"objective line is {m.header.get('objective')!r}, expected {value!r}")
    return f


def has_missing_type(mt: int):
    def f(m: ModelText) -> None:
        check(mt in m.missing_types(), f"no numeric split with missing type {mt}: {m.missing_types()}")
    return f


def only_missing_type(mt: int):
    def f(m: ModelText) -> None:
        check(m.missing_types() == {mt}, f"numeric missing types {m.missing_types()}, expected only {mt}")
    return f


def has_categorical_splits(min_words: int = 1):
    def f(m: ModelText) -> None:
        check(m.num_cat_total() > 0, "no categorical split (num_cat>0) in model")
        check(m.max_bitset_words() >= min_words,
              f"largest categorical bitset has {m.max_bitset_words()} words, want >= {min_words}")
    return f


def has_linear(m: ModelText) -> None:
    check(m.is_linear(), "no is_linear=1 tree")


def has_single_leaf(m: ModelText) -> None:
    check(m.num_single_leaf_trees() > 0, "no num_leaves=1 tree")


def has_pandas_categorical(m: ModelText) -> None:
    check(m.pandas_line is not None and m.pandas_line != "pandas_categorical:null",
          "no pandas_categorical line with categories")


def no_pandas_categorical(m: ModelText) -> None:
    check(m.pandas_line in (None, "pandas_categorical:null"), f"unexpected {m.pandas_line!r}")


# ----------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------

def split_sets(X_all: np.ndarray, X_clean_all: np.ndarray, n_train: int,
               n_ord: int = 400):
    """Split generated rows into training, ordinary (held-out) and clean base rows."""
    return (X_all[:n_train], X_all[n_train:n_train + n_ord], X_clean_all[n_train:n_train + n_ord])


def simple_numpy_case(name: str, seed: int, params: dict, label_fn, *, k: int = 8, n_train: int = 3000,
                      nan_cols: Sequence[int] = (), nan_frac: float = 0.0,
                      zero_cols: Sequence[int] = (), zero_frac: float = 0.0,
                      rounds: int = 30, group: bool = False, checks=(), description: str = "",
                      **kw) -> Case:
    rng = np.random.default_rng(seed)
    n = n_train + 400
    Xc = mixed_features(rng, n, k)
    X = Xc
    if nan_cols:
        X = inject(rng, X, nan_cols, nan_frac, NAN)
    if zero_cols:
        X = inject(rng, X, zero_cols, zero_frac, 0.0)
    y = label_fn(rng, X)
    grp = make_groups(rng, n_train) if group else None
    Xtr, Xord, Xbase = split_sets(X, Xc, n_train)
    p = dict(COMMON_PARAMS)
    p.update({"seed": seed, "num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 20})
    p.update(params)
    return Case(name=name, seed=seed, params=p, num_boost_round=rounds, X_train=Xtr, y_train=y[:n_train],
                X_ordinary=Xord, X_base=Xbase, group=grp, checks=list(checks), description=description, **kw)


def cases() -> List[Case]:
    out: List[Case] = []
    nan_fx = {0: 2.0, 1: -1.5, 3: 1.0, 5: -2.5}

    # --- regression family -------------------------------------------------
    out.append(simple_numpy_case(
        "regression_nan", 101, {"objective": "regression"},
        lambda rng, X: 3.0 * signal(X, nan_fx) + rng.normal(0, 0.3, X.shape[0]),
        nan_cols=(0, 1, 3, 5), nan_frac=0.15,
        checks=[objective_is("regression"), has_missing_type(2)],
        description="L2 regression; training data has NaNs so splits get missing type NaN "
                    "(decision_type bits 2-3 = 2), both default directions"))

    zero_fx = {0: 2.0, 1: -1.5, 3: 1.0, 4: -2.0}

    def zero_label(rng, X):
        Xz = X.copy()
        Xz[Xz == 0.0] = NAN
        return 3.0 * signal(Xz, zero_fx) + rng.normal(0, 0.3, X.shape[0])

    out.append(simple_numpy_case(
        "regression_zero", 102, {"objective": "regression", "zero_as_missing": True}, zero_label,
        zero_cols=(0, 1, 3, 4), zero_frac=0.3, nan_cols=(0,), nan_frac=0.05,
        checks=[objective_is("regression"), has_missing_type(1)],
        description="zero_as_missing=True: missing type Zero (bits 2-3 = 1); zeros and NaNs are missing"))

    out.append(simple_numpy_case(
        "regression_none", 103, {"objective": "regression"},
        lambda rng, X: 3.0 * signal(X) + rng.normal(0, 0.3, X.shape[0]),
        k=6, checks=[objective_is("regression"), only_missing_type(0)],
        description="no missing values in training: missing type None everywhere "
                    "(NaN input is treated as 0.0)"))

    out.append(simple_numpy_case(
        "regression_sqrt", 104, {"objective": "regression", "reg_sqrt": True},
        lambda rng, X: np.exp(1.2 * signal(X)) * 5.0 - 1.0 + rng.normal(0, 0.3, X.shape[0]),
        nan_cols=(1,), nan_frac=0.1,
        checks=[objective_is("regression sqrt")],
        description="reg_sqrt=True (labels of both signs): output = sign(raw)*raw^2"))

    out.append(simple_numpy_case(
        "regression_l1", 105, {"objective": "regression_l1"},
        lambda rng, X: 3.0 * signal(X) + rng.laplace(0, 0.5, X.shape[0]),
        nan_cols=(0,), nan_frac=0.1, checks=[objective_is("regression_l1")],
        description="L1 regression"))

    def outlier_label(rng, X):
        y = 3.0 * signal(X) + rng.normal(0, 0.3, X.shape[0])
        m = rng.random(X.shape[0]) < 0.03
        y[m] += rng.normal(0, 20.0, int(m.sum()))
        return y

    out.append(simple_numpy_case(
        "huber", 106, {"objective": "huber", "alpha": 1.5}, outlier_label,
        checks=[objective_is("huber")], description="Huber loss (alpha=1.5), labels with outliers"))
    out.append(simple_numpy_case(
        "fair", 107, {"objective": "fair", "fair_c": 0.5}, outlier_label,
        checks=[objective_is("fair")], description="Fair loss (fair_c=0.5)"))
    out.append(simple_numpy_case(
        "quantile", 108, {"objective": "quantile", "alpha": 0.8},
        lambda rng, X: 3.0 * signal(X) + rng.gamma(2.0, 1.0, X.shape[0]),
        nan_cols=(3,), nan_frac=0.1, checks=[objective_is("quantile")],
        description="quantile regression alpha=0.8"))
    out.append(simple_numpy_case(
        "mape", 109, {"objective": "mape"},
        lambda rng, X: 20.0 + 6.0 * signal(X) + rng.normal(0, 1.0, X.shape[0]).clip(-5, 5),
        checks=[objective_is("mape")], description="MAPE regression (positive labels)"))

    # --- classification ----------------------------------------------------
    def binary_label(rng, X):
        p = 1.0 / (1.0 + np.exp(-2.0 * signal(X, nan_fx)))
        return (rng.random(X.shape[0]) < p).astype(np.float64)

    out.append(simple_numpy_case(
        "binary", 110, {"objective": "binary", "sigmoid": 0.7}, binary_label,
        nan_cols=(0, 3), nan_frac=0.1, checks=[objective_is("binary sigmoid:0.7")],
        description="binary with sigmoid=0.7: output = 1/(1+exp(-0.7*raw))"))

    def multiclass_label(rng, X):
        n = X.shape[0]
        s1 = signal(X, nan_fx)
        s2 = signal(X[:, ::-1])
        logits = np.column_stack([np.zeros(n), 1.5 * s1, 1.5 * s2 - 0.5 * s1]) + rng.gumbel(0, 0.7, (n, 3))
        return logits.argmax(axis=1).astype(np.float64)

    out.append(simple_numpy_case(
        "multiclass", 111, {"objective": "multiclass", "num_class": 3}, multiclass_label,
        nan_cols=(0, 1), nan_frac=0.1, rounds=20, checks=[objective_is("multiclass num_class:3")],
        description="softmax multiclass, 3 classes (trees interleaved by class)"))
    out.append(simple_numpy_case(
        "multiclassova", 112, {"objective": "multiclassova", "num_class": 3, "sigmoid": 1.3},
        multiclass_label, nan_cols=(0, 1), nan_frac=0.1, rounds=20,
        checks=[objective_is("multiclassova num_class:3 sigmoid:1.3")],
        description="one-vs-all multiclass, 3 classes, sigmoid=1.3 (outputs not normalised)"))

    def prob_label(rng, X):
        return 1.0 / (1.0 + np.exp(-(2.0 * signal(X) + rng.normal(0, 0.5, X.shape[0]))))

    out.append(simple_numpy_case(
        "cross_entropy", 113, {"objective": "cross_entropy"}, prob_label,
        nan_cols=(1,), nan_frac=0.1, checks=[objective_is("cross_entropy")],
        description="cross_entropy (xentropy) with labels in [0,1]: sigmoid output"))
    out.append(simple_numpy_case(
        "cross_entropy_lambda", 114, {"objective": "cross_entropy_lambda"}, prob_label,
        nan_cols=(1,), nan_frac=0.1, checks=[objective_is("cross_entropy_lambda")],
        description="cross_entropy_lambda (xentlambda): output = log1p(exp(raw))"))

    # --- count / positive regression ---------------------------------------
    out.append(simple_numpy_case(
        "poisson", 115, {"objective": "poisson"},
        lambda rng, X: rng.poisson(np.exp(0.8 * signal(X) + 0.5)).astype(np.float64),
        nan_cols=(3,), nan_frac=0.1, checks=[objective_is("poisson")],
        description="Poisson regression: output = exp(raw)"))
    out.append(simple_numpy_case(
        "gamma", 116, {"objective": "gamma"},
        lambda rng, X: rng.gamma(2.0, np.exp(0.8 * signal(X) + 1.0) / 2.0),
        checks=[objective_is("gamma")], description="Gamma regression: output = exp(raw)"))

    def tweedie_label(rng, X):
        mu = np.exp(0.8 * signal(X))
        cnt = rng.poisson(mu)
        return np.array([rng.gamma(2.0, 1.0, c).sum() if c else 0.0 for c in cnt])

    out.append(simple_numpy_case(
        "tweedie", 117, {"objective": "tweedie", "tweedie_variance_power": 1.3}, tweedie_label,
        nan_cols=(0,), nan_frac=0.1, checks=[objective_is("tweedie")],
        description="Tweedie regression (variance power 1.3, many zero labels): output = exp(raw)"))

    # --- ranking -----------------------------------------------------------
    def rel_label(rng, X):
        s = 1.5 * signal(X, nan_fx) + rng.normal(0, 0.5, X.shape[0])
        return np.digitize(s, [-0.5, 0.5, 1.2, 2.0]).astype(np.float64)

    out.append(simple_numpy_case(
        "lambdarank", 118, {"objective": "lambdarank"}, rel_label, nan_cols=(0, 5), nan_frac=0.1,
        group=True, checks=[objective_is("lambdarank")],
        description="lambdarank (query groups of 5-30 docs); predict = raw score"))
    out.append(simple_numpy_case(
        "rank_xendcg", 119, {"objective": "rank_xendcg"}, rel_label, nan_cols=(0, 5), nan_frac=0.1,
        group=True, checks=[objective_is("rank_xendcg")],
        description="rank_xendcg (query groups); predict = raw score"))

    out.append(categorical_many_case())
    out.append(linear_tree_case())
    out.append(random_forest_case())
    out.append(deep_case())
    out.append(pandas_categorical_case())
    out.append(pandas_numeric_categories_case())
    out.append(single_leaf_case())
    out.append(constant_label_case())
    out.append(dart_case())
    out.append(bench_case())
    return out


def categorical_many_case() -> Case:
    seed = 201
    rng = np.random.default_rng(seed)
    n_train, n = 5000, 5400
    k = 7
    n_big, n_small = 120, 4
    Xc = mixed_features(rng, n, k)
    # ~120 categories with skewed but non-zero frequencies
    w = 1.0 / np.arange(1, n_big + 1) ** 0.6
    perm = rng.permutation(n_big)
    big = rng.choice(n_big, size=n, p=w / w.sum())
    Xc[:, 2] = perm[big].astype(np.float64)
    Xc[:, 5] = rng.integers(0, n_small, n).astype(np.float64)
    X = inject(rng, Xc, (2, 0), 0.03, NAN)
    eff_big = rng.normal(0, 1.5, n_big)
    eff_small = np.array([0.0, 1.2, -0.8, 0.5])
    num = np.delete(X, [2, 5], axis=1)
    c2 = X[:, 2]
    y = (2.0 * signal(num)
         + np.where(np.isnan(c2), 1.0, eff_big[np.nan_to_num(c2).astype(int)])
         + eff_small[X[:, 5].astype(int)]
         + rng.normal(0, 0.3, n))
    p = dict(COMMON_PARAMS)
    p.update({"seed": seed, "objective": "regression", "num_leaves": 31, "learning_rate": 0.1,
              "min_data_in_leaf": 10, "cat_smooth": 1.0, "cat_l2": 1.0, "min_data_per_group": 5})
    return Case(name="categorical_many", seed=seed, params=p, num_boost_round=50,
                X_train=X[:n_train], y_train=y[:n_train], X_ordinary=X[n_train:], X_base=Xc[n_train:],
                categorical=[2, 5], checks=[has_categorical_splits(min_words=3), no_pandas_categorical],
                description="integer-coded categorical features via categorical_feature=[2,5]: "
                            "feature 2 has 120 categories (bitsets up to 4 x 32-bit words, "
                            "many-vs-many splits), feature 5 has 4 (one-vs-rest splits, "
                            "max_cat_to_onehot=4); NaN in feature 2")


def linear_tree_case() -> Case:
    seed = 202
    rng = np.random.default_rng(seed)
    n_train, n, k = 3000, 3400, 6
    Xc = mixed_features(rng, n, k)
    X = inject(rng, Xc, (0, 1, 3), 0.1, NAN)
    Xf = np.nan_to_num(X)
    y = (2.0 * Xf[:, 0] + 0.5 * Xf[:, 1] * (Xf[:, 2] > 3) - 0.8 * np.log1p(Xf[:, 3]) + 0.3 * Xf[:, 4]
         + np.where(np.isnan(X[:, 1]), 1.5, 0.0) + rng.normal(0, 0.2, n))
    p = dict(COMMON_PARAMS)
    p.update({"seed": seed, "objective": "regression", "linear_tree": True, "linear_lambda": 0.01,
              "num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 30})
    return Case(name="linear_tree", seed=seed, params=p, num_boost_round=40,
                X_train=X[:n_train], y_train=y[:n_train], X_ordinary=X[n_train:], X_base=Xc[n_train:],
                checks=[has_linear, has_missing_type(2)],
                description="linear_tree=True: leaves hold linear models (leaf_const, leaf_coeff, "
                            "leaf_features); NaN in a leaf's linear feature falls back to leaf_value")


def random_forest_case() -> Case:
    seed = 203
    rng = np.random.default_rng(seed)
    n_train, n, k = 3000, 3400, 8
    Xc = mixed_features(rng, n, k)
    X = inject(rng, Xc, (0, 3), 0.1, NAN)
    p_ = 1.0 / (1.0 + np.exp(-2.0 * signal(X, {0: 1.5, 3: -1.0})))
    y = (rng.random(n) < p_).astype(np.float64)
    p = dict(COMMON_PARAMS)
    p.update({"seed": seed, "objective": "binary", "boosting": "rf", "bagging_freq": 1,
              "bagging_fraction": 0.7, "feature_fraction": 0.8, "num_leaves": 31, "min_data_in_leaf": 20})
    return Case(name="random_forest", seed=seed, params=p, num_boost_round=30,
                X_train=X[:n_train], y_train=y[:n_train], X_ordinary=X[n_train:], X_base=Xc[n_train:],
                checks=[has_line("average_output"), objective_is("binary sigmoid:1")],
                description="boosting=rf with binary objective: average_output (raw = mean of trees, "
                            "then sigmoid)")


def deep_case() -> Case:
    seed = 204
    rng = np.random.default_rng(seed)
    n_train, n, k = 6000, 6400, 10
    Xc = mixed_features(rng, n, k)
    X = inject(rng, Xc, (0, 1, 6), 0.05, NAN)
    y = 3.0 * signal(X, {0: 1.0, 6: -1.0}) + np.sin(3 * np.nan_to_num(X[:, 5])) + rng.normal(0, 0.2, n)
    p = dict(COMMON_PARAMS)
    p.update({"seed": seed, "objective": "regression", "num_leaves": 255, "min_data_in_leaf": 3,
              "min_sum_hessian_in_leaf": 0.0, "learning_rate": 0.1})
    return Case(name="deep", seed=seed, params=p, num_boost_round=30,
                X_train=X[:n_train], y_train=y[:n_train], X_ordinary=X[n_train:], X_base=Xc[n_train:],
                checks=[], description="num_leaves=255, min_data_in_leaf=3, 30 trees: deep trees")


COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
CITIES = ["Paris", "Tokyo", "New York", "São Paulo", "Lagos", "Berlin", "Mumbai", "Sydney",
          "Cairo", "Lima", "Oslo", "Seoul"]


def pandas_categorical_case() -> Case:
    seed = 205
    rng = np.random.default_rng(seed)
    n_train, n = 3000, 3400
    num = mixed_features(rng, n, 4)
    colour = rng.choice(len(COLOURS), n)
    city = rng.choice(len(CITIES), n, p=np.linspace(2.0, 0.5, len(CITIES)) / np.linspace(2.0, 0.5, len(CITIES)).sum())
    num_nan = inject(rng, num, (3,), 0.1, NAN)
    colour_missing = rng.random(n) < 0.03
    city_missing = rng.random(n) < 0.03
    eff_colour = rng.normal(0, 1.0, len(COLOURS))
    eff_city = rng.normal(0, 1.0, len(CITIES))
    y = (2.0 * signal(num_nan, {3: 1.0})
         + np.where(colour_missing, 0.7, eff_colour[colour])
         + np.where(city_missing, -0.7, eff_city[city])
         + rng.normal(0, 0.3, n))

    colour_dtype = pd.CategoricalDtype(categories=COLOURS)
    city_dtype = pd.CategoricalDtype(categories=CITIES)

    def frame(numv, colour_idx, city_idx, cmiss, tmiss):
        colour_s = [None if m else COLOURS[i] for i, m in zip(colour_idx, cmiss)]
        city_s = [None if m else CITIES[i] for i, m in zip(city_idx, tmiss)]
        return pd.DataFrame({
            "x0": numv[:, 0],
            "colour": pd.Categorical(colour_s, dtype=colour_dtype),
            "x1": numv[:, 1],
            "city": pd.Categorical(city_s, dtype=city_dtype),
            "x2": numv[:, 2],
            "x3": numv[:, 3],
        })

    full = frame(num_nan, colour, city, colour_missing, city_missing)
    clean = frame(num, colour, city, np.zeros(n, bool), np.zeros(n, bool))
    p = dict(COMMON_PARAMS)
    p.update({"seed": seed, "objective": "regression", "num_leaves": 15, "learning_rate": 0.1,
              "min_data_in_leaf": 20, "cat_smooth": 1.0, "min_data_per_group": 10})
    return Case(name="pandas_categorical", seed=seed, params=p, num_boost_round=40,
                X_train=full.iloc[:n_train].reset_index(drop=True), y_train=y[:n_train],
                X_ordinary=full.iloc[n_train:].reset_index(drop=True),
                X_base=clean.iloc[n_train:].reset_index(drop=True),
                checks=[has_pandas_categorical, has_categorical_splits(1)],
                description="trained from a pandas DataFrame with two category-dtype string columns "
                            "(colour: 8 categories, city: 12 incl. 'New York' and non-ASCII 'São Paulo'; "
                            "categories in a non-sorted order): model text ends with a "
                            "pandas_categorical: JSON line; data.csv holds strings, '' = missing, "
                            "'__unseen__' = unseen category (LightGBM maps it to NaN)")


BUCKETS = [3, 7, 11, 20, 42]


def pandas_numeric_categories_case() -> Case:
    seed = 210
    rng = np.random.default_rng(seed)
    n_train, n = 3000, 3400
    num = mixed_features(rng, n, 3)
    num_nan = inject(rng, num, (2,), 0.1, NAN)
    weights = np.array([3.0, 2.0, 2.0, 1.0, 1.0])
    bucket = rng.choice(len(BUCKETS), n, p=weights / weights.sum())
    bucket_missing = rng.random(n) < 0.03
    eff_bucket = np.array([1.2, -0.9, 0.4, -1.5, 0.8])
    y = (2.0 * signal(num_nan, {2: 1.0})
         + np.where(bucket_missing, 0.3, eff_bucket[bucket])
         + rng.normal(0, 0.3, n))
    dtype = pd.CategoricalDtype(categories=BUCKETS)

    def frame(numv, missing):
        values = [None if m else BUCKETS[i] for i, m in zip(bucket, missing)]
        return pd.DataFrame({
            "x0": numv[:, 0],
            "bucket": pd.Categorical(values, dtype=dtype),
            "x1": numv[:, 1],
            "x2": numv[:, 2],
        })

    full = frame(num_nan, bucket_missing)
    clean = frame(num, np.zeros(n, bool))
    p = dict(COMMON_PARAMS)
    p.update({"seed": seed, "objective": "regression", "num_leaves": 15, "learning_rate": 0.1,
              "min_data_in_leaf": 20, "cat_smooth": 1.0, "min_data_per_group": 10})
    return Case(name="pandas_numeric_categories", seed=seed, params=p, num_boost_round=30,
                X_train=full.iloc[:n_train].reset_index(drop=True), y_train=y[:n_train],
                X_ordinary=full.iloc[n_train:].reset_index(drop=True),
                X_base=clean.iloc[n_train:].reset_index(drop=True),
                checks=[has_line("pandas_categorical:[[3, 7, 11, 20, 42]]"), has_categorical_splits(1)],
                service_rows=True,
                description="trained from a pandas DataFrame whose category column `bucket` has the "
                            "integer categories [3, 7, 11, 20, 42] (codes 0-4): data.csv writes the "
                            "categories as numbers (3.0); non-category numbers, '' and '__unseen__' "
                            "are NaN for LightGBM; service_rows.json gives the JSON-able rows")


def single_leaf_case() -> Case:
    # Multiclass where class 2 is rare: with min_sum_hessian_in_leaf larger than half of that
    # class's total hessian, class-2 trees can never split, so every class-2 tree (after the first
    # constant one) is a single leaf, while classes 0/1 keep growing.
    seed = 206
    rng = np.random.default_rng(seed)
    n_train, n, k = 3000, 3400, 6
    Xc = mixed_features(rng, n, k)
    X = Xc
    s = signal(X)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-2 * s))).astype(np.float64)
    rare = rng.random(n) < 0.01
    y[rare] = 2.0
    p = dict(COMMON_PARAMS)
    p.update({"seed": seed, "objective": "multiclass", "num_class": 3, "num_leaves": 7,
              "min_data_in_leaf": 20, "min_sum_hessian_in_leaf": 30.0, "learning_rate": 0.1})
    return Case(name="single_leaf", seed=seed, params=p, num_boost_round=20,
                X_train=X[:n_train], y_train=y[:n_train], X_ordinary=X[n_train:], X_base=Xc[n_train:],
                checks=[has_single_leaf, objective_is("multiclass num_class:3")],
                description="multiclass where the rare class-2 trees can never split "
                            "(min_sum_hessian_in_leaf): many num_leaves=1 trees mixed with normal ones")


def constant_label_case() -> Case:
    seed = 207
    rng = np.random.default_rng(seed)
    n_train, n, k = 1000, 1400, 5
    Xc = mixed_features(rng, n, k)
    X = inject(rng, Xc, (0,), 0.1, NAN)
    y = np.full(n, 3.25)
    p = dict(COMMON_PARAMS)
    p.update({"seed": seed, "objective": "regression", "num_leaves": 15})
    return Case(name="constant_label", seed=seed, params=p, num_boost_round=10,
                X_train=X[:n_train], y_train=y[:n_train], X_ordinary=X[n_train:], X_base=Xc[n_train:],
                n_ordinary=40, max_thresholds=0,
                checks=[has_single_leaf], description="constant label: training stops after one "
                "iteration; the model is one num_leaves=1 tree holding the label mean (no splits at all)")


def dart_case() -> Case:
    seed = 208
    rng = np.random.default_rng(seed)
    n_train, n, k = 3000, 3400, 8
    Xc = mixed_features(rng, n, k)
    X = inject(rng, Xc, (1, 3), 0.1, NAN)
    y = 3.0 * signal(X, {1: -1.0, 3: 1.0}) + rng.normal(0, 0.3, n)
    p = dict(COMMON_PARAMS)
    p.update({"seed": seed, "objective": "regression", "boosting": "dart", "drop_rate": 0.15,
              "skip_drop": 0.3, "num_leaves": 15, "learning_rate": 0.1})
    return Case(name="dart", seed=seed, params=p, num_boost_round=40,
                X_train=X[:n_train], y_train=y[:n_train], X_ordinary=X[n_train:], X_base=Xc[n_train:],
                description="boosting=dart, 40 trees (leaf values already rescaled in the text)")


def bench_data(rng: np.random.Generator, n: int):
    """The benchmark distribution: 20 features, 18 numeric with ~10% NaN, two categorical
    (50 and 6 categories), a binary label.  Returns X, the NaN-free X, y, feature names
    and the categorical column indices.  ``tools/gen_bench_models.py`` shares it."""
    k = 20
    cat_a, cat_b = 4, 11
    n_cat_a, n_cat_b = 50, 6
    Xc = mixed_features(rng, n, k)
    Xc[:, cat_a] = rng.integers(0, n_cat_a, n).astype(np.float64)
    Xc[:, cat_b] = rng.integers(0, n_cat_b, n).astype(np.float64)
    num_cols = [j for j in range(k) if j not in (cat_a, cat_b)]
    X = inject(rng, Xc, num_cols + [cat_a], 0.1, NAN)
    eff_a = rng.normal(0, 1.0, n_cat_a)
    eff_b = rng.normal(0, 0.7, n_cat_b)
    num = X[:, num_cols]
    logit = (1.5 * signal(num, {j: (0.8 if j % 2 else -0.8) for j in range(len(num_cols))})
             + np.where(np.isnan(X[:, cat_a]), 0.5, eff_a[np.nan_to_num(X[:, cat_a]).astype(int)])
             + eff_b[X[:, cat_b].astype(int)] - 0.5)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
    names = ["cat_a" if j == cat_a else "cat_b" if j == cat_b else f"num_{j:02d}" for j in range(k)]
    return X, Xc, y, names, [cat_a, cat_b]


def bench_case() -> Case:
    seed = 209
    rng = np.random.default_rng(seed)
    n_train, n_pool = 10000, 2000
    X, Xc, y, names, (cat_a, cat_b) = bench_data(rng, n_train + n_pool)
    p = dict(COMMON_PARAMS)
    p.update({"seed": seed, "objective": "binary", "num_leaves": 63, "learning_rate": 0.05,
              "min_data_in_leaf": 20, "feature_fraction": 0.9, "bagging_fraction": 0.8, "bagging_freq": 1,
              "cat_smooth": 5.0, "min_data_per_group": 20})
    return Case(name="bench", seed=seed, params=p, num_boost_round=300,
                X_train=X[:n_train], y_train=y[:n_train], X_ordinary=X[n_train:], X_base=Xc[n_train:],
                categorical=[cat_a, cat_b], feature_names=names, n_total=1000, max_thresholds=60,
                max_cat_splits=10, checks=[has_categorical_splits(2), has_missing_type(2)],
                description="benchmark model: binary, 300 trees x 63 leaves, 20 features "
                            "(18 numeric with ~10% NaN, 2 categorical), 1,000 rows")


# ----------------------------------------------------------------------------
# Input rows
# ----------------------------------------------------------------------------

def fmt(x) -> str:
    if isinstance(x, str):
        return x
    return repr(float(x))


def collect_splits(booster: lgb.Booster):
    """(numeric, categorical) splits from dump_model(): sets of (feature, threshold)."""
    numeric = set()
    categorical = set()
    dump = booster.dump_model()

    def walk(node):
        if "split_index" not in node:
            return
        f = node["split_feature"]
        if node["decision_type"] == "<=":
            numeric.add((f, float(node["threshold"])))
        else:
            cats = tuple(int(c) for c in str(node["threshold"]).split("||"))
            categorical.add((f, cats))
        walk(node["left_child"])
        walk(node["right_child"])

    for t in dump["tree_info"]:
        walk(t["tree_structure"])
    return sorted(numeric), sorted(categorical)


def text_thresholds(m: ModelText) -> set:
    out = set()
    for t in m.trees:
        if t.get("threshold"):
            dts = [int(x) for x in t["decision_type"].split()]
            fs = [int(x) for x in t["split_feature"].split()]
            for f, d, th in zip(fs, dts, t["threshold"].split()):
                if not d & 1:
                    out.add((f, float(th)))
    return out


def build_rows(case: Case, booster: lgb.Booster, m: ModelText, feature_names: List[str]):
    rng = np.random.default_rng(case.seed + 7919)
    rows: List[list] = []
    notes: List[str] = []

    if case.is_pandas:
        df_ord: pd.DataFrame = case.X_ordinary
        df_base: pd.DataFrame = case.X_base
        cat_cols = [c for c in df_base.columns if isinstance(df_base[c].dtype, pd.CategoricalDtype)]

        def to_row(df, i):
            r = []
            for c in df.columns:
                v = df[c].iloc[i]
                if c in cat_cols:
                    if pd.isna(v):
                        r.append("")
                    elif numeric_categories(df[c].cat.categories):
                        r.append(float(v))
                    else:
                        r.append(str(v))
                else:
                    r.append(float(v))
            return r
        ord_rows = [to_row(df_ord, i) for i in range(len(df_ord))]
        base_rows = [to_row(df_base, i) for i in range(len(df_base))]
        cat_idx = [list(df_base.columns).index(c) for c in cat_cols]
        pandas_cats = {list(df_base.columns).index(c): list(df_base[c].cat.categories) for c in cat_cols}
    else:
        ord_rows = [list(map(float, r)) for r in np.asarray(case.X_ordinary)]
        base_rows = [list(map(float, r)) for r in np.asarray(case.X_base)]
        cat_idx = list(case.categorical)
        pandas_cats = {}

    n_feat = len(feature_names)
    base_pos = [0]

    def base() -> int:
        """Index of the next clean base row; rows of one group share their base row."""
        k = base_pos[0] % len(base_rows)
        base_pos[0] += 1
        return k

    special_rows: List[list] = []
    special_notes: List[str] = []

    def add(j, v, note, b):
        r = list(base_rows[b])
        r[j] = v
        special_rows.append(r)
        shown = "<empty>" if isinstance(v, str) and v == "" else fmt(v)
        special_notes.append(f"{note} {feature_names[j]}={shown} base={b}")

    # 1. special values, one cell per row (all specials of a feature share one base row)
    for j in range(n_feat):
        b = base()
        if j in cat_idx:
            if case.is_pandas and numeric_categories(pandas_cats[j]):
                for v in numeric_category_specials(pandas_cats[j]):
                    add(j, v, "special", b)
            elif case.is_pandas:
                for v in PANDAS_CAT_SPECIALS:
                    add(j, v, "special", b)
            else:
                n_cats = int(np.nanmax(np.asarray(case.X_train)[:, j])) + 1
                for v in categorical_specials(n_cats):
                    add(j, v, "special", b)
        else:
            for v in NUMERIC_SPECIALS:
                add(j, v, "special", b)

    # 2. numeric thresholds: exactly on, one ulp above, one ulp below (same base row)
    numeric, categorical = collect_splits(booster)
    tt = text_thresholds(m)
    # dump_model() writes an infinite threshold as +-1e300 (Common::AvoidInf); the text has inf.
    numeric = sorted({(f, math.copysign(INF, t)) if abs(t) == 1e300 and (f, math.copysign(INF, t)) in tt
                      else (f, t) for f, t in numeric})
    check(set(numeric) == tt, "dump_model thresholds differ from the model text thresholds")
    if case.max_thresholds and numeric:
        take = min(case.max_thresholds, len(numeric))
        # always include the smallest-magnitude thresholds (near kZeroThreshold) and infinite ones
        by_mag = sorted(range(len(numeric)), key=lambda i: abs(numeric[i][1]))
        chosen = set(by_mag[:2])
        chosen.update(i for i in range(len(numeric)) if math.isinf(numeric[i][1]))
        rest = [i for i in range(len(numeric)) if i not in chosen]
        chosen.update(int(i) for i in rng.choice(rest, size=max(0, min(take - len(chosen), len(rest))),
                                                 replace=False))
        for i in sorted(chosen):
            f, t = numeric[i]
            b = base()
            add(f, t, "threshold", b)
            add(f, float(np.nextafter(t, INF)), "threshold+1ulp", b)
            add(f, float(np.nextafter(t, -INF)), "threshold-1ulp", b)

    # 3. categorical splits: categories inside the bitset and one outside (same base row)
    if categorical and case.max_cat_splits:
        take = min(case.max_cat_splits, len(categorical))
        # prefer the splits with the largest categories (multi-word bitsets)
        order = sorted(range(len(categorical)), key=lambda i: -max(categorical[i][1]))
        chosen = set(order[: take // 2])
        rest = [i for i in range(len(categorical)) if i not in chosen]
        chosen.update(int(i) for i in rng.choice(rest, size=min(take - len(chosen), len(rest)), replace=False))
        for i in sorted(chosen):
            f, cats = categorical[i]
            inside = [max(cats), int(rng.choice(cats))]
            outside = [c for c in range(max(cats) + 2) if c not in cats]
            picks = [(c, "cat_split_in") for c in dict.fromkeys(inside)]
            if outside:
                picks.append((int(rng.choice(outside)), "cat_split_out"))
            b = base()
            for c, note in picks:
                if case.is_pandas:
                    cats_list = pandas_cats[f]
                    if c >= len(cats_list):
                        continue
                    label = cats_list[c]
                    add(f, float(label) if numeric_categories(cats_list) else label, note, b)
                else:
                    add(f, float(c), note, b)

    # ordinary rows first
    if case.n_total is not None:
        n_ord = case.n_total - len(special_rows)
        check(n_ord >= 100, f"{case.name}: too many special rows ({len(special_rows)})")
    else:
        n_ord = case.n_ordinary
    check(n_ord <= len(ord_rows), "not enough ordinary rows")
    rows = ord_rows[:n_ord] + special_rows
    notes = ["ordinary"] * n_ord + special_notes
    return rows, notes, cat_idx, pandas_cats


def rows_to_X(case: Case, rows: List[list], feature_names: List[str], cat_idx: List[int],
              pandas_cats: Dict[int, list]):
    if not case.is_pandas:
        X = np.array(rows, dtype=np.float64)
        check(X.shape == (len(rows), len(feature_names)), "bad shape")
        return X
    cols = {}
    for j, name in enumerate(feature_names):
        vals = [r[j] for r in rows]
        if j in cat_idx:
            dtype = pd.CategoricalDtype(categories=pandas_cats[j])
            cols[name] = pd.Categorical([category_cell(v, pandas_cats[j]) for v in vals], dtype=dtype)
        else:
            cols[name] = np.array(vals, dtype=np.float64)
    return pd.DataFrame(cols)


def write_csv(path: Path, header: List[str], rows) -> None:
    for h in header:
        check(all(c not in h for c in ',"\n\r'), f"header field needs quoting: {h!r}")
    lines = [",".join(header)]
    for r in rows:
        cells = [fmt(x) for x in r]
        for c in cells:
            check(all(ch not in c for ch in ',"\n\r'), f"cell needs quoting: {c!r}")
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def pred_header(pred: np.ndarray) -> List[str]:
    if pred.ndim == 1:
        return ["prediction"]
    return [f"class_{i}" for i in range(pred.shape[1])]


def pred_rows(pred: np.ndarray):
    if pred.ndim == 1:
        return [[v] for v in pred]
    return [list(r) for r in pred]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equality, except that any NaN equals any NaN (the CSVs write every NaN as ``nan``)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    if not np.array_equal(na, nb):
        return False
    return np.array_equal(a[~na].view(np.int64), b[~nb].view(np.int64))


def generate(case: Case, out_root: Path) -> str:
    ds = lgb.Dataset(
        case.X_train, label=case.y_train, group=case.group,
        categorical_feature=case.categorical if case.categorical else "auto",
        feature_name=case.feature_names if case.feature_names else "auto",
        params=case.params, free_raw_data=False,
    )
    booster = lgb.train(case.params, ds, num_boost_round=case.num_boost_round)

    d = out_root / case.name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    model_path = d / "model.txt"
    booster.save_model(str(model_path))
    text = model_path.read_text(encoding="utf-8")
    m = ModelText(text)
    for c in case.checks:
        c(m)

    feature_names = m.header["feature_names"].split(" ")
    check(feature_names == booster.feature_name(), "feature_names line differs from booster.feature_name()")

    rows, notes, cat_idx, pandas_cats = build_rows(case, booster, m, feature_names)
    X = rows_to_X(case, rows, feature_names, cat_idx, pandas_cats)

    pred = booster.predict(X)
    raw = booster.predict(X, raw_score=True)
    # The fixtures must describe the *saved* model: predictions from the reloaded text must agree bitwise.
    loaded = lgb.Booster(model_file=str(model_path))
    check(same_bits(pred, loaded.predict(X)), "in-memory and reloaded model predictions differ")
    check(same_bits(raw, loaded.predict(X, raw_score=True)), "in-memory and reloaded raw scores differ")
    check(len(pred) == len(rows), "prediction count mismatch")

    write_csv(d / "data.csv", feature_names, rows)
    write_csv(d / "expected.csv", pred_header(pred), pred_rows(pred))
    write_csv(d / "raw.csv", pred_header(raw), pred_rows(raw))
    (d / "rows.txt").write_text("\n".join(notes) + "\n", encoding="utf-8")
    if case.service_rows:
        write_service_rows(d / "service_rows.json", case, feature_names, rows, notes, pred, cat_idx)
    return f"{case.name}: rows={len(rows)} {m.summary()}"


def json_number(x: float, category: bool):
    """A cell as a JSON value: NaN is null, a whole category number an integer."""
    if math.isnan(x):
        return None
    if category and x.is_integer() and abs(x) < 2.0 ** 53:
        return int(x)
    return x


def write_service_rows(path: Path, case: Case, feature_names: List[str], rows: List[list],
                       notes: List[str], pred: np.ndarray, cat_idx: List[int]) -> None:
    """The rows JSON can carry (no infinity, no text in a category column; '' is null), each
    with its category as a number and LightGBM's prediction."""
    out_rows = []
    for row, note, score in zip(rows, notes, pred):
        if any(isinstance(v, str) and v != "" for v in row):
            continue
        if any(not isinstance(v, str) and math.isinf(v) for v in row):
            continue
        features = {name: None if v == "" else json_number(float(v), j in cat_idx)
                    for j, (name, v) in enumerate(zip(feature_names, row))}
        out_rows.append({"note": note, "features": features, "expected": float(score)})
    check(len(out_rows) >= 100, f"{case.name}: only {len(out_rows)} rows for service_rows.json")
    doc = {
        "description": "Rows of data.csv that a JSON request can carry, each with its category "
                       "as a number (null = missing) and LightGBM's Booster.predict on a pandas "
                       "DataFrame whose category columns have the model's categories.",
        "model": "model.txt",
        "feature_names": feature_names,
        "categories": {feature_names[j]: list(case.X_train[feature_names[j]].cat.categories)
                       for j in cat_idx},
        "rows": out_rows,
    }
    # One row per line, so that a diff shows rows.
    def to_json(value) -> str:
        return json.dumps(value, default=lambda o: o.item(), ensure_ascii=False)

    head = [f" {to_json(k)}: {to_json(v)}" for k, v in doc.items() if k != "rows"]
    rows_text = ",\n".join(f"  {to_json(r)}" for r in out_rows)
    path.write_text("{\n" + ",\n".join(head) + ',\n "rows": [\n' + rows_text + "\n ]\n}\n",
                    encoding="utf-8")


def verify_service_rows(path: Path, booster: lgb.Booster) -> None:
    """Re-predicts the rows of a service_rows.json and compares bitwise with its scores."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    check(doc["feature_names"] == booster.feature_name(), f"{path}: feature names")
    cols = {}
    for name in doc["feature_names"]:
        vals = [r["features"][name] for r in doc["rows"]]
        if name in doc["categories"]:
            dtype = pd.CategoricalDtype(categories=doc["categories"][name])
            cols[name] = pd.Categorical(vals, dtype=dtype)
        else:
            cols[name] = np.array([NAN if v is None else v for v in vals], dtype=np.float64)
    want = np.array([r["expected"] for r in doc["rows"]], dtype=np.float64)
    check(same_bits(booster.predict(pd.DataFrame(cols)), want), f"{path}: predictions differ")


def verify_dir(d: Path) -> str:
    """Independent re-check of one written case: parse the files back, predict, compare bitwise."""
    import csv

    booster = lgb.Booster(model_file=str(d / "model.txt"))
    with open(d / "data.csv", newline="", encoding="utf-8") as f:
        recs = list(csv.reader(f))
    header, cells = recs[0], recs[1:]
    check(header == booster.feature_name(), f"{d.name}: data.csv header != model feature names")
    if booster.pandas_categorical:
        # category columns are, in order, the columns whose cells are not all numbers
        def numeric(c: str) -> bool:
            try:
                float(c)
                return True
            except ValueError:
                return False
        cat_cols = [j for j in range(len(header)) if not all(numeric(r[j]) for r in cells)]
        check(len(cat_cols) == len(booster.pandas_categorical), f"{d.name}: category columns not found")
        cols = {}
        for j, name in enumerate(header):
            vals = [r[j] for r in cells]
            if j in cat_cols:
                cats = booster.pandas_categorical[cat_cols.index(j)]
                cols[name] = pd.Categorical([category_cell(v, cats) for v in vals],
                                            dtype=pd.CategoricalDtype(categories=cats))
            else:
                cols[name] = np.array([float(v) for v in vals], dtype=np.float64)
        X = pd.DataFrame(cols)
    else:
        X = np.array([[float(v) for v in r] for r in cells], dtype=np.float64)
    for fname, raw in (("expected.csv", False), ("raw.csv", True)):
        with open(d / fname, newline="", encoding="utf-8") as f:
            erecs = list(csv.reader(f))
        want = np.array([[float(v) for v in r] for r in erecs[1:]], dtype=np.float64)
        got = booster.predict(X, raw_score=raw)
        got2 = got.reshape(len(cells), -1)
        check(erecs[0] == pred_header(got), f"{d.name}/{fname}: header {erecs[0]}")
        check(same_bits(got2, want), f"{d.name}/{fname}: predictions differ from LightGBM")
    n_notes = len((d / "rows.txt").read_text(encoding="utf-8").splitlines())
    check(n_notes == len(cells), f"{d.name}: rows.txt has {n_notes} lines for {len(cells)} rows")
    if (d / "service_rows.json").exists():
        verify_service_rows(d / "service_rows.json", booster)
    return f"{d.name}: ok ({len(cells)} rows)"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="output directory (default: tests/fixtures/engine under the repo root)")
    ap.add_argument("--only", default="", help="comma-separated case names to (re)generate")
    ap.add_argument("--verify", action="store_true",
                    help="do not train: re-read the fixtures in --out and check them against LightGBM")
    args = ap.parse_args(argv)

    versions = {"lightgbm": lgb.__version__, "numpy": np.__version__, "pandas": pd.__version__}
    for k, v in EXPECTED_VERSIONS.items():
        if versions[k] != v:
            print(f"warning: {k} {versions[k]} != pinned {v}; fixtures may differ", file=sys.stderr)

    if args.verify:
        dirs = sorted(p.parent for p in args.out.glob("*/model.txt"))
        check(bool(dirs), f"no fixtures under {args.out}")
        for d in dirs:
            print(verify_dir(d), flush=True)
        return 0

    all_cases = cases()
    names = [c.name for c in all_cases]
    check(len(set(names)) == len(names), "duplicate case names")
    wanted = [s for s in args.only.split(",") if s]
    for w in wanted:
        check(w in names, f"unknown case {w!r}; known: {', '.join(names)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for case in all_cases:
        if wanted and case.name not in wanted:
            continue
        print(generate(case, args.out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
