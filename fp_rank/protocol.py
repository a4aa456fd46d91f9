"""The reported metrics of the protocol, each declared once.

Every table, file and front end derives its metrics from :data:`METRICS`: the per-query rows
and CSV columns, :class:`~fp_rank.reporting.report.MethodResult`'s fields and JSON keys, the
bootstrap intervals, the ``evaluate`` module's ``compute()`` keys and the metric card. Adding a
metric is one :class:`Metric` entry here, its per-query kernel (in :mod:`fp_rank.ranking` for a
ranking metric) and one line saying where the views show it
(:data:`fp_rank.views.presentation.SHOWN`).

Aggregation (one rule for every per-query metric): a group's value is the mean over its scored
queries; a method's value is the mean over groups (macro). Queries whose value is undefined
(NaN: e.g. skipped under ``on_missing="skip"``) are left out of both means.

Example:
    >>> [m.key for m in METRICS]
    ['map', 'cmc', 'recall', 'minp', 'pairwise', 'clip_t', 'judge', 'floor', 'ceiling', 'baseline', 'normalised']
    >>> metric("cmc").column_for(5), metric("cmc").label_for(5)
    ('cmc5', 'CMC@5')
    >>> query_columns((1, 10))[:5]
    ['ap', 'cmc1', 'cmc10', 'recall1', 'recall10']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from fp_rank.errors import InputError

#: The paper that defines the protocol (the metric card and the evaluate module cite it).
CITATION = """\
@article{kilrain2025finerpersonalization,
  title   = {Finer-Personalization Rank: Fine-Grained Retrieval Examines Identity Preservation for Personalized Generation},
  author  = {Kilrain and Carlyn and Chae and Beery and Chao and Gu},
  journal = {arXiv preprint arXiv:2512.19026},
  year    = {2025}
}
"""

#: Default ranks of the per-k metrics (CMC@k, Recall@k).
DEFAULT_KS: tuple[int, ...] = (1, 5, 10)

Kind = Literal["query", "calibration"]
#: How a group's value comes from its queries: their mean, or (CLIP-T, as the reference does) the
#: mean over identities of the mean over prompts of the mean over images.
Aggregation = Literal["query_mean", "identity_prompt_mean"]


@dataclass(frozen=True)
class Metric:
    """One reported metric.

    Attributes:
        key: short name; the summary-row key (with ``k`` appended for per-k metrics: ``cmc1``).
        label: short label (``{k}`` is filled in: ``CMC@{k}``).
        description: one sentence for cards, docs and the evaluate module.
        result_field: attribute of :class:`~fp_rank.reporting.report.MethodResult` and key of
            the report JSON's results (a ``{k: value}`` dict for per-k metrics).
        column: per-query row key (``{k}`` template for per-k metrics); None for calibration
            values that have no per-query form.
        source: attribute of :class:`~fp_rank.ranking.RankingResult` holding the per-query
            values; None when another stage computes them (pairwise, calibration).
        kind: ``"query"`` (aggregated from per-query values by the macro rule) or
            ``"calibration"`` (computed from the chance floor and the real-image ceiling).
        aggregation: how a group's value comes from its queries (see :data:`Aggregation`); the
            method's value is always the mean over groups.
        per_k: one value per rank k of ``cmc_ks``.
        table_k: the k a per-k metric is summarised at (tables, cards and intervals; the nearest
            computed k when that one was not computed).
        per_group_field: MethodResult attribute holding group -> value, if the report keeps it.
        interval: gets a bootstrap interval (key: the summary-row key).
        lower, upper: the range of valid values (the JSON schema's bounds).
        optional: computed only on request (CLIP-T): tables drop its column when no row has it.
        zero_one: each query scores 0 or 1 (an expected value in between under ties): its interval
            keeps its coverage at the ends of the range (:mod:`fp_rank.stats.boundary`).
    """

    key: str
    label: str
    description: str
    result_field: str
    column: str | None
    source: str | None = None
    kind: Kind = "query"
    aggregation: Aggregation = "query_mean"
    per_k: bool = False
    table_k: int = 1
    per_group_field: str | None = None
    interval: bool = False
    lower: float | None = 0.0
    upper: float | None = 1.0
    optional: bool = False
    zero_one: bool = False

    def column_for(self, k: int | None = None) -> str:
        """The per-query column (for per-k metrics, at rank ``k``)."""
        if self.column is None:
            raise InputError(f"metric {self.key!r} has no per-query column")
        return self.column.format(k=k) if self.per_k else self.column

    def label_for(self, k: int | None = None) -> str:
        return self.label.format(k=k if k is not None else self.table_k)

    def shown_k(self, ks: Sequence[int]) -> int:
        """The k a table shows: ``table_k`` when computed, else the nearest computed k."""
        return self.table_k if self.table_k in ks else min(ks, key=lambda k: (abs(k - self.table_k), k))

    def summary_key(self, ks: Sequence[int] = DEFAULT_KS) -> str:
        """The summary-row and interval key: ``map``, ``cmc1``, ``recall10`` ..."""
        return f"{self.key}{self.shown_k(ks)}" if self.per_k else self.key


METRICS: tuple[Metric, ...] = (
    Metric(
        key="map", label="mAP", description="Mean average precision of retrieving the query's own identity "
        "(exact under tied similarities), mean over groups of each group's mean.",
        result_field="map", column="ap", source="ap", per_group_field="map_per_group", interval=True,
    ),
    Metric(
        key="cmc", label="CMC@{k}", description="Share of queries whose first same-identity gallery image is "
        "within the top k.", result_field="cmc", column="cmc{k}", source="cmc", per_k=True, table_k=1,
        interval=True, zero_one=True,
    ),
    Metric(
        key="recall", label="Recall@{k}", description="Share of the query's same-identity gallery images ranked "
        "within the top k (expected value under ties).", result_field="recall", column="recall{k}",
        source="recall", per_k=True, table_k=10, interval=True,
    ),
    Metric(
        key="minp", label="mINP", description="Mean inverse negative penalty: R over the rank of the last "
        "same-identity image.", result_field="minp", column="inp", source="inp",
    ),
    Metric(
        key="pairwise", label="pairwise", description="DreamBench-style baseline, same encoder: "
        "cosine to the real image a generated image was conditioned on (zero-shot methods), else the mean cosine "
        "to its identity's reference (fine-tuning) images.",
        result_field="pairwise_similarity", column="pairwise", per_group_field="pairwise_per_group",
        interval=True, lower=-1.000001, upper=1.000001,
    ),
    Metric(
        key="clip_t", label="CLIP-T", description="Text alignment: cosine between a generated image's CLIP image "
        "features and its prompt's text features; per group, mean over prompts of a subject, then over subjects.",
        result_field="clip_t", column="clip_t", aggregation="identity_prompt_mean",
        lower=-1.000001, upper=1.000001, optional=True,
    ),
    Metric(
        key="judge", label="judge", description="Concept preservation as a vision-language judge rates it "
        "(DreamBench++ style): the judge compares the generated image with its identity's reference image (the "
        "conditioning image where the run names one) and gives an integer 0-4, reported divided by 4; replies "
        "without exactly one score in range are retried, then counted as missing, never filled in.",
        result_field="judge", column="judge", interval=True, optional=True,
    ),
    Metric(
        key="floor", label="chance", description="Exact expected mAP of a uniformly random "
        "ranking of the same gallery.", result_field="chance_map", column="chance_ap", source="chance_ap",
    ),
    Metric(
        key="ceiling", label="holdout", description="Real-image reference (stored as ceiling_map): mAP of "
        "held-out real images of the identities used as queries (per group the holdout split, else the reference "
        "split); the normalised score uses it. It is what real photos score, not an upper bound: a method can score "
        "above it.", result_field="ceiling_map", column=None, kind="calibration",
    ),
    Metric(
        key="baseline", label="real", description="The paper's real-image baseline: "
        "mAP of the reference (fine-tuning) images used as queries against the same gallery.",
        result_field="real_baseline_map", column=None, kind="calibration",
    ),
    Metric(
        key="normalised", label="normalised", description="(mAP - chance) / (holdout - "
        "chance): 0 at chance, 1 at the real holdout images' mAP (above 1 when a method beats it).", result_field="normalised", column=None,
        kind="calibration", lower=None, upper=None,
    ),
)

#: The rules the protocol pins where libraries disagree, one sentence each (name, rule). The metric
#: card states every one of them (``tests/test_readme.py`` checks it).
RULES: tuple[tuple[str, str], ...] = (
    ("AP", "(1/R) times the sum, over the R gallery images of the query's identity, of the precision at that "
     "image's rank; ranks by descending cosine similarity, no cutoff. Equal to the reference code, torchreid and "
     "scikit-learn whenever no scores are tied."),
    ("Ties", "Tied similarities take the exact expected value over all orderings of the tied items (McSherry and "
     "Najork, ECIR 2008), for AP, CMC@k, Recall@k and mINP alike; a result never depends on gallery order. "
     "scikit-learn (pessimistic grouping) and argsort code (arbitrary order) differ here. Reports count the "
     "queries with ties (n_tied)."),
    ("Groups and aggregation", "A query is ranked only against the gallery images of its own identity's group "
     "(the other identities of the group are the look-alikes); a group's value is the mean over its scored "
     "queries; the headline is the mean over groups (macro); the micro mean over all queries (map_micro) and the "
     "per-group and per-identity means are given too."),
    ("Missing identities", "A label without gallery images is an error by default (listing close matches); "
     "on_missing='skip' leaves those images out, on_missing='zero' scores them AP 0 in their group (the "
     "reference code's behaviour); either way they are counted (n_missing)."),
    ("Chance floor", "The exact expected AP of a uniformly random ranking, (H_N + (R - 1)/(N - 1) (N - H_N)) / N "
     "with H_N the N-th harmonic number, computed in closed form, not simulated."),
    ("Real-image references", "The holdout reference (ceiling_map in reports) is the mAP of real held-out images "
     "of the same identities used as queries against the same gallery (per group the holdout split, else the "
     "reference split); the real-image baseline is the paper's: the reference images as queries. Both say what "
     "real photos score; neither is an upper bound (another sample of real images can score higher, and so can a "
     "method)."),
    ("Pairwise baseline", "The cosine to the real image a zero-shot method was conditioned on, where the run "
     "names it; else the mean cosine to the identity's reference (fine-tuning) images (DreamBooth's rule); same "
     "encoder, same run, recorded per image (pairwise_rule)."),
    ("Negative scores", "Similarities may be negative cosines; nothing treats scores <= 0 as non-relevant "
     "(torchmetrics' RetrievalMAP does)."),
    ("Copies of real images", "A generated image that is an exact or near copy of a gallery, reference or "
     "holdout image is flagged in its row and counted (leaks='flag'); leaks='exclude' leaves it out of every score."),
    ("Single-identity groups", "A group with one identity would score AP 1 for every query: an error by default, "
     "or left out and counted (single_identity_groups='skip')."),
)

_BY_KEY = {m.key: m for m in METRICS}


def metric(key: str) -> Metric:
    """The declared metric named ``key``.

    Raises:
        InputError: no metric has that key (the message lists them).
    """
    try:
        return _BY_KEY[key]
    except KeyError:
        raise InputError(f"unknown metric {key!r}; declared metrics: {sorted(_BY_KEY)}") from None


def query_metrics() -> tuple[Metric, ...]:
    """The metrics with a per-query value, in declaration order."""
    return tuple(m for m in METRICS if m.column is not None)


def query_columns(ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    """Every per-query metric column for ranks ``ks``, in declaration order."""
    cols: list[str] = []
    for m in query_metrics():
        if m.per_k:
            cols.extend(m.column_for(k) for k in ks)
        else:
            cols.append(m.column_for())
    return cols


def interval_metrics() -> tuple[Metric, ...]:
    """The metrics that get a bootstrap interval."""
    return tuple(m for m in METRICS if m.interval)
