"""Stubs of the native module; use the classes of ``giftrank`` instead."""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

class Model:
    def __init__(self, path: str) -> None: ...
    feature_names: List[str]
    objective: str
    num_trees: int
    num_outputs: int
    def predict_array(
        self, x: npt.NDArray[np.float64], raw_score: bool, n_jobs: int
    ) -> npt.NDArray[np.float64]: ...
    def predict_columns(
        self, rows: int, columns: List[Tuple[Any, ...]], raw_score: bool, n_jobs: int
    ) -> Tuple[npt.NDArray[np.float64], List[str]]: ...

class Bundle:
    def __init__(self, path: str) -> None: ...
    default_profile: str
    model_names: List[str]
    feature_names: List[str]
    profiles: List[Dict[str, Any]]
    def rank(
        self,
        rows: int,
        columns: List[Tuple[Any, ...]],
        groups: Optional[npt.NDArray[np.int64]],
        group_count: int,
        profile: Optional[str],
        m: Optional[int],
        alpha: Optional[float],
    ) -> Dict[str, Any]: ...
    def evaluate(
        self,
        rows: int,
        columns: List[Tuple[Any, ...]],
        label: str,
        groups: Optional[npt.NDArray[np.int64]],
        group_count: int,
        group_name: Optional[str],
        m: str,
        alpha: Optional[str],
    ) -> Tuple[str, List[str]]: ...
