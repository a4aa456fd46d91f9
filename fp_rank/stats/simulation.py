"""Synthetic per-query scores with a known truth, at the benchmark's designs.

Groups hold identities, identities hold queries, and everything is Beta, so scores stay in
[0, 1] like AP and are skewed near the ends like real identity means:

* identity ``i`` of group ``g`` has a true mean ``p_i ~ Beta(k_id mu_g, k_id (1 - mu_g))``;
* each of its queries scores ``y ~ Beta(k_q p_i, k_q (1 - p_i))``.

``E[y] = mu_g`` exactly, so the true macro mean is ``mean(mu_g)``. The identity variance is
``mu (1 - mu) / (k_id + 1)`` and the query variance ``mu (1 - mu) k_id / ((k_id + 1) (k_q + 1))``.
:data:`VARIANCE_STRUCTURES` fixes the two structures the coverage study uses and
:data:`BENCHMARK_DESIGNS` the sizes (CUB, Stanford Cars, a WildlifeReID species, and the suite's
older 2 x 20 design with 3 to 7 queries per identity).

For comparisons, :meth:`BetaDesign.sample_pair` draws two methods on the same identities: their
identity means are tied by a Gaussian copula with correlation ``rho`` (an identity that is hard
for one method tends to be hard for the other), method A's group means are ``mu_g + delta`` and
the queries of the two methods are independent given the identity means. The true difference of
the macro means is ``delta`` exactly.

Used by ``benchmarks/bench_coverage.py`` and the tests; useful to check a planned design too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fp_rank.errors import InputError
from fp_rank.stats.variance import VarianceComponents

#: (identity concentration k_id, query concentration k_q) of each variance structure.
#: "identity": identity means spread widely (sd 0.22 at mu 0.5), images of one identity agree
#: (sd 0.07): the mean of 10 images is dominated by which identity it is. "query": identities
#: are alike (sd 0.08) and single images scatter almost uniformly (sd 0.35): image noise dominates.
VARIANCE_STRUCTURES: dict[str, tuple[float, float]] = {
    "identity": (4.0, 40.0),
    "query": (40.0, 1.0),
}

#: name -> (group means, identities per group, queries per identity: n or an inclusive range).
BENCHMARK_DESIGNS: dict[str, tuple[tuple[float, ...], int, int | tuple[int, int]]] = {
    "CUB": ((0.35, 0.55, 0.75), 5, 10),
    "Stanford Cars": ((0.6,), 15, 10),
    "WildlifeReID species": ((0.4,), 10, 10),
    "2 x 20": ((0.3, 0.6), 20, (3, 7)),
}

#: Gauss-Hermite nodes per axis for the true paired components.
_QUADRATURE_NODES = 96


@dataclass(frozen=True)
class BetaDesign:
    """A hierarchical Beta model of per-query scores (see the module docstring).

    Attributes:
        group_means: the true mean ``mu_g`` of each group.
        identities_per_group: identities in every group.
        queries_per_identity: queries per identity, or an inclusive range ``(low, high)`` drawn
            uniformly per identity.
        identity_concentration: ``k_id`` (smaller: identities differ more).
        query_concentration: ``k_q`` (smaller: images of one identity differ more).
    """

    group_means: tuple[float, ...]
    identities_per_group: int
    queries_per_identity: int | tuple[int, int]
    identity_concentration: float
    query_concentration: float

    def __post_init__(self) -> None:
        if not self.group_means or not all(0.0 < mu < 1.0 for mu in self.group_means):
            raise InputError(f"group_means must lie strictly between 0 and 1; got {self.group_means!r}")
        if self.identities_per_group < 1 or min(self._query_range) < 1:
            raise InputError("identities_per_group and queries_per_identity must be >= 1")
        if self.identity_concentration <= 0 or self.query_concentration <= 0:
            raise InputError("concentrations must be positive")

    @property
    def _query_range(self) -> tuple[int, int]:
        q = self.queries_per_identity
        return (q, q) if isinstance(q, int) else (int(q[0]), int(q[1]))

    @property
    def truth(self) -> float:
        """The true macro mean."""
        return float(np.mean(self.group_means))

    @property
    def mean_queries_per_identity(self) -> float:
        low, high = self._query_range
        return (low + high) / 2.0

    def _labels(self) -> tuple[np.ndarray, np.ndarray]:
        n_groups, m = len(self.group_means), self.identities_per_group
        identities = np.array([f"{g}-{i}" for g in range(n_groups) for i in range(m)])
        groups = np.array([f"g{g}" for g in range(n_groups) for _ in range(m)])
        return identities, groups

    def _sizes(self, rng: np.random.Generator) -> np.ndarray:
        low, high = self._query_range
        shape = len(self.group_means) * self.identities_per_group
        return np.full(shape, low) if low == high else rng.integers(low, high + 1, size=shape)

    def _queries(self, rng: np.random.Generator, means: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        p = np.repeat(means, sizes)
        k = self.query_concentration
        return rng.beta(k * p, k * (1.0 - p))

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One dataset: ``(values, identities, groups)``, one entry per query.

        Example:
            >>> design = benchmark_design("CUB", "identity")
            >>> values, identities, groups = design.sample(np.random.default_rng(0))
            >>> values.shape, len(set(identities)), sorted(set(groups.tolist()))
            ((150,), 15, ['g0', 'g1', 'g2'])
        """
        k = self.identity_concentration
        mu = np.repeat(np.asarray(self.group_means), self.identities_per_group)
        means = rng.beta(k * mu, k * (1.0 - mu))
        sizes = self._sizes(rng)
        identities, groups = self._labels()
        return self._queries(rng, means, sizes), np.repeat(identities, sizes), np.repeat(groups, sizes)

    def _paired_means(self, z_b: np.ndarray, z_a: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
        from scipy import special, stats

        k = self.identity_concentration
        mu = np.repeat(np.asarray(self.group_means), z_b.shape[-1] // len(self.group_means))
        mu_a = mu + delta
        p_b = stats.beta.ppf(special.ndtr(z_b), k * mu, k * (1.0 - mu))
        p_a = stats.beta.ppf(special.ndtr(z_a), k * mu_a, k * (1.0 - mu_a))
        return p_a, p_b

    def _check_pair(self, delta: float, correlation: float) -> None:
        if not all(0.0 < mu + delta < 1.0 for mu in self.group_means):
            raise InputError(f"group means + delta must stay in (0, 1); got delta {delta!r}")
        if not -1.0 <= correlation <= 1.0:
            raise InputError(f"correlation must lie in [-1, 1]; got {correlation!r}")

    def sample_pair(
        self, rng: np.random.Generator, delta: float, correlation: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Two methods on the same identities, A better by ``delta`` in every group.

        Returns:
            ``(values_a, values_b, identities, groups)``: A's and B's queries are aligned (the
            same number per identity for both methods), so the labels serve both.

        Example:
            >>> design = benchmark_design("Stanford Cars", "query")
            >>> a, b, ids, groups = design.sample_pair(np.random.default_rng(0), 0.05, 0.7)
            >>> a.shape == b.shape == ids.shape == groups.shape == (150,)
            True
        """
        self._check_pair(delta, correlation)
        shape = len(self.group_means) * self.identities_per_group
        z_b = rng.standard_normal(shape)
        z_a = correlation * z_b + math.sqrt(1.0 - correlation**2) * rng.standard_normal(shape)
        p_a, p_b = self._paired_means(z_b, z_a, delta)
        sizes = self._sizes(rng)
        identities, groups = self._labels()
        values_a, values_b = self._queries(rng, p_a, sizes), self._queries(rng, p_b, sizes)
        return values_a, values_b, np.repeat(identities, sizes), np.repeat(groups, sizes)

    def component_of(self, mu: float) -> tuple[float, float]:
        """True ``(identity variance, query variance)`` of a group with mean ``mu``.

        Example:
            >>> benchmark_design("CUB", "identity").component_of(0.5)
            (0.05, 0.004878048780487805)
        """
        k_id, k_q = self.identity_concentration, self.query_concentration
        spread = mu * (1.0 - mu)
        return spread / (k_id + 1.0), spread * k_id / ((k_id + 1.0) * (k_q + 1.0))

    def paired_components(self, delta: float, correlation: float) -> dict[str, VarianceComponents]:
        """True variance components of the difference A - B per group (Gauss-Hermite quadrature).

        Example:
            >>> c = benchmark_design("Stanford Cars", "identity").paired_components(0.0, 1.0)
            >>> c["g0"].identity_variance < 1e-12  # the same identity means: no identity term
            True
        """
        self._check_pair(delta, correlation)
        nodes, weights = np.polynomial.hermite_e.hermegauss(_QUADRATURE_NODES)
        weights = weights / weights.sum()
        z_b = np.repeat(nodes, nodes.size)
        z_a = correlation * z_b + math.sqrt(1.0 - correlation**2) * np.tile(nodes, nodes.size)
        w = np.outer(weights, weights).ravel()
        out = {}
        for g, mu in enumerate(self.group_means):
            design = BetaDesign((mu,), 1, 1, self.identity_concentration, self.query_concentration)
            p_a, p_b = design._paired_means(z_b, z_a, delta)
            d = p_a - p_b
            tau2 = float(w @ (d - w @ d) ** 2)
            query = self.component_of(mu)[1] + self.component_of(mu + delta)[1]
            out[f"g{g}"] = VarianceComponents(
                f"g{g}", self.identities_per_group, self.mean_queries_per_identity, tau2, query
            )
        return out


def benchmark_design(name: str, structure: str) -> BetaDesign:
    """The :class:`BetaDesign` of a named design and variance structure.

    Args:
        name: a key of :data:`BENCHMARK_DESIGNS`.
        structure: a key of :data:`VARIANCE_STRUCTURES`.

    Raises:
        InputError: for an unknown name or structure.

    Example:
        >>> benchmark_design("WildlifeReID species", "query").identities_per_group
        10
    """
    if name not in BENCHMARK_DESIGNS:
        raise InputError(f"unknown design {name!r}; known: {sorted(BENCHMARK_DESIGNS)}")
    if structure not in VARIANCE_STRUCTURES:
        raise InputError(f"unknown variance structure {structure!r}; known: {sorted(VARIANCE_STRUCTURES)}")
    means, identities, queries = BENCHMARK_DESIGNS[name]
    k_id, k_q = VARIANCE_STRUCTURES[structure]
    return BetaDesign(means, identities, queries, k_id, k_q)
