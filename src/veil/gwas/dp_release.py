"""Differentially private release of the top-k hits of the allelic test (``--assoc``).

Published GWAS summary statistics leak membership (Homer et al. 2008): with a person's genotype
and the study's allele frequencies, an attacker can tell whether that person took part. The
federated run reveals the pooled statistics to the consortium only; what the consortium
*publishes* can instead be this release, following Uhler, Slavkovic & Fienberg (2013,
"Privacy-preserving data sharing for genome-wide association studies", J. Priv. Confid. 5(1))
and Johnson & Shmatikov (2013, KDD):

1. **Selection** (``epsilon * selection_share``): ``k`` variants are chosen by a DP top-k
   selection on the allelic chi-square, utility ``chisq`` (NA counted as 0), utility
   sensitivity ``Delta`` (below). Default noise source: OpenDP's ``make_noisy_top_k`` under
   ``max_divergence`` (exponential noise, permute-and-flip; OpenDP's privacy map certifies
   ``2 k Delta / scale``). With a numpy ``rng`` (reproducible runs): Gumbel noise of scale
   ``2 k Delta / eps_sel`` and one-shot top-k, which is k-fold peeling of the exponential
   mechanism at ``eps_sel / k`` each (Durfee & Rogers 2019).
2. **Release** (the rest of epsilon): the selected variants' chi-squares plus Laplace noise of
   scale ``k Delta / eps_rel`` (L1 sensitivity ``k Delta``: one subject can move every selected
   statistic), through :func:`veil.dp.release` (OpenDP) or numpy with an ``rng``. P values are
   computed from the noisy chi-square (post-processing; clamped at 0).

The two parts compose to ``epsilon`` (basic composition of two pure-DP mechanisms).

Neighbouring datasets and sensitivity
-------------------------------------
Neighbours differ in **one subject's genotype calls** (any change among 0/1/2 copies, at every
variant at once); the numbers of cases and controls, **which calls are missing**, the list of
variants that passed QC (``--geno/--hwe/--maf`` are decided on the pooled counts and treated as
public here) and the variant map are fixed and public. At a variant with ``R`` cases and ``S``
controls called (``N = R + S``), the allelic chi-square (PLINK's, 2x2 allele table of ``2N``
alleles, no continuity correction; NA = 0) changes by at most::

    Delta(R, S) = 2 N^2 / (min(R, S) * (max(R, S) + 1))

attained by a perfectly associated table (every case allele A1, every control allele A2) when
one subject of the smaller group flips to the other homozygote. For ``R = S = N/2`` this is
``8N / (N + 2)``, the bound of Uhler et al. (2013) for the allelic test; Yu, Fienberg,
Slavkovic & Uhler (2014, J. Biomed. Inform. 50) extend it to unequal groups. veil checks the
closed form by exhaustive enumeration (every table and every one-subject change) for all
``R, S <= 30`` in ``tests/unit/gwas/test_dp_release.py`` and by enumerating genotype tables
through :func:`veil.gwas.assoc.pooled_assoc`. The mechanisms use ``Delta = max`` over the
candidate variants (it depends only on the called counts, which neighbours share).

What it does not cover: the set of variants that passed QC and the pooled A1 (both
data-dependent; the release names variants by CHR, SNP and BP only, never A1), and everything
the consortium's sites learn from the un-noised sums during the run.

Only ``--assoc`` is supported: the trend test's sensitivity is not derived here, and regression
statistics (``--logistic``/``--linear``) have no bounded sensitivity without clamping the
phenotype and covariates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import chdtrc

from veil.dp import DPEventRecord, DPSpec, EventKind, Mechanism, Neighbouring, release
from veil.dp import _deps as dp_deps
from veil.errors import ConfigError, DataError, ProtocolError
from veil.gwas.session import GwasResult, Test

F64 = npt.NDArray[np.float64]
#: the unit of privacy of the release
UNIT = "subject"
_QUERY = "gwas top-k allelic chi-square"


def allelic_sensitivity(case_alleles: npt.ArrayLike, ctrl_alleles: npt.ArrayLike) -> F64:
    """Per variant, the most one subject's genotype can change the allelic chi-square.

    Parameters
    ----------
    case_alleles, ctrl_alleles:
        Alleles called in cases / controls (twice the subjects with a call), per variant.

    Returns
    -------
    ``Delta = 2 N^2 / (min(R, S) (max(R, S) + 1))`` with ``R, S`` the called cases and
    controls and ``N = R + S``; 0 where a group has no call (the statistic is then constant).
    """
    r = np.asarray(case_alleles, dtype=np.float64) / 2.0
    s = np.asarray(ctrl_alleles, dtype=np.float64) / 2.0
    lo, hi = np.minimum(r, s), np.maximum(r, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(lo > 0, 2.0 * (r + s) ** 2 / (lo * (hi + 1.0)), 0.0)
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class DpRelease:
    """A differentially private top-k release of the allelic test.

    Attributes
    ----------
    epsilon, epsilon_selection, epsilon_release:
        Total epsilon (pure DP, delta 0) and its split between selection and release.
    k:
        Number of variants released.
    sensitivity:
        ``Delta``: the largest change of one variant's chi-square from one subject.
    mechanism:
        Human-readable description of both steps.
    noise:
        ``"opendp"`` (CSPRNG, floating-point-safe samplers) or ``"numpy"`` (seeded Generator).
    chrom, snp, bp:
        The selected variants, in decreasing order of noisy chi-square.
    chisq, p:
        Noisy chi-square and the P value computed from it (1 df).
    n_candidates:
        Variants the selection chose from (those tested after QC).
    records:
        The two DP events (selection, release) for the audit ledger.
    """

    epsilon: float
    epsilon_selection: float
    epsilon_release: float
    k: int
    sensitivity: float
    mechanism: str
    noise: str
    chrom: tuple[str, ...]
    snp: tuple[str, ...]
    bp: tuple[int, ...]
    chisq: tuple[float, ...]
    p: tuple[float, ...]
    n_candidates: int
    records: tuple[DPEventRecord, ...]

    def hits(self) -> list[dict[str, Any]]:
        """The released variants as rows (CHR, SNP, BP, CHISQ, P)."""
        return [
            {"CHR": c, "SNP": s, "BP": b, "CHISQ": x, "P": p}
            for c, s, b, x, p in zip(self.chrom, self.snp, self.bp, self.chisq, self.p, strict=True)
        ]

    def ledger_entries(self) -> list[dict[str, Any]]:
        """Plain-JSON DP events (selection, then release) for the audit ledger."""
        return [{"event": "dp_release", **r.to_dict()} for r in self.records]

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (what may be published)."""
        return {
            "test": Test.ASSOC.value,
            "epsilon": self.epsilon,
            "delta": 0.0,
            "epsilon_selection": self.epsilon_selection,
            "epsilon_release": self.epsilon_release,
            "k": self.k,
            "sensitivity": self.sensitivity,
            "unit": UNIT,
            "neighbouring": (
                "one subject's genotype calls changed; numbers of cases and controls, missing "
                "calls, QC-passed variants public"
            ),
            "mechanism": self.mechanism,
            "noise": self.noise,
            "n_candidates": self.n_candidates,
            "hits": self.hits(),
            "events": [r.to_dict() for r in self.records],
        }


def dp_release(
    result: GwasResult,
    epsilon: float,
    *,
    k: int,
    rng: np.random.Generator | None = None,
    selection_share: float = 0.5,
) -> DpRelease:
    """Select ``k`` top variants and release their noisy chi-squares with ``epsilon``-DP.

    Parameters
    ----------
    result:
        A ``--assoc`` result (any other test raises :class:`~veil.errors.ConfigError`).
    epsilon:
        Total privacy budget of the release (pure DP), finite and > 0.
    k:
        Number of variants to release, ``1 <= k <=`` number of tested variants.
    rng:
        ``None`` (default, use in production): all noise from OpenDP's samplers (CSPRNG,
        floating-point safe, not seedable). A numpy Generator: numpy noise, reproducible for
        tests and demos, not hardened against floating-point attacks (Mironov 2012).
    selection_share:
        Fraction of ``epsilon`` spent on the selection, in (0, 1).

    Reveals
    -------
    The selected variants' CHR/SNP/BP and noisy chi-square/P only.
    """
    if result.test is not Test.ASSOC:
        raise ConfigError(
            f"a DP release is available for --test assoc only (got --{result.test.value}): the "
            "allelic chi-square has a known bound on what one subject can change; the trend "
            "test's is not derived here, and logistic/linear statistics have no bounded "
            "sensitivity without clamping phenotype and covariates"
        )
    eps = float(epsilon)
    if not (math.isfinite(eps) and eps > 0.0):
        raise ConfigError(f"--dp-epsilon must be a positive finite number, got {epsilon!r}")
    share = float(selection_share)
    if not 0.0 < share < 1.0:
        raise ConfigError(f"selection_share must be in (0, 1), got {selection_share!r}")
    assoc = result.assoc
    assert assoc is not None
    n = len(result.variants)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= n:
        raise ConfigError(
            f"DP release: k must be an integer in [1, {n}] (tested variants), got {k!r}"
        )
    k = int(k)
    if assoc.case_alleles is None or assoc.ctrl_alleles is None:
        raise ConfigError("DP release needs the called allele counts of the --assoc result")
    delta = float(np.max(allelic_sensitivity(assoc.case_alleles, assoc.ctrl_alleles)))
    if not delta > 0.0:
        raise DataError("DP release: no variant has calls in both cases and controls")
    score = np.where(np.isfinite(assoc.chisq), assoc.chisq, 0.0).astype(np.float64)
    eps_sel, eps_rel = eps * share, eps * (1.0 - share)
    scale_sel = 2.0 * k * delta / eps_sel
    if rng is None:
        picked, sel_eps = _select_opendp(score, k, scale_sel, delta)
        spec = DPSpec(
            Mechanism.LAPLACE, eps_rel, 0.0, k * delta, _QUERY, UNIT, Neighbouring.REPLACE, (k,)
        )
        noisy, rel_record = release(score[picked], spec)
        sel_name = "noisy top-k, exponential noise (OpenDP make_noisy_top_k, permute-and-flip)"
    else:
        noise = rng.gumbel(scale=scale_sel, size=score.shape)
        picked = np.argsort(-(score + noise), kind="stable")[:k]
        sel_eps = eps_sel
        b = k * delta / eps_rel
        noisy = score[picked] + rng.laplace(scale=b, size=k)
        rel_record = DPEventRecord(
            EventKind.LAPLACE, "laplace (numpy)", eps_rel, 0.0, k * delta, b, b / (k * delta),
            (k,), query=_QUERY, unit=UNIT, neighbouring=Neighbouring.REPLACE,
        )  # fmt: skip
        sel_name = "noisy top-k, Gumbel noise (exponential mechanism peeled k times, numpy)"
    sel_record = DPEventRecord(
        EventKind.ZCDP,
        sel_name,
        sel_eps,
        0.0,
        delta,
        scale_sel,
        scale_sel / delta,
        (k,),
        rho=sel_eps * sel_eps / 2.0,  # eps-DP implies (eps^2 / 2)-zCDP (Bun & Steinke 2016)
        query="gwas top-k selection",
        unit=UNIT,
        neighbouring=Neighbouring.REPLACE,
        extra=(("pure_epsilon", sel_eps), ("candidates", n)),
    )
    order = np.argsort(-noisy, kind="stable")
    picked, noisy = picked[order], noisy[order]
    vt = result.variants
    return DpRelease(
        epsilon=sel_eps + rel_record.epsilon,
        epsilon_selection=sel_eps,
        epsilon_release=rel_record.epsilon,
        k=k,
        sensitivity=delta,
        mechanism=f"{sel_name}; then Laplace (L1 sensitivity k*Delta) on the selected chi-squares",
        noise="opendp" if rng is None else "numpy",
        chrom=tuple(str(x) for x in vt.chrom[picked]),
        snp=tuple(str(x) for x in vt.snp[picked]),
        bp=tuple(int(x) for x in vt.bp[picked]),
        chisq=tuple(float(x) for x in noisy),
        p=tuple(float(x) for x in chdtrc(1.0, np.maximum(noisy, 0.0))),
        n_candidates=n,
        records=(sel_record, rel_record),
    )


def _select_opendp(
    score: F64, k: int, scale: float, delta: float
) -> tuple[npt.NDArray[np.intp], float]:
    """Indices chosen by OpenDP's noisy top-k and the epsilon its privacy map certifies."""
    dp = dp_deps.opendp()
    meas = dp.m.make_noisy_top_k(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.linf_distance(T=float, monotonic=False),
        dp.max_divergence(),
        k=k,
        scale=scale,
    )
    eps = float(meas.map(d_in=delta))
    if not 0.0 < eps <= 2.0 * k * delta / scale * (1.0 + 1e-9):
        raise ProtocolError(
            f"OpenDP's noisy top-k certifies epsilon {eps}, not {2 * k * delta / scale}"
        )
    picked = np.asarray(meas(score.tolist()), dtype=np.intp)
    if picked.shape != (k,):
        raise ProtocolError(f"OpenDP's noisy top-k returned {picked.shape[0]} indices, asked {k}")
    return picked, eps


__all__ = ["UNIT", "DpRelease", "allelic_sensitivity", "dp_release"]
