#!/usr/bin/env python3
"""Labelled data for ``giftrank eval`` at scale, as Parquet (pyarrow) and optionally CSV.

Writes, into ``--out`` (default ``/tmp/giftrank-eval``; keep large files out of the repository):

    heldout.parquet            the 100,000 held-out rows that ``models/gift/heldout.csv.gz``
                               holds (the last 10% of ``tools/gen_gift_data.py``'s 1,000,000
                               impressions, seed 20260109), with the same 16 features and
                               ``gift_amount``, plus ``session_id`` (see gen_gift_data.py: one
                               user's impressions on one day; 48,763 sessions)
    resampled_<N>.parquet      for each N of ``--rows``: N rows made of held-out *sessions*
                               drawn with replacement (numpy seed 20260109), the last one cut
                               to make N exactly; each draw is a new session with its own
                               ``session_id`` (0, 1, ... in draw order), and rows are ordered
                               by their original timestamp (ties: draw order), so sessions
                               interleave as in a log
    resampled_<N>.csv          the same rows as CSV (with ``--csv``): integer-valued columns
                               without a decimal point, missing as ``nan``

Parquet columns: integer-valued columns without missing values (user_level, hour, ...,
gift_amount, session_id) are int64, the rest float64 with nulls for missing values; snappy
compression (pandas' default), row groups of 1,048,576 rows (pyarrow's default).

Run from the repository root with the pinned packages of ``tools/requirements.txt``::

    .venv/bin/python tools/gen_eval_data.py --rows 490952 5000000 --csv

The script checks that its held-out rows equal ``models/gift/heldout.csv.gz`` value for value
before writing anything.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_gift_data as gen  # noqa: E402
from train_default_models import N_ROWS, SEED, TRAIN_FRACTION  # noqa: E402

COLUMNS = gen.FEATURES + [gen.LABEL, "session_id"]


def held_out(root: str) -> pd.DataFrame:
    """The held-out split with session_id (and timestamp, for ordering), checked against
    the shipped heldout.csv.gz."""
    df = gen.generate(N_ROWS, SEED)
    held = df.iloc[int(len(df) * TRAIN_FRACTION):][COLUMNS + ["timestamp"]].reset_index(drop=True)
    shipped = pd.read_csv(os.path.join(root, "models", "gift", "heldout.csv.gz"),
                          float_precision="round_trip")
    ours = held[shipped.columns].to_numpy(dtype=np.float64)
    theirs = shipped.to_numpy(dtype=np.float64)
    same = (ours == theirs) | (np.isnan(ours) & np.isnan(theirs))
    if ours.shape != theirs.shape or not same.all():
        raise SystemExit("held-out rows differ from models/gift/heldout.csv.gz: "
                         "was tools/gen_gift_data.py changed?")
    return held


def typed(df: pd.DataFrame) -> pa.Table:
    """Integer-valued columns without missing values as int64, the rest float64."""
    columns = {}
    for name in df.columns:
        v = df[name].to_numpy(dtype=np.float64)
        if not np.isnan(v).any() and np.all(v == np.round(v)):
            columns[name] = pa.array(v.astype(np.int64))
        else:
            columns[name] = pa.array(v, mask=np.isnan(v))
    return pa.table(columns)


def resample(held: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """n rows of whole sessions drawn with replacement (the last draw cut to fit), each
    draw a new session, rows ordered by timestamp (ties: draw order, then row order)."""
    ids = held["session_id"].to_numpy()
    order = np.argsort(ids, kind="stable")
    _, starts = np.unique(ids[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    sizes = ends - starts
    draws = np.empty(0, dtype=np.int64)
    while sizes[draws].sum() < n:
        more = rng.integers(0, len(sizes), size=n // int(sizes.mean()) + 1000)
        draws = np.concatenate([draws, more])
    draws = draws[: np.searchsorted(np.cumsum(sizes[draws]), n) + 1]
    rows = np.concatenate([order[starts[s]:ends[s]] for s in draws])[:n]
    out = held.iloc[rows].reset_index(drop=True)
    out["session_id"] = np.repeat(np.arange(len(draws)), sizes[draws])[:n]
    out = out.sort_values(["timestamp", "session_id"], kind="stable").reset_index(drop=True)
    return out[COLUMNS]


def write_csv(df: pd.DataFrame, path: str) -> None:
    out = df.copy()
    for name in out.columns:
        v = out[name].to_numpy(dtype=np.float64)
        ok = ~np.isnan(v)
        if np.all(v[ok] == np.round(v[ok])):
            out[name] = out[name].astype("Int64")
    out.to_csv(path, index=False, na_rep="nan", lineterminator="\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="/tmp/giftrank-eval")
    parser.add_argument("--rows", type=int, nargs="*", default=[490_952, 5_000_000])
    parser.add_argument("--csv", action="store_true", help="also write each resampled set as CSV")
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(args.out, exist_ok=True)
    t = time.time()
    held = held_out(root)
    path = os.path.join(args.out, "heldout.parquet")
    pq.write_table(typed(held[COLUMNS]), path)
    print(f"{path}: {len(held)} rows, {held['session_id'].nunique()} sessions "
          f"({time.time() - t:.1f} s)")
    for n in args.rows:
        t = time.time()
        big = resample(held, n, np.random.default_rng(SEED))
        path = os.path.join(args.out, f"resampled_{n}.parquet")
        pq.write_table(typed(big), path)
        print(f"{path}: {len(big)} rows, {big['session_id'].nunique()} sessions "
              f"({time.time() - t:.1f} s)")
        if args.csv:
            path = path.removesuffix(".parquet") + ".csv"
            write_csv(big, path)
            print(f"{path} ({time.time() - t:.1f} s)")


if __name__ == "__main__":
    main()
