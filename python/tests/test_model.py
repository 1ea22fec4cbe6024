"""Model.predict against LightGBM: the committed engine fixtures (LightGBM 4.6.0
`Booster.predict` outputs, tests/fixtures/engine) through both the numpy and the
DataFrame path, pandas categoricals included, and LightGBM itself where installed."""

import json
import math

import numpy as np
import pandas as pd
import pytest

import giftrank
from conftest import FIXTURES, ROOT

ENGINE = FIXTURES / "engine"
CASES = sorted(p.name for p in ENGINE.iterdir() if (p / "model.txt").exists())
CATEGORICAL = {"pandas_categorical", "pandas_numeric_categories"}


def pandas_categorical(model_path):
    """The `pandas_categorical:` list of a LightGBM model file."""
    for line in model_path.read_text().splitlines():
        if line.startswith("pandas_categorical:"):
            return json.loads(line.split(":", 1)[1])
    return None


def frame_of(case):
    """The case's data.csv as LightGBM's fixture generator fed it: floats, and the pandas
    category columns with the training CategoricalDtype (numeric categories matched by
    value, text that is no number unseen)."""
    directory = ENGINE / case
    df = pd.read_csv(directory / "data.csv", float_precision="round_trip", dtype={
        c: object for c in CATEGORY_COLUMNS[case]})
    for column, categories in zip(CATEGORY_COLUMNS[case], pandas_categorical(directory / "model.txt")):
        values = [None if isinstance(v, float) and math.isnan(v) else v for v in df[column]]
        if not all(isinstance(c, str) for c in categories):
            values = [number_or_text(v) for v in values]
        df[column] = pd.Categorical(values, categories=categories)
    return df


def number_or_text(value):
    """A cell of a numeric category column as the generator put it in the DataFrame: the
    number it spells (as a Python float, which pandas matches to categories exactly), else
    the text itself (an unseen category)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


CATEGORY_COLUMNS = {"pandas_categorical": ["colour", "city"], "pandas_numeric_categories": ["bucket"]}


def expected(case, raw=False):
    table = pd.read_csv(ENGINE / case / ("raw.csv" if raw else "expected.csv"), float_precision="round_trip")
    values = table.to_numpy(dtype=np.float64)
    return values[:, 0] if values.shape[1] == 1 else values


def assert_close(actual, wanted):
    actual, wanted = np.asarray(actual), np.asarray(wanted)
    assert actual.shape == wanted.shape
    both_nan = np.isnan(actual) & np.isnan(wanted)
    same = (actual == wanted) | both_nan
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf
        close = np.abs(actual - wanted) <= 1e-9 * np.maximum(np.abs(wanted), 1e-300)
    bad = ~(same | close)
    assert not bad.any(), f"{bad.sum()} scores differ, first at {np.argwhere(bad)[0]}"


@pytest.mark.parametrize("case", [c for c in CASES if c not in CATEGORICAL])
def test_numpy_matches_lightgbm_fixtures(case):
    model = giftrank.Model(ENGINE / case / "model.txt")
    X = pd.read_csv(ENGINE / case / "data.csv", float_precision="round_trip").to_numpy(dtype=np.float64)
    assert_close(model.predict(X), expected(case))
    assert_close(model.predict(X, raw_score=True), expected(case, raw=True))
    # Columns by name: reversed order, an extra column, the same scores.
    df = pd.read_csv(ENGINE / case / "data.csv", float_precision="round_trip")
    df = df[df.columns[::-1]].assign(unused="text")
    assert_close(model.predict(df, n_jobs=2), expected(case))


@pytest.mark.parametrize("case", sorted(CATEGORICAL))
def test_pandas_categoricals_match_lightgbm_fixtures(case):
    model = giftrank.Model(ENGINE / case / "model.txt")
    df = frame_of(case)
    assert all(isinstance(df[c].dtype, pd.CategoricalDtype) for c in CATEGORY_COLUMNS[case])
    assert_close(model.predict(df), expected(case))
    assert_close(model.predict(df, raw_score=True), expected(case, raw=True))


def test_category_order_and_text_do_not_matter():
    case = "pandas_categorical"
    model = giftrank.Model(ENGINE / case / "model.txt")
    df = frame_of(case)
    # The categories given in another order (codes differ, values do not): LightGBM maps
    # them through the training list, and so do we.
    shuffled = df.copy()
    for column in CATEGORY_COLUMNS[case]:
        shuffled[column] = shuffled[column].cat.reorder_categories(
            list(shuffled[column].cat.categories)[::-1])
    assert_close(model.predict(shuffled), expected(case))
    # Plain text columns mean the same as categoricals.
    text = df.astype({c: object for c in CATEGORY_COLUMNS[case]})
    assert_close(model.predict(text), expected(case))


def test_properties_and_multiclass_shape():
    model = giftrank.Model(ENGINE / "multiclass" / "model.txt")
    text = (ENGINE / "multiclass" / "model.txt").read_text()
    names_line = next(l for l in text.splitlines() if l.startswith("feature_names="))
    assert model.feature_names == names_line.split("=", 1)[1].split()
    assert model.objective.startswith("multiclass")
    assert model.num_trees == text.count("\nTree=")
    X = pd.read_csv(ENGINE / "multiclass" / "data.csv", float_precision="round_trip").to_numpy()
    assert model.predict(X).shape == (len(X), 3)


def test_threads_give_the_same_scores_bit_for_bit():
    model = giftrank.Model(ROOT / "models" / "gift" / "2" / "direct.txt")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40_000, len(model.feature_names))) * 10
    X[rng.random(X.shape) < 0.1] = np.nan
    one = model.predict(X, n_jobs=1)
    assert np.array_equal(one, model.predict(X, n_jobs=2))
    assert np.array_equal(one, model.predict(X, n_jobs=-1))
    assert np.array_equal(one, model.predict(np.asfortranarray(X)))


lightgbm = pytest.importorskip("lightgbm")


@pytest.mark.parametrize("case", ["binary", "multiclass", "dart", "linear_tree", "regression_nan"])
def test_against_lightgbm_itself(case):
    path = ENGINE / case / "model.txt"
    booster = lightgbm.Booster(model_file=str(path))
    X = pd.read_csv(ENGINE / case / "data.csv", float_precision="round_trip").to_numpy(dtype=np.float64)
    assert_close(giftrank.Model(path).predict(X), booster.predict(X))


def test_categorical_dataframe_against_lightgbm_itself():
    path = ENGINE / "pandas_categorical" / "model.txt"
    booster = lightgbm.Booster(model_file=str(path))
    df = frame_of("pandas_categorical")
    assert_close(giftrank.Model(path).predict(df), booster.predict(df))


def test_shipped_direct_model_against_lightgbm_itself():
    path = ROOT / "models" / "gift" / "2" / "direct.txt"
    df = pd.read_csv(ROOT / "models" / "gift" / "heldout.csv.gz", nrows=5000, float_precision="round_trip")
    model = giftrank.Model(path)
    booster = lightgbm.Booster(model_file=str(path))
    assert_close(model.predict(df), booster.predict(df[model.feature_names]))
    assert not math.isnan(float(model.predict(df)[0]))
