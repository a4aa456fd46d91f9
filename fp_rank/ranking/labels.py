"""Identity labels -> integer codes shared by queries and gallery (the ranking maths compares codes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fp_rank.errors import InputError


def encode_labels(query_ids: Sequence[Any], gallery_ids: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Map identity labels to integer codes shared by queries and gallery.

    Labels are compared as they are: ``1`` and ``"1"`` would be different identities, so a mix of
    numbers and strings is refused, as are None and NaN; strings keep every character (NumPy's
    fixed-width strings would drop trailing NULs and merge ``"a\\x00"`` with ``"a"``).
    """
    q = np.asarray(query_ids, dtype=object) if not isinstance(query_ids, np.ndarray) else query_ids
    g = np.asarray(gallery_ids, dtype=object) if not isinstance(gallery_ids, np.ndarray) else gallery_ids
    if q.ndim != 1 or g.ndim != 1:
        raise InputError(f"query_ids and gallery_ids must be 1-D, got shapes {q.shape} and {g.shape}")
    if q.dtype.kind in "iu" and g.dtype.kind in "iu":
        return q.astype(np.int64), g.astype(np.int64)
    q_list, g_list = q.tolist(), g.tolist()
    kinds = set(map(type, q_list)) | set(map(type, g_list))
    if kinds <= {str} or kinds <= {int}:  # the common cases, checked as a whole: one dict look-up per label
        return _codes(q_list, g_list)
    codes: dict[Any, int] = {}
    kinds: dict[str, tuple[str, Any]] = {}
    out = []
    for name, labels in (("query_ids", q), ("gallery_ids", g)):
        arr = np.empty(len(labels), dtype=np.int64)
        for i, label in enumerate(labels.tolist()):
            kind = _label_kind(label, name, i)
            kinds.setdefault(kind, (f"{name}[{i}]", label))
            arr[i] = codes.setdefault(label, len(codes))
        out.append(arr)
    if len(kinds) > 1:
        (wa, la), (wb, lb) = kinds["number"], kinds["string"]
        raise InputError(
            f"identity labels mix numbers and strings ({wa} = {la!r}, {wb} = {lb!r}); 1 and '1' would be different "
            "identities. Use one type for every label (e.g. all strings)"
        )
    return out[0], out[1]


def _codes(q_list: list[Any], g_list: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of labels already known to be all strings (or all ints): the gallery's in order of
    first appearance, then the queries' labels that the gallery lacks."""
    codes = {label: i for i, label in enumerate(dict.fromkeys(g_list))}
    g_codes = np.fromiter(map(codes.__getitem__, g_list), dtype=np.int64, count=len(g_list))
    if all(label in codes for label in q_list):
        q_codes = np.fromiter(map(codes.__getitem__, q_list), dtype=np.int64, count=len(q_list))
    else:
        q_codes = np.fromiter((codes.setdefault(label, len(codes)) for label in q_list), dtype=np.int64, count=len(q_list))
    return q_codes, g_codes


def _label_kind(label: Any, name: str, i: int) -> str:
    if isinstance(label, str):
        return "string"
    if isinstance(label, (bool, np.bool_)) or label is None or not isinstance(label, (int, float, np.number)):
        raise InputError(f"{name}[{i}] is {label!r}; identity labels must be strings or integers")
    if isinstance(label, (float, np.floating)) and not float(label).is_integer():
        raise InputError(f"{name}[{i}] is {label!r}; identity labels must be strings or integers (not NaN or fractions)")
    return "number"


def checked_labels(
    query_ids: Sequence[Any], gallery_ids: Sequence[Any], n_q: int, n_g: int, words: tuple[str, str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the labels, checked against the numbers of queries and gallery items."""
    verb, q_what, g_what = words
    q_codes, g_codes = encode_labels(query_ids, gallery_ids)
    if len(q_codes) != n_q:
        raise InputError(f"query_ids has {len(q_codes)} labels but {verb} {n_q} {q_what}")
    if len(g_codes) != n_g:
        raise InputError(f"gallery_ids has {len(g_codes)} labels but {verb} {n_g} {g_what}")
    if n_g == 0:
        raise InputError(f"the gallery is empty: {verb} 0 {g_what}")
    return q_codes, g_codes
