"""Every bad input is a Python exception naming what is wrong (never a crash), and a
missing feature column is warned about once and scored as missing, as the CLI does."""

import shutil

import numpy as np
import pandas as pd
import pytest

import giftrank
from conftest import FIXTURES, ROOT

DIRECT = ROOT / "models" / "gift" / "2" / "direct.txt"
PROFILES = FIXTURES / "profiles"
CATEGORICAL = FIXTURES / "engine" / "pandas_categorical" / "model.txt"


@pytest.fixture(scope="module")
def model():
    return giftrank.Model(DIRECT)


@pytest.fixture(scope="module")
def bundle():
    return giftrank.Bundle(PROFILES / "bundle")


@pytest.fixture(scope="module")
def rows():
    return pd.read_csv(PROFILES / "data.csv").head(40)


def test_wrong_number_of_columns(model):
    width = len(model.feature_names)
    with pytest.raises(ValueError, match=f"X has {width - 1} columns, but the model has {width} features"):
        model.predict(np.zeros((3, width - 1)))
    with pytest.raises(ValueError, match="must be 2-D"):
        model.predict(np.zeros(width))


def test_non_numeric_values(model):
    with pytest.raises(TypeError, match="give numbers"):
        model.predict(np.array([["a"] * len(model.feature_names)]))
    df = pd.DataFrame({name: [1.0, 2.0] for name in model.feature_names})
    name = model.feature_names[0]
    df[name] = ["x", "y"]
    with pytest.raises(TypeError, match=f"column `{name}`.*pandas categories"):
        model.predict(df)
    df[name] = [[1], [2]]
    with pytest.raises(TypeError, match=f"column `{name}` holds list"):
        model.predict(df)
    df[name] = pd.to_datetime(["2024-01-01", "2024-01-02"])
    with pytest.raises(TypeError, match=f"column `{name}` has dtype datetime"):
        model.predict(df)


def test_missing_column_is_warned_and_missing(model):
    df = pd.DataFrame({name: [1.0, 2.0] for name in model.feature_names})
    gone = model.feature_names[1]
    with pytest.warns(UserWarning, match=f"no column `{gone}`") as record:
        scores = model.predict(df.drop(columns=[gone]))
    assert len([w for w in record if gone in str(w.message)]) == 1
    assert np.array_equal(scores, model.predict(df.assign(**{gone: np.nan})))


def test_bad_arguments_and_files(model, tmp_path):
    with pytest.raises(ValueError, match="n_jobs must be >= 1"):
        model.predict(np.zeros((1, len(model.feature_names))), n_jobs=0)
    with pytest.raises(ValueError, match="invalid model"):
        giftrank.Model(tmp_path / "absent.txt")
    (tmp_path / "junk.txt").write_text("not a model\n")
    with pytest.raises(ValueError, match="invalid model"):
        giftrank.Model(tmp_path / "junk.txt")
    with pytest.raises(TypeError, match="not a profile|expected a pandas DataFrame"):
        giftrank.Bundle(PROFILES / "bundle").rank(np.zeros((2, 2)))


def test_a_bundle_that_does_not_validate(tmp_path):
    broken = tmp_path / "bundle"
    shutil.copytree(PROFILES / "bundle", broken)
    canary = (broken / "canary.csv").read_text().splitlines()
    header, first = canary[0].split(","), canary[1].split(",")
    first[header.index("expected_direct")] = "12345.0"
    (broken / "canary.csv").write_text("\n".join([canary[0], ",".join(first), *canary[2:]]) + "\n")
    with pytest.raises(ValueError, match="canary"):
        giftrank.Bundle(broken)
    with pytest.raises(ValueError, match="bundle"):
        giftrank.Bundle(tmp_path / "nowhere")


def test_refused_rankings_say_why_as_rank_does(bundle, rows):
    with pytest.raises(ValueError, match="profile: `main` is not a profile"):
        bundle.rank(rows, profile="main")
    with pytest.raises(ValueError, match=r"m: 51 is outside 1..=50"):
        bundle.rank(rows, m=51)
    with pytest.raises(ValueError, match="m: 0 must be at least 1"):
        bundle.rank(rows, m=0)
    with pytest.raises(ValueError, match="profile `direct` has no recall"):
        bundle.rank(rows, profile="direct", m=3)
    with pytest.raises(ValueError, match=r"alpha: 1.5 is outside \[0, 1\]"):
        bundle.rank(rows, alpha=1.5)
    with pytest.raises(TypeError, match="m must be an int"):
        bundle.rank(rows, m="7")
    text = rows.assign(f0="a")
    with pytest.raises(ValueError, match="column `f0`: holds text"):
        bundle.rank(text)
    with pytest.raises(ValueError, match="no column `nope`"):
        bundle.rank(rows, group="nope")
    with pytest.raises(ValueError, match="group column `g` is missing in row 2"):
        bundle.rank(rows.assign(g=["a", None] + ["b"] * (len(rows) - 2)), group="g")


def test_refused_evaluations(bundle, rows):
    with pytest.raises(ValueError, match="no column `label`"):
        bundle.evaluate(rows, "label")
    bad = rows.copy()
    bad.loc[3, "gift_amount"] = -2.0
    with pytest.raises(ValueError, match=r"label column `gift_amount`, row 4: the label is negative"):
        bundle.evaluate(bad, "gift_amount")
    with pytest.raises(ValueError, match="--m"):
        bundle.evaluate(rows, "gift_amount", m=[0])
    with pytest.raises(ValueError, match="--alpha"):
        bundle.evaluate(rows, "gift_amount", alpha=[2])
    with pytest.raises(TypeError, match="column `gift_amount`.*must hold numbers"):
        bundle.evaluate(rows.assign(gift_amount="x"), "gift_amount")
    with pytest.raises(ValueError, match="no rows"):
        bundle.evaluate(rows.head(0), "gift_amount")


def test_text_for_a_categorical_feature_is_fine():
    model = giftrank.Model(CATEGORICAL)
    df = pd.DataFrame({"x0": [0.4], "colour": ["never-seen"], "x1": [5.0], "city": [None],
                       "x2": [2.0], "x3": [8.0]})
    assert np.isfinite(model.predict(df)).all()
    with pytest.raises(TypeError, match="the category"):
        model.predict(df.assign(colour=pd.Categorical([(1, 2)])))
