"""Input checks shared by the statistics functions. Each raises InputError naming the argument."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from fp_rank.errors import InputError


def as_values(name: str, values: Any, *, allow_empty: bool = False) -> np.ndarray:
    """Return ``values`` as a 1-D float64 array of finite numbers."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{name} must be a 1-D sequence of numbers; got {type(values).__name__} ({exc})"
        ) from None
    if array.ndim != 1:
        raise InputError(f"{name} must be 1-D (one value per query); got shape {array.shape}")
    if array.size == 0 and not allow_empty:
        raise InputError(f"{name} is empty; at least one query value is needed")
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{name} must hold finite numbers; {int(bad.sum())} are NaN or infinite "
            f"(first at index {first}: {array[first]!r})"
        )
    return array


def as_labels(name: str, labels: Any, length: int, length_of: str) -> np.ndarray:
    """Return ``labels`` as a 1-D array of strings with ``length`` entries (one per query)."""
    if isinstance(labels, (str, bytes)):
        raise InputError(
            f"{name} must be a sequence of labels, one per query; got a single string {labels!r}"
        )
    array = np.asarray(labels)
    if array.ndim != 1:
        raise InputError(f"{name} must be 1-D (one label per query); got shape {array.shape}")
    if array.shape[0] != length:
        raise InputError(
            f"{name} has {array.shape[0]} entries but {length_of} has {length}; they must match"
        )
    if array.dtype.kind != "U":
        array = array.astype(str)
    return array


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int after checking it is an integer >= 1 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def check_non_negative_int(name: str, value: Any) -> int:
    """Return ``value`` as an int after checking it is an integer >= 0 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise InputError(f"{name} must be an integer >= 0; got {value!r}")
    return int(value)


def check_confidence(confidence: Any) -> float:
    """Return ``confidence`` as a float after checking 0 < confidence < 1."""
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real):
        raise InputError(
            f"confidence must be a number strictly between 0 and 1 (e.g. 0.95); got {confidence!r}"
        )
    value = float(confidence)
    if not (0.0 < value < 1.0):
        raise InputError(
            f"confidence must be strictly between 0 and 1 (e.g. 0.95); got {confidence!r}"
        )
    return value


def check_seed(seed: Any) -> int:
    """Return ``seed`` as an int after checking it is an integer >= 0 (what NumPy accepts)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"seed must be an integer >= 0; got {seed!r}")
    return int(seed)


def check_finite_number(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking it is a finite real number."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
    ):
        raise InputError(f"{name} must be a finite number; got {value!r}")
    return float(value)


def check_rows(name: str, rows: Any, required: Sequence[str]) -> list[dict[str, Any]]:
    """Check ``rows`` is a sequence of mappings that each hold the ``required`` keys."""
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise InputError(f"{name} must be a list of dicts; got {type(rows).__name__}")
    checked = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"{name}[{index}] must be a dict; got {type(row).__name__}")
        missing = [key for key in required if key not in row]
        if missing:
            raise InputError(
                f"{name}[{index}] lacks the key(s) {missing}; every row needs {list(required)}"
            )
        checked.append(row)
    return checked


def check_probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
        raise InputError(f"{name} must be a number strictly between 0 and 1; got {value!r}")
    return float(value)


def check_power(power: Any, alpha: float) -> float:
    power = check_probability("power", power)
    if power <= alpha:
        raise InputError(f"power must exceed alpha ({alpha:g}); got {power!r}")
    return power


def check_queries(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) >= 1.0:
        raise InputError(f"queries_per_identity must be a number >= 1 or None; got {value!r}")
    return float(value)
