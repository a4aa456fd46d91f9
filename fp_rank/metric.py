"""The Hugging Face ``evaluate`` metric, thin over :func:`fp_rank.evaluate`.

The repository's ``finer_personalization_rank.py`` (what a Space or ``evaluate.load(path)``
imports) only re-exports :class:`FinerPersonalizationRank` from here. ``install_evaluate_module``
copies that very file (shipped with the package, :func:`fp_rank._files.repository_file`) into
evaluate's module cache, where ``evaluate.load("fp-rank")`` finds it offline through evaluate's
own fallback for cached canonical modules.
"""

from __future__ import annotations

import inspect
import io
import os
import textwrap
from pathlib import Path
from typing import Any

import datasets
import evaluate
import numpy as np

from fp_rank._files import repository_file
from fp_rank.evaluation import evaluate as fp_evaluate
from fp_rank.options import DEPRECATED, OPTIONS
from fp_rank.protocol import CITATION, METRICS
from fp_rank.runs import PER_IMAGE
from fp_rank.version import PROTOCOL_VERSION, __version__

#: The name ``evaluate.load`` knows us by; online it resolves to the Space ``evaluate-metric/fp-rank``.
METRIC_NAME = "fp-rank"

_DESCRIPTION = """\
Finer-Personalization Rank scores identity preservation in personalized image generation. Each
generated image is a query against an identity-labelled gallery of real, visually similar images
from its identity's group; the score is the average precision (AP) of retrieving its own identity,
exact under tied similarities. The headline is mAP (mean over groups of each group's mean AP),
reported with the other metrics below, all computed with the same encoder.
"""


def _kwargs_description() -> str:
    """The module's Args / Returns, from the declarations of the options, the per-image keywords and the metrics."""
    lines = ["Args:"]
    lines += _wrapped("predictions", "generated images: file paths as strings (the fast route: nothing is copied "
                      "into Arrow), PIL images or arrays (encoded into Arrow by `datasets`, then decoded lazily)")
    lines += _wrapped("references", "the identity label of each generated image (the gallery's identity column)")
    lines += _wrapped("gallery", "gallery folder or Hub dataset id (required)")
    lines += [x for p in PER_IMAGE for x in _wrapped(p.keyword, p.help)]
    lines += [x for o in OPTIONS for x in _wrapped(o.name, o.sentence())]
    lines.append("Returns:")
    for m in METRICS:
        key = f"{m.key}@k" if m.per_k else m.result_field
        lines += _wrapped(key, m.description + (" (one value per k of cmc_ks)" if m.per_k else ""))
        if m.per_group_field:
            lines += _wrapped(m.per_group_field, f"group -> {m.label_for()} of the group")
    lines += _wrapped("map_micro, n_queries, n_tied", "mean AP over all queries; queries scored; queries with ties")
    lines += _wrapped("report", "the full report as a dict (per-query rows, provenance)")
    lines += [
        "Examples:",
        "    >>> import evaluate  # doctest: +SKIP",
        '    >>> m = evaluate.load("fp-rank")  # doctest: +SKIP',
        '    >>> m.compute(predictions=images, references=labels, gallery="ORG/fp-rank-cub", gallery_config="wren")  # doctest: +SKIP',
    ]
    return "\n".join(lines) + "\n"


def _wrapped(name: str, text: str) -> list[str]:
    return textwrap.wrap(f"{name}: {text}.", width=100, initial_indent="    ", subsequent_indent="        ")


_KWARGS_DESCRIPTION = _kwargs_description()

#: ``compute()`` keyword arguments handed to :func:`fp_rank.evaluate` unchanged: all of its keyword-only
#: ones (the per-image keywords and every declared option), and the older option names for one version.
_PASSTHROUGH = tuple(
    name for name, p in inspect.signature(fp_evaluate).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "gallery"
) + tuple(d.name for d in DEPRECATED)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FinerPersonalizationRank(evaluate.Metric):
    """Finer-Personalization Rank as an ``evaluate`` metric."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                # decode=False: images reach fp_rank as {'bytes', 'path'} and are decoded lazily, one batch
                # at a time (memory bounded by the batch size, one decode per image); a PIL image that
                # was opened from a file is passed by its path, not re-encoded into Arrow.
                datasets.Features({"predictions": datasets.Image(decode=False), "references": datasets.Value("string")}),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
            codebase_urls=["https://github.com/OSU-MLB/Finer-Personalization-Rank"],
            reference_urls=["https://arxiv.org/abs/2512.19026"],
        )

    # datasets would re-encode arrays itself (float grayscale rounded to 0/1, 16-bit RGB cut to its low
    # byte, float RGB refused with its own error): arrays are checked by the library's rule first and
    # travel losslessly as .npy bytes, unpacked again in _compute.
    def compute(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> dict[str, Any] | None:
        """Score the generated images (arguments below; evaluate appends them to this docstring)."""
        return super().compute(predictions=_pack_arrays(predictions), references=references, **kwargs)

    def add_batch(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> None:
        """Add a batch of generated images and their identity labels."""
        super().add_batch(predictions=_pack_arrays(predictions), references=references, **kwargs)

    def add(self, *, prediction: Any = None, reference: Any = None, **kwargs: Any) -> None:
        """Add one generated image and its identity label."""
        packed = _pack_arrays([prediction])[0] if prediction is not None else None
        super().add(prediction=packed, reference=reference, **kwargs)

    def _compute(self, predictions: list[Any], references: list[str], gallery: str | None = None, **kwargs: Any) -> dict[str, Any]:
        from fp_rank.errors import InputError

        if gallery is None:
            raise InputError("fp-rank needs gallery=<folder or Hub dataset id> in compute()")
        unknown = sorted(set(kwargs) - set(_PASSTHROUGH))
        if unknown:
            raise InputError(f"unknown compute() arguments {unknown}; accepted: gallery, {', '.join(_PASSTHROUGH)}")
        kwargs.setdefault("progress", False)
        report = fp_evaluate([_unpack_array(p) for p in predictions], list(references), gallery=gallery, **kwargs)
        return result_dict(report)


_NPY_MAGIC = b"\x93NUMPY"


def _pack_arrays(predictions: Any) -> Any:
    """Arrays (and tensors) as ``{'bytes': <.npy>, 'path': None}``, checked first; other items unchanged."""
    if predictions is None or isinstance(predictions, (str, bytes)):
        return predictions
    from fp_rank.images.decode import check_array_image

    out = []
    for i, item in enumerate(predictions):
        if hasattr(item, "detach") and hasattr(item, "numpy"):  # a torch tensor
            item = item.detach().cpu().numpy()
        if isinstance(item, np.ndarray):
            check_array_image(item, f"predictions[{i}]")
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(item), allow_pickle=False)
            item = {"bytes": buf.getvalue(), "path": None}
        out.append(item)
    return out


def _unpack_array(item: Any) -> Any:
    if isinstance(item, dict) and isinstance(item.get("bytes"), bytes) and item["bytes"].startswith(_NPY_MAGIC):
        return np.load(io.BytesIO(item["bytes"]), allow_pickle=False)
    return item


def result_dict(report: Any) -> dict[str, Any]:
    """The flat dict ``compute`` returns: every declared metric of the (single) method, plus the report.

    Keys: each metric's result field (``map``, ``minp``, ``pairwise_similarity``, ``chance_map``,
    ``ceiling_map``, ``normalised``), ``<key>@<k>`` for per-k metrics (``cmc@1``, ``recall@10``),
    the per-group fields (``map_per_group``, ``pairwise_per_group``), ``map_micro``, ``n_queries``
    and ``n_tied``. With several methods or encoders, ``map`` maps ``encoder/method`` to mAP.
    """
    r = report.results[0] if len(report.results) == 1 else None
    out: dict[str, Any] = {}
    if r is not None:
        for m in METRICS:
            value = r.values.get(m.result_field)
            if m.per_k:
                out.update({f"{m.key}@{k}": v for k, v in (value or {}).items()})
            else:
                out[m.result_field] = value
            if m.per_group_field:
                out[m.per_group_field] = r.per_group.get(m.per_group_field, {})
        out.update(map_micro=r.map_micro, n_queries=r.n_queries, n_tied=r.n_tied)
    else:
        out["map"] = {f"{x.encoder}/{x.method}": x.map for x in report.results}
    out["protocol_version"] = PROTOCOL_VERSION
    out["fp_rank_version"] = __version__
    out["report"] = report.to_dict()
    return out


def install_evaluate_module(modules_cache: str | os.PathLike[str] | None = None) -> Path:
    """Put the metric module where ``evaluate.load("fp-rank")`` finds it without network.

    evaluate resolves a bare name ``"fp-rank"`` to the Hub Space ``evaluate-metric/fp-rank``;
    when that cannot be reached (offline), it falls back to the newest cached copy under
    ``$HF_MODULES_CACHE/evaluate_modules/metrics/evaluate-metric--fp-rank/<hash>/fp-rank.py``.
    This writes our module there, with the hash evaluate itself computes.

    Args:
        modules_cache: override of ``HF_MODULES_CACHE``.

    Returns:
        The path of the installed module file.
    """
    from evaluate.loading import files_to_hash, init_dynamic_modules

    dynamic = init_dynamic_modules(hf_modules_cache=modules_cache) if modules_cache else init_dynamic_modules()
    folder = Path(dynamic) / "metrics" / f"evaluate-metric--{METRIC_NAME}"
    folder.mkdir(parents=True, exist_ok=True)
    for parent in (folder.parent, folder):
        init = parent / "__init__.py"
        if not init.exists():
            init.write_text("")
    staging = folder / f".{METRIC_NAME}.py.tmp"
    staging.write_bytes(repository_file("finer_personalization_rank.py").read_bytes())
    digest = files_to_hash([str(staging)])
    target_dir = folder / digest
    target_dir.mkdir(exist_ok=True)
    (target_dir / "__init__.py").touch()
    target = target_dir / f"{METRIC_NAME}.py"
    os.replace(staging, target)
    return target
