"""When two reports' scores may be compared: the comparability key.

Two mAPs are comparable only when everything that moves a score is the same: the protocol, the
gallery's content (its fingerprint; the revision where no fingerprint was recorded) and config, the encoder's weights (id and revision), preprocessing,
pooling and dtype, background removal, and the rules that decide which queries count (missing
identities, single-identity groups left out, leaks), each where it changed something. Unreadable images skipped under
``on_invalid="skip"`` are not part of it: they change which images were scored, not how (each
result counts them, ``n_skipped``). The key is read from the metadata every report records, so reports written
before the key existed have one too. ``compare``, ``leaderboard`` and other commands that put
reports side by side refuse mixed keys, naming the fields that differ, unless told which fields
may differ; what was allowed is recorded in their output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fp_rank.errors import InputError

if TYPE_CHECKING:
    from fp_rank.reporting.report import Report

#: The fields of the key, in the order messages list them.
KEY_FIELDS = (
    "protocol_version", "gallery_fingerprint", "gallery_revision", "gallery_config",
    "encoder_model_id", "encoder_revision", "encoder_preprocessing", "encoder_pooling", "encoder_dtype",
    "background", "matting", "on_missing", "single_identity_groups_left_out", "leaks_excluded",
)


def comparability_key(report: Report, encoder: str | None = None) -> dict[str, Any]:
    """The fields that must agree for ``report``'s scores under ``encoder`` to be compared with another's.

    Args:
        report: the report.
        encoder: the encoder's name; may be left out when the report holds one.

    Raises:
        InputError: ``encoder`` is not in the report, or left out while it holds several.

    Example:
        >>> from fp_rank.reporting.report import Report
        >>> meta = {"protocol_version": "1.1", "gallery": {"fingerprint": "ab", "config": "all"},
        ...         "encoders": [{"name": "e", "model_id": "org/m", "revision": "r1", "dtype": "float32"}]}
        >>> key = comparability_key(Report([], [], meta), "e")
        >>> key["encoder_model_id"], key["encoder_revision"], key["gallery_fingerprint"]
        ('org/m', 'r1', 'ab')
    """
    meta = report.metadata or {}
    gallery = meta.get("gallery") or {}
    options = meta.get("options") or {}
    described = [e for e in meta.get("encoders") or [] if isinstance(e, Mapping)]
    names = [str(e.get("name")) for e in described] or list(report.encoders)
    if encoder is None:
        if len(names) != 1:
            raise InputError(f"the report holds encoders {names}; name one")
        encoder = names[0]
    found = [e for e in described if str(e.get("name")) == encoder]
    if not found and encoder not in report.encoders:
        raise InputError(f"encoder {encoder!r} is not in the report; it holds {names}")
    enc: Mapping[str, Any] = found[0] if found else {}
    leakage = meta.get("leakage") or {}
    # rules that decide which queries count enter the key where they changed something: a run with
    # nothing missing (or no leak found) scores the same under any setting of the rule
    missing = bool(meta.get("missing")) or any(r.n_missing for r in report.results if r.encoder == encoder)
    excluded = bool(leakage.get("n_excluded")) or any(r.n_excluded for r in report.results if r.encoder == encoder)
    return {
        "protocol_version": meta.get("protocol_version"),
        "gallery_fingerprint": gallery.get("fingerprint"),
        # the fingerprint covers every image and label; the revision speaks only where none was recorded
        "gallery_revision": None if gallery.get("fingerprint") else gallery.get("revision"),
        "gallery_config": gallery.get("config") or "all",
        "encoder_model_id": enc.get("model_id", encoder),
        "encoder_revision": enc.get("revision"),
        "encoder_preprocessing": enc.get("preprocessing_id") or enc.get("preprocessing"),
        "encoder_pooling": enc.get("pooling"),
        "encoder_dtype": enc.get("dtype"),
        "background": options.get("background", "keep"),
        "matting": options.get("matting"),
        "on_missing": options.get("on_missing", "error") if missing else "nothing missing",
        "single_identity_groups_left_out": sorted(str(g) for g in (meta.get("single_identity_groups") or {}).get("groups")
                                                  or []),
        "leaks_excluded": bool(leakage.get("excluded", False)) and excluded,
    }


def key_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The key fields on which ``a`` and ``b`` differ, in :data:`KEY_FIELDS` order."""
    return [name for name in KEY_FIELDS if a.get(name) != b.get(name)]


def check_allowed(allow: Iterable[str] | None) -> tuple[str, ...]:
    """``allow`` as a tuple of key fields; an unknown name is an :class:`InputError` listing them."""
    names = tuple(dict.fromkeys(str(a) for a in (allow or ())))
    unknown = [n for n in names if n not in KEY_FIELDS]
    if unknown:
        raise InputError(f"unknown comparability field(s) {unknown}; the fields are {list(KEY_FIELDS)}")
    return names


def require_comparable(
    keys: Sequence[tuple[str, Mapping[str, Any]]], allow: Iterable[str] | None = None
) -> dict[str, Any]:
    """Refuse unless every key agrees with the first on every field not in ``allow``.

    Args:
        keys: (label, key) pairs; the label names the report in the message.
        allow: key fields allowed to differ (recorded in the returned dict).

    Returns:
        ``{"key": first key, "allowed_differences": {field: [values...]}}`` for the output to record.

    Raises:
        InputError: naming both labels, each differing field and its two values, and the
            override (``allow_mismatch`` / ``--allow-mismatch FIELD``).
    """
    allowed = check_allowed(allow)
    first_label, first = keys[0]
    differing: dict[str, list[Any]] = {}
    for label, key in keys[1:]:
        fields = key_differences(first, key)
        refused = [f for f in fields if f not in allowed]
        if refused:
            shown = "; ".join(f"{f}: {first.get(f)!r} vs {key.get(f)!r}" for f in refused)
            raise InputError(
                f"{first_label} and {label} are not comparable ({shown}); score both under the same settings, or "
                f"allow the difference explicitly (allow_mismatch={refused!r}, CLI: --allow-mismatch {' '.join(refused)}); "
                "the override is recorded in the output"
            )
        for f in fields:
            values = differing.setdefault(f, [first.get(f)])
            if key.get(f) not in values:
                values.append(key.get(f))
    return {"key": dict(first), "allowed_differences": differing}
