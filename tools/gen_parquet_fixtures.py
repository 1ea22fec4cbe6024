#!/usr/bin/env python3
"""Parquet copies of engine fixtures whose models were trained on pandas category columns,
written the way pandas writes a DataFrame (pyarrow engine), for ``tests/data.rs``: scoring
the Parquet file must print exactly what scoring the CSV prints.

Reads ``tests/fixtures/engine/<name>/data.csv`` (cells ``""``, ``NaN``, ``nan``, ``NA`` and
``null`` are missing, as giftrank reads them; numbers parsed exactly) and writes
``tests/fixtures/data/<name>.parquet``::

    pandas_categorical.parquet          x0, x1, x2, x3 float64 (missing = null; x2 holds the
                                        edge values ±0, ±1e-35, ±inf); colour and city pandas
                                        categories of strings whose categories are sorted, so
                                        their dictionary codes differ from the model's codes
                                        (labels must be matched by text; "__unseen__" is in
                                        no model list); an unused timestamp column; snappy;
                                        row groups of 100 rows
    pandas_numeric_categories.parquet   bucket a pandas category of numbers (dictionary of
                                        float64, unseen values, ±0, ±inf and missing cells
                                        included; the one text cell, "__unseen__", which a
                                        numeric column cannot hold, is null: both are
                                        missing to the model); x0, x1, x2 float64; gzip

Run from the repository root with the pinned packages of ``tools/requirements.txt``::

    .venv/bin/python tools/gen_parquet_fixtures.py

Deterministic: re-running it rewrites the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MISSING = {"", "NaN", "nan", "NA", "null"}
ENGINE = Path("tests/fixtures/engine")
OUT = Path("tests/fixtures/data")


def cells(name: str) -> pd.DataFrame:
    return pd.read_csv(ENGINE / name / "data.csv", dtype=str, keep_default_na=False)


def number(cell: str) -> float:
    """A cell as giftrank reads a number: missing spellings and text that is no number
    are NaN."""
    try:
        return np.nan if cell.strip() in MISSING else float(cell)
    except ValueError:
        return np.nan


def numbers(column: pd.Series) -> np.ndarray:
    return np.array([number(c) for c in column])


def labels(column: pd.Series) -> pd.Categorical:
    text = [None if c.strip() in MISSING else c.strip() for c in column]
    return pd.Categorical(text, categories=sorted({t for t in text if t is not None}))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)

    raw = cells("pandas_categorical")
    frame = pd.DataFrame({
        "x0": numbers(raw["x0"]),
        "colour": labels(raw["colour"]),
        "x1": numbers(raw["x1"]),
        "city": labels(raw["city"]),
        "x2": numbers(raw["x2"]),
        "x3": numbers(raw["x3"]),
        "logged_at": pd.date_range("2025-05-05", periods=len(raw), freq="min"),
    })
    frame.to_parquet(OUT / "pandas_categorical.parquet", engine="pyarrow", compression="snappy",
                     index=False, row_group_size=100)

    raw = cells("pandas_numeric_categories")
    bucket = numbers(raw["bucket"])
    frame = pd.DataFrame({
        "x0": numbers(raw["x0"]),
        "bucket": pd.Categorical(bucket),
        "x1": numbers(raw["x1"]),
        "x2": numbers(raw["x2"]),
    })
    frame.to_parquet(OUT / "pandas_numeric_categories.parquet", engine="pyarrow",
                     compression="gzip", index=False)
    print(f"wrote {OUT}/pandas_categorical.parquet, {OUT}/pandas_numeric_categories.parquet")


if __name__ == "__main__":
    main()
