"""The Spark example (examples/spark/rank_eval.py) in local[2] on a generated impression
log: its grouped metrics equal the `profile:<name>` rows of `giftrank eval --group` on the
same Parquet file. Skipped without pyspark unless GIFTRANK_REQUIRE_SPARK=1 (as in CI)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_eval

if os.environ.get("GIFTRANK_REQUIRE_SPARK") != "1":
    pytest.importorskip("pyspark")

BUNDLE = ROOT / "models" / "gift" / "2"
JOB = ROOT / "examples" / "spark" / "rank_eval.py"


def impressions(path, rows=30_000, groups=80, seed=18):
    """Held-out rows with an `impression_id` scattered over the file (groups of ~375)."""
    df = pd.read_csv(ROOT / "models" / "gift" / "heldout.csv.gz", nrows=rows,
                     float_precision="round_trip")
    rng = np.random.default_rng(seed)
    df["impression_id"] = [f"imp-{g}" for g in rng.integers(0, groups, size=len(df))]
    df.to_parquet(path, index=False)
    return df


def test_spark_job_equals_grouped_cli(giftrank_bin, tmp_path):
    data = tmp_path / "impressions.parquet"
    df = impressions(data)
    out = tmp_path / "spark.json"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    subprocess.run(
        [sys.executable, str(JOB), "--master", "local[2]", "--bundle", str(BUNDLE),
         "--data", str(data), "--label", "gift_amount", "--group", "impression_id",
         "--json", str(out)],
        check=True, env=env, cwd=tmp_path, timeout=600,
    )
    spark = json.loads(out.read_text())
    cli = json.loads(run_eval(giftrank_bin, BUNDLE, data, "gift_amount", tmp_path / "cli.json",
                              "--group", "impression_id"))
    assert spark["n"] == cli["n"] == len(df)
    assert spark["groups"] == cli["groups"] == df["impression_id"].nunique()
    assert spark["groups_used"] == cli["groups_used"]
    profiles = {r["name"]: r for r in cli["methods"] if r["name"].startswith("profile:")}
    assert set(profiles) == {r["name"] for r in spark["methods"]} and len(profiles) == 4
    for row in spark["methods"]:
        want = profiles[row["name"]]
        for key in ("top1", "top5", "ndcg100", "spearman", "recall1", "recall5"):
            if key in want:
                assert math.isclose(row[key], want[key], rel_tol=1e-9, abs_tol=1e-12), (row["name"], key)
    # The grouped numbers are not trivially the ungrouped ones.
    assert any(r["ndcg100"] > 0 for r in spark["methods"])
