"""DP release of the allelic test: the sensitivity bound, selection, the epsilon split, errors."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from gwas_synth import make_synthetic

from veil.errors import ConfigError
from veil.gwas.assoc import pooled_assoc
from veil.gwas.dp_release import DpRelease, allelic_sensitivity, dp_release
from veil.gwas.session import GwasOptions, GwasResult, Test, prepare_local, run_local
from veil.gwas.suffstats import GROUP_ALL, GROUP_CASE, GROUP_CONTROL


@pytest.fixture(scope="module")
def assoc_result() -> GwasResult:
    syn = make_synthetic(seed=11)
    sites, al = prepare_local(syn.sites)
    return run_local(sites, al.variants, GwasOptions(test=Test.ASSOC))


def _allelic_chisq(a: np.ndarray, c: np.ndarray, r: int, s: int) -> np.ndarray:
    """PLINK's allelic chi-square from A1 counts ``a`` (cases, of 2r) and ``c`` (controls, of 2s)."""
    n, r1, r2 = 2.0 * (r + s), 2.0 * r, 2.0 * s
    m = a + c
    den = r1 * r2 * m * (n - m)
    x = n * a - m * r1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, n * x * x / np.where(den > 0, den, 1.0), 0.0)


def _exhaustive_sensitivity(r: int, s: int) -> float:
    """Largest chi-square change over every allele table and every one-subject change."""
    a = np.arange(2 * r + 1, dtype=np.float64)[:, None]
    c = np.arange(2 * s + 1, dtype=np.float64)[None, :]
    base = _allelic_chisq(a, c, r, s)
    best = 0.0
    for d in (1, 2):  # a subject gains d copies of A1 (losing them is the same pair reversed)
        case = np.abs(_allelic_chisq(a + d, c, r, s) - base)[: 2 * r + 1 - d, :]
        ctrl = np.abs(_allelic_chisq(a, c + d, r, s) - base)[:, : 2 * s + 1 - d]
        best = max(best, float(case.max(initial=0.0)), float(ctrl.max(initial=0.0)))
    return best


def test_closed_form_sensitivity_equals_exhaustive_search() -> None:
    for r, s in itertools.product(range(1, 31), range(1, 31)):
        exact = _exhaustive_sensitivity(r, s)
        bound = float(allelic_sensitivity(2 * r, 2 * s))
        assert exact <= bound * (1 + 1e-12), (r, s, exact, bound)
        assert exact >= bound * (1 - 1e-12), (r, s, exact, bound)  # tight: never loose
    # the balanced case is Uhler et al.'s 8N / (N + 2)
    for n in (10, 100, 1000):
        assert allelic_sensitivity(n, n) == pytest.approx(8 * n / (n + 2), rel=1e-14)
    assert allelic_sensitivity(0, 10) == 0.0


def _genotype_tables(r: int, s: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Every case/control genotype table with r cases and s controls, as (V, 3, 4) counts,
    and every pair of tables that differ by one subject's genotype."""
    comps_r = [(i, j, r - i - j) for i in range(r + 1) for j in range(r + 1 - i)]
    comps_s = [(i, j, s - i - j) for i in range(s + 1) for j in range(s + 1 - i)]
    index = {}
    counts = np.zeros((len(comps_r) * len(comps_s), 3, 4), dtype=np.int64)
    for v, (gr, gs) in enumerate(itertools.product(comps_r, comps_s)):
        index[gr, gs] = v
        counts[v, GROUP_CASE, :3] = gr
        counts[v, GROUP_CONTROL, :3] = gs
        counts[v, GROUP_ALL, :3] = np.add(gr, gs)
    pairs = []
    for (gr, gs), v in index.items():
        for src, dst in itertools.permutations(range(3), 2):
            for case in (True, False):
                g = list(gr if case else gs)
                if g[src] == 0:
                    continue
                g[src] -= 1
                g[dst] += 1
                key = (tuple(g), gs) if case else (gr, tuple(g))
                pairs.append((v, index[key]))
    return counts, pairs


@pytest.mark.parametrize("r,s", [(1, 1), (3, 4), (5, 5), (2, 9), (8, 3)])
def test_one_subject_never_moves_pooled_assoc_more_than_the_bound(r: int, s: int) -> None:
    counts, pairs = _genotype_tables(r, s)
    chisq = np.nan_to_num(pooled_assoc(counts).chisq, nan=0.0)  # NA (monomorphic) scores 0
    i, j = np.array(pairs).T
    worst = float(np.max(np.abs(chisq[i] - chisq[j])))
    bound = float(allelic_sensitivity(2 * r, 2 * s))
    assert worst <= bound * (1 + 1e-12)
    assert worst >= bound * (1 - 1e-12)  # attained: a smaller bound would be violated


def test_large_epsilon_recovers_the_top_k(assoc_result: GwasResult) -> None:
    chisq = np.nan_to_num(assoc_result.assoc.chisq, nan=0.0)  # type: ignore[union-attr]
    order = np.argsort(-chisq)
    truth = list(assoc_result.variants.snp[order[:4]])
    assert chisq[order[3]] - chisq[order[4]] > 0.1  # a gap after the 4th (noise ~1e-5)
    for rng in (None, np.random.default_rng(3)):
        rel = dp_release(assoc_result, 1e7, k=4, rng=rng)
        assert list(rel.snp) == truth
        np.testing.assert_allclose(rel.chisq, chisq[order[:4]], rtol=1e-4)
        assert rel.noise == ("opendp" if rng is None else "numpy")


def test_small_epsilon_is_noisy_and_scaled_as_stated(assoc_result: GwasResult) -> None:
    rng = np.random.default_rng(5)
    chisq = np.nan_to_num(assoc_result.assoc.chisq, nan=0.0)  # type: ignore[union-attr]
    by_snp = dict(zip(assoc_result.variants.snp, chisq, strict=True))
    eps, k = 2.0, 2
    errs, picked = [], set()
    for _ in range(400):
        rel = dp_release(assoc_result, eps, k=k, rng=rng, selection_share=0.25)
        errs += [x - by_snp[s] for s, x in zip(rel.snp, rel.chisq, strict=True)]
        picked.update(rel.snp)
    b = k * rel.sensitivity / (eps * 0.75)
    # Laplace(b): mean absolute deviation b (400*2 draws: well within 15 %)
    assert np.mean(np.abs(errs)) == pytest.approx(b, rel=0.15)
    assert "rs_sep" in picked  # the perfectly separated variant (chisq ~ 800) always wins
    assert len(picked) > 4  # the runner-up is random at this epsilon
    assert rel.records[0].noise_scale == pytest.approx(2 * k * rel.sensitivity / (eps * 0.25))


def test_epsilon_split_and_records(assoc_result: GwasResult) -> None:
    for rng in (None, np.random.default_rng(0)):
        rel = dp_release(assoc_result, 1.5, k=3, rng=rng, selection_share=0.4)
        assert isinstance(rel, DpRelease)
        assert rel.epsilon_selection == pytest.approx(0.6, rel=1e-9)
        assert rel.epsilon_release == pytest.approx(0.9, rel=1e-9)
        assert rel.epsilon == pytest.approx(1.5, rel=1e-9)
        sel, out = rel.records
        assert sel.epsilon == pytest.approx(0.6, rel=1e-9)
        assert sel.rho == pytest.approx(0.6**2 / 2)
        assert out.epsilon == pytest.approx(0.9, rel=1e-9)
        assert out.sensitivity == pytest.approx(3 * rel.sensitivity)
        assert out.noise_scale == pytest.approx(3 * rel.sensitivity / 0.9)
        js = rel.to_json()
        assert js["k"] == 3 and len(js["hits"]) == 3 and js["epsilon"] == pytest.approx(1.5)
        assert {"CHR", "SNP", "BP", "CHISQ", "P"} == set(js["hits"][0])  # never A1
        assert [e["event"] for e in rel.ledger_entries()] == ["dp_release", "dp_release"]
        assert list(rel.chisq) == sorted(rel.chisq, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in rel.p)


def test_seeded_release_is_reproducible(assoc_result: GwasResult) -> None:
    a = dp_release(assoc_result, 1.0, k=3, rng=np.random.default_rng(42))
    b = dp_release(assoc_result, 1.0, k=3, rng=np.random.default_rng(42))
    assert a == b


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_epsilon_is_refused(assoc_result: GwasResult, eps: float) -> None:
    with pytest.raises(ConfigError, match="dp-epsilon"):
        dp_release(assoc_result, eps, k=2)


def test_bad_k_and_share_are_refused(assoc_result: GwasResult) -> None:
    n = len(assoc_result.variants)
    for k in (0, n + 1, True):
        with pytest.raises(ConfigError, match="k must be"):
            dp_release(assoc_result, 1.0, k=k)
    for share in (0.0, 1.0):
        with pytest.raises(ConfigError, match="selection_share"):
            dp_release(assoc_result, 1.0, k=2, selection_share=share)


@pytest.mark.parametrize("test", [Test.LOGISTIC, Test.LINEAR, Test.TREND])
def test_only_assoc_is_supported(assoc_result: GwasResult, test: Test) -> None:
    other = dataclasses.replace(assoc_result, test=test)
    with pytest.raises(ConfigError, match="--test assoc only"):
        dp_release(other, 1.0, k=2)
