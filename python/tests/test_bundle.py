"""Bundle.rank against `/rank` (the committed profile fixtures that the service's own
tests answer: tests/fixtures/profiles/requests.json) and Bundle.evaluate against
`giftrank eval --json` run on the same rows, grouped and not."""

import json
import math

import numpy as np
import pandas as pd
import pytest

import giftrank
from conftest import FIXTURES, run_eval

PROFILES = FIXTURES / "profiles"
EVAL = FIXTURES / "eval"
CASES = json.loads((PROFILES / "requests.json").read_text())


def frame_of(body):
    """A `/rank` body as a DataFrame with the same meaning: a candidate's own value (its
    null is missing), else the context's, else missing."""
    context = body.get("context") or {}
    rows = []
    for candidate in body["candidates"]:
        if "values" in candidate:
            own = dict(zip(body["feature_names"], candidate["values"]))
        else:
            own = dict(candidate.get("features") or {})
        rows.append({**context, **own})
    names = []
    for row in rows:
        names.extend(n for n in row if n not in names)
    data = {n: [np.nan if r.get(n) is None else r.get(n) for r in rows] for n in names}
    return pd.DataFrame(data, columns=names, dtype=np.float64)


def assert_items(result, body, expected):
    ids = [c["id"] for c in body["candidates"]]
    k = body.get("k", len(ids))
    got = result.head(k)
    assert len(got) == len(expected["items"])
    for (_, row), item in zip(got.iterrows(), expected["items"]):
        assert ids[int(row["row"])] == item["id"]
        for field in ("score", "direct_score"):
            assert math.isclose(row[field], item[field], rel_tol=1e-9, abs_tol=1e-300), field
        if item["stage2_score"] is None:
            assert math.isnan(row["stage2_score"]) and not row["reranked"]
        else:
            assert math.isclose(row["stage2_score"], item["stage2_score"], rel_tol=1e-9)
            assert row["reranked"]
    assert (result["m"] == expected["m"]).all()


@pytest.fixture(scope="module")
def bundle():
    return giftrank.Bundle(PROFILES / "bundle")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_rank_answers_as_the_service(bundle, case):
    body = case["body"]
    result = bundle.rank(frame_of(body), profile=body.get("profile"), m=body.get("m"),
                         alpha=body.get("alpha"))
    assert_items(result, body, case["expected"])
    assert result.attrs["profile"] == case["expected"]["profile"]
    assert list(result["rank"]) == list(range(len(result)))


def test_rank_per_group_is_each_request_alone(bundle):
    cases = [c for c in CASES if not {"profile", "m", "alpha"} & set(c["body"]) and c["body"]["candidates"]]
    assert len(cases) >= 5
    frames = [frame_of(c["body"]).assign(request=c["name"]) for c in cases]
    both = pd.concat(frames, ignore_index=True)
    result = bundle.rank(both, group="request")
    assert list(result["request"].unique()) == [c["name"] for c in cases]
    for case, frame in zip(cases, frames):
        part = result[result["request"] == case["name"]].copy()
        part["row"] -= int(part["row"].min())
        assert_items(part, case["body"], case["expected"])


def test_profiles_are_listed_in_declaration_order(bundle):
    profiles = bundle.profiles
    assert [p["name"] for p in profiles] == ["default", "direct", "fusion", "hybrid", "prob_first"]
    hybrid = profiles[3]
    assert hybrid["recall"] == [{"model": "direct", "m": 4}, {"model": "gift_prob", "m": 4}]
    assert hybrid["rerank"] == "stage2" and hybrid["alpha"] == 0.7 and hybrid["max_m"] == 50
    assert profiles[1]["recall"] == [] and profiles[1]["rerank"] is None
    assert bundle.default_profile == "default"


def read_csv(path):
    return pd.read_csv(path, float_precision="round_trip")


def test_evaluate_equals_the_cli(bundle, giftrank_bin, tmp_path):
    data = PROFILES / "data.csv"
    cli = run_eval(giftrank_bin, PROFILES / "bundle", data, "gift_amount", tmp_path / "e.json",
                   "--m", "5,50,200", "--alpha", "0,0.5,1")
    ours = bundle.evaluate(read_csv(data), "gift_amount", m=[5, 50, 200], alpha=[0, 0.5, 1])
    assert ours == json.loads(cli)
    assert ours == bundle.evaluate(read_csv(data), "gift_amount", m="5,50,200", alpha="0,0.5,1")
    committed = json.loads((PROFILES / "data_expected.json").read_text())
    assert [r["name"] for r in ours["methods"]] == [r["name"] for r in committed["methods"]]


def test_grouped_evaluate_equals_the_cli_on_parquet(giftrank_bin, tmp_path):
    bundle = giftrank.Bundle(EVAL / "bundle" / "1")
    data = EVAL / "data.parquet"
    cli = run_eval(giftrank_bin, EVAL / "bundle" / "1", data, "gift_amount", tmp_path / "g.json",
                   "--group", "session_id")
    df = pd.read_parquet(data)
    assert isinstance(df["session_id"].dtype, pd.CategoricalDtype)
    ours = bundle.evaluate(df, "gift_amount", group="session_id")
    assert ours == json.loads(cli)
    assert ours["groups"] == 273
    # The CSV of the same rows, and the committed reference, agree.
    assert ours == bundle.evaluate(read_csv(EVAL / "data.csv"), "gift_amount", group="session_id")
    reference = json.loads((EVAL / "data_grouped_expected.json").read_text())
    for mine, theirs in zip(ours["methods"], reference["methods"]):
        for key in ("top1", "top5", "ndcg100"):
            assert math.isclose(mine[key], theirs[key], rel_tol=1e-9, abs_tol=1e-12), (mine["name"], key)
