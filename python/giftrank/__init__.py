"""giftrank for Python: the service's exact LightGBM engine, ranking profiles and eval.

Every score, order and metric is computed by the same Rust code that serves ``/rank``
and runs ``giftrank eval``; this module only hands it numpy arrays and DataFrames.

- :class:`Model` scores rows exactly as LightGBM's ``Booster.predict`` (relative 1e-9).
- :class:`Bundle` ranks rows by a profile as ``/rank`` does, and evaluates labelled rows
  as ``giftrank eval --json`` does.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from . import _frame
from ._native import Bundle as _NativeBundle
from ._native import Model as _NativeModel

__all__ = ["Model", "Bundle"]

PathLike = Union[str, "os.PathLike[str]"]


def _warn_absent(names: Sequence[str]) -> None:
    for name in names:
        warnings.warn(
            f"no column `{name}` in the DataFrame: that feature is missing in every row",
            UserWarning,
            stacklevel=3,
        )


def _n_jobs(n_jobs: Any) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)):
        raise TypeError(f"n_jobs must be an int, got {type(n_jobs).__name__}")
    if n_jobs == -1:
        return 0
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, or -1 for every core; got {n_jobs}")
    return int(n_jobs)


class Model:
    """A LightGBM text model (``Booster.save_model``), scored by giftrank's engine.

    >>> model = Model("models/gift/2/direct.txt")
    >>> scores = model.predict(df)          # == lgb.Booster(model_file=...).predict(df)
    """

    def __init__(self, path: PathLike) -> None:
        self._native = _NativeModel(os.fspath(path))

    @property
    def feature_names(self) -> List[str]:
        """The model's feature names, in model order."""
        return self._native.feature_names

    @property
    def objective(self) -> str:
        """The model's objective as the file names it (e.g. ``regression``, ``binary sigmoid:1``)."""
        return self._native.objective

    @property
    def num_trees(self) -> int:
        """The number of trees (all classes together)."""
        return self._native.num_trees

    def predict(self, X: Any, raw_score: bool = False, n_jobs: int = 1) -> np.ndarray:
        """Scores every row of ``X``, as ``Booster.predict(X, raw_score=...)`` does.

        ``X`` is a 2-D numeric array with one column per feature in model order (values
        used as given, as LightGBM uses an array), or a pandas DataFrame whose columns
        are matched by name: a feature without a column is missing in every row (warned
        once), other columns are ignored, a pandas categorical column is mapped through
        the model's category list as LightGBM's Python package maps it, and text is
        accepted only for features trained as pandas categories.

        Returns one score per row, or an ``(n, num_class)`` array for multiclass models.
        ``n_jobs`` threads score in Rust (``-1``: every core) without holding the GIL.
        """
        jobs = _n_jobs(n_jobs)
        raw = bool(raw_score)
        native = self._native
        if _frame.is_frame(X):
            columns = _frame.columns(X, native.feature_names)
            scores, absent = native.predict_columns(len(X), columns, raw, jobs)
            _warn_absent(absent)
        else:
            array = np.asarray(X)
            if array.ndim != 2:
                raise ValueError(
                    f"X must be 2-D (rows x {len(native.feature_names)} features), got {array.ndim}-D"
                )
            if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
                raise TypeError(
                    f"X holds {array.dtype} values: give numbers (or a DataFrame for category labels)"
                )
            if np.issubdtype(array.dtype, np.complexfloating):
                raise TypeError("X holds complex numbers: give real numbers")
            array = np.ascontiguousarray(array, dtype=np.float64)
            scores = native.predict_array(array, raw, jobs)
        outputs = native.num_outputs
        return scores.reshape(-1, outputs) if outputs > 1 else scores

    def __repr__(self) -> str:
        return (
            f"Model(objective={self.objective!r}, num_trees={self.num_trees}, "
            f"features={len(self.feature_names)})"
        )


class Bundle:
    """A bundle directory (``bundle.toml`` and its models), loaded and validated as the
    service loads a version (canary rows included)."""

    def __init__(self, path: PathLike) -> None:
        self._native = _NativeBundle(os.fspath(path))

    @property
    def profiles(self) -> List[Dict[str, Any]]:
        """Every profile in declaration order: ``name``, ``score``, ``recall`` (a list of
        ``{"model", "m"}``), ``rerank``, ``alpha`` and ``max_m`` (None where absent)."""
        return self._native.profiles

    @property
    def default_profile(self) -> str:
        """The profile a ranking uses when it names none."""
        return self._native.default_profile

    @property
    def feature_names(self) -> List[str]:
        """Every feature some model of the bundle reads."""
        return self._native.feature_names

    def rank(
        self,
        df: pd.DataFrame,
        profile: Optional[str] = None,
        m: Optional[int] = None,
        alpha: Optional[float] = None,
        group: Optional[str] = None,
    ) -> pd.DataFrame:
        """Ranks the rows of ``df`` as one ``/rank`` request (or one request per value of
        the column ``group``), with the request fields ``profile``, ``m`` and ``alpha``.

        Returns one row per input row, groups in order of first appearance, each group
        best first, indexed by ``df``'s index: the group value (column ``group``), ``row``
        (position in ``df``), ``rank`` (0 = best), ``score``, ``direct_score``,
        ``stage2_score`` (NaN outside the recalled set, where ``/rank`` says null),
        ``reranked`` and ``m`` (the size of the group's recalled set). ``attrs["profile"]``
        names the profile. Feature columns are matched by name, as in ``/rank``'s dense
        form; a refused request raises ``ValueError`` with ``/rank``'s message.
        """
        if m is not None and (isinstance(m, bool) or not isinstance(m, (int, np.integer))):
            raise TypeError(f"m must be an int, got {type(m).__name__}")
        if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number))):
            raise TypeError(f"alpha must be a number, got {type(alpha).__name__}")
        columns = _frame.columns(df, self._native.feature_names)
        codes, count, values = (None, 0, None)
        if group is not None:
            codes, count, values = _frame.group_codes(df, group)
        out = self._native.rank(
            len(df), columns, codes, count, profile, None if m is None else int(m),
            None if alpha is None else float(alpha),
        )
        result = pd.DataFrame(
            {
                "row": out["row"],
                "rank": out["rank"],
                "score": out["score"],
                "direct_score": out["direct_score"],
                "stage2_score": out["stage2_score"],
                "reranked": out["reranked"],
                "m": out["m"],
            },
            index=df.index.take(out["row"]),
        )
        if group is not None:
            result.insert(0, group, values.take(out["group"]))
        result.attrs["profile"] = out["profile"]
        return result

    def evaluate(
        self,
        df: pd.DataFrame,
        label: str,
        m: Union[str, Sequence[int]] = "50,100,200,500,1000",
        alpha: Union[None, str, Sequence[float]] = None,
        group: Optional[str] = None,
    ) -> Dict[str, Any]:
        """The metrics of ``giftrank eval --json`` on the labelled rows of ``df``: the same
        dictionary as the JSON file of ``giftrank eval --bundle DIR --data FILE --label
        LABEL --m M --alpha ALPHA [--group GROUP]`` on a file holding these rows in this
        order. ``m`` and ``alpha`` are lists or the CLI's comma-separated text.
        """
        m_text = m if isinstance(m, str) else ",".join(str(x) for x in m)
        alpha_text = None
        if alpha is not None:
            alpha_text = alpha if isinstance(alpha, str) else ",".join(repr(float(a)) for a in alpha)
        wanted = list(self._native.feature_names) + [label]
        columns = _frame.columns(df, wanted)
        codes, count = (None, 0)
        if group is not None:
            codes, count, _ = _frame.group_codes(df, group)
        text, absent = self._native.evaluate(
            len(df), columns, label, codes, count, group, m_text, alpha_text
        )
        _warn_absent(absent)
        return json.loads(text)

    def __repr__(self) -> str:
        names = ", ".join(p["name"] for p in self.profiles)
        return f"Bundle(profiles=[{names}], default_profile={self.default_profile!r})"
