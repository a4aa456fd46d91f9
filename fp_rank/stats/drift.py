"""Identity drift diagnostics: which identity a generated image was mistaken for."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from fp_rank.errors import InputError
from fp_rank.stats._validation import as_labels, check_non_negative_int, check_rows

#: Keys every row given to :func:`worst_queries` must have.
WORST_QUERY_KEYS = ("ap", "identity", "top1_identity", "file", "method", "group")


def confusion_matrix(
    query_identities: Sequence[Any],
    top1_identities: Sequence[Any],
    labels: Sequence[Any] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Count, per query identity, which identity its top-1 gallery item belongs to.

    Use it on one group at a time (a query is only ranked against its own group). The diagonal
    counts queries whose nearest gallery image has the right identity; off-diagonal cells show
    what a method's images drift towards.

    Args:
        query_identities: the identity of each query (rows).
        top1_identities: the identity of each query's top-ranked gallery item (columns).
        labels: row and column order; the sorted union of both inputs when None. Must contain
            every identity that occurs.

    Returns:
        ``(matrix, labels)`` with ``matrix[r, c]`` the number of queries of ``labels[r]`` whose
        top-1 item is of ``labels[c]`` (int64, square).

    Raises:
        InputError: when the inputs differ in length, are not 1-D, or hold an identity missing
            from ``labels``, or when ``labels`` repeats a label.

    Example:
        >>> m, names = confusion_matrix(["a", "a", "b"], ["a", "b", "b"])
        >>> names, m.tolist()
        (['a', 'b'], [[1, 1], [0, 1]])
    """
    queries = as_labels("query_identities", query_identities, len(query_identities), "itself")
    top1 = as_labels("top1_identities", top1_identities, queries.size, "query_identities")
    if labels is None:
        names = sorted(set(queries.tolist()) | set(top1.tolist()))
    else:
        names = as_labels("labels", labels, len(labels), "itself").tolist()
        if len(set(names)) != len(names):
            repeated = sorted({name for name in names if names.count(name) > 1})
            raise InputError(f"labels must be unique; repeated: {repeated}")
        unknown = sorted((set(queries.tolist()) | set(top1.tolist())) - set(names))
        if unknown:
            raise InputError(
                f"labels lacks identities that occur in the inputs: {unknown[:10]}"
                + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            )
    position = {name: index for index, name in enumerate(names)}
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)
    if queries.size:
        rows = np.fromiter((position[q] for q in queries.tolist()), dtype=np.int64)
        cols = np.fromiter((position[t] for t in top1.tolist()), dtype=np.int64)
        np.add.at(matrix, (rows, cols), 1)
    return matrix, names


def worst_queries(rows: Sequence[dict[str, Any]], k: int = 10) -> list[dict[str, Any]]:
    """The ``k`` queries with the lowest AP, and the identity each drifted to.

    Args:
        rows: per-query result dicts, each with at least the keys ``ap``, ``identity``,
            ``top1_identity``, ``file``, ``method`` and ``group``.
        k: how many to return (>= 0); fewer when there are fewer rows.

    Returns:
        Copies of the ``k`` lowest-AP rows, lowest first; equal APs are ordered by ``file``
        (then by input order). Each copy gains ``drifted_to``: the top-1 identity when it
        differs from the query's identity (compared as strings), else None.

    Raises:
        InputError: when ``rows`` is not a list of dicts, a row lacks a required key, an ``ap``
            is not a finite number, or ``k`` is not an integer >= 0.

    Example:
        >>> rows = [
        ...     {"ap": 0.9, "identity": "a", "top1_identity": "a", "file": "1.png",
        ...      "method": "m", "group": "g"},
        ...     {"ap": 0.2, "identity": "a", "top1_identity": "b", "file": "2.png",
        ...      "method": "m", "group": "g"},
        ... ]
        >>> [(r["file"], r["drifted_to"]) for r in worst_queries(rows, k=1)]
        [('2.png', 'b')]
    """
    checked = check_rows("rows", rows, WORST_QUERY_KEYS)
    k = check_non_negative_int("k", k)
    for index, row in enumerate(checked):
        ap = row["ap"]
        if isinstance(ap, bool) or not isinstance(ap, numbers.Real) or not math.isfinite(ap):
            raise InputError(f"rows[{index}]['ap'] must be a finite number; got {ap!r}")
    ordered = sorted(checked, key=lambda row: (float(row["ap"]), str(row["file"])))
    out = []
    for row in ordered[:k]:
        copy = dict(row)
        top1 = row["top1_identity"]
        same = top1 is None or str(top1) == str(row["identity"])
        copy["drifted_to"] = None if same else top1
        out.append(copy)
    return out
