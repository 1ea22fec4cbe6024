"""DataFrames as the column tuples the native module reads.

Only the columns the model (or bundle) reads, plus the label, are converted: other
columns (ids, timestamps, ...) may hold anything. Numbers and booleans become float64
(pandas' nullable NA is missing), text stays text, and a pandas categorical column
keeps its codes and categories, so the native code maps each category through the
model's ``pandas_categorical`` list exactly as LightGBM's Python package does.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable, List, Optional, Tuple

import numpy as np
import pandas as pd


def is_frame(x: Any) -> bool:
    """Whether ``x`` is a pandas DataFrame."""
    return isinstance(x, pd.DataFrame)


def columns(df: pd.DataFrame, wanted: Iterable[str]) -> List[Tuple[Any, ...]]:
    """The columns of ``df`` named in ``wanted`` (others are skipped), as tuples."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    seen = set()
    for name in df.columns:
        if name in seen:
            raise ValueError(f"column `{name}` appears twice in the DataFrame")
        seen.add(name)
    wanted = set(wanted)
    out = []
    for name in df.columns:
        if not isinstance(name, str) or name not in wanted:
            continue
        out.append(_column(name, df[name]))
    return out


def _column(name: str, series: pd.Series) -> Tuple[Any, ...]:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = [_category(name, c) for c in dtype.categories]
        codes = np.ascontiguousarray(series.cat.codes.to_numpy(), dtype=np.int64)
        return ("categorical", name, codes, categories)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_complex_dtype(dtype):
            raise TypeError(f"column `{name}` holds complex numbers; give real numbers")
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return ("numbers", name, np.ascontiguousarray(values))
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        labels: List[Optional[str]] = []
        for value in series.to_numpy(dtype=object):
            if value is None or value is pd.NA or (isinstance(value, float) and value != value):
                labels.append(None)
            elif isinstance(value, str):
                labels.append(value)
            else:
                raise TypeError(
                    f"column `{name}` holds {type(value).__name__} values such as {value!r}: "
                    "a feature column must hold numbers, booleans, or text for a pandas category feature"
                )
        return ("labels", name, labels)
    raise TypeError(
        f"column `{name}` has dtype {dtype}: a feature column must hold numbers, booleans "
        "or categories"
    )


def _category(column: str, value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(
        f"column `{column}`: the category {value!r} is neither text nor a number"
    )


def group_codes(df: pd.DataFrame, group: str) -> Tuple[np.ndarray, int, pd.Index]:
    """Each row's group number (first appearance first, as ``giftrank eval`` numbers them),
    the number of groups and the group values."""
    if group not in df.columns:
        raise ValueError(f"no column `{group}` (the group column)")
    codes, uniques = pd.factorize(df[group], sort=False)
    missing = np.flatnonzero(codes < 0)
    if missing.size:
        raise ValueError(
            f"the group column `{group}` is missing in row {int(missing[0]) + 1} "
            "(every row needs a group)"
        )
    return np.ascontiguousarray(codes, dtype=np.int64), len(uniques), pd.Index(uniques)
