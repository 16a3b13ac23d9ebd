"""Pure kernels: variant matching, HWE, batched SPD inverse, logistic state machine, counts."""

from __future__ import annotations

import numpy as np
import pytest
from gwas_oracle import hwe_exact_reference

from veil.errors import DataError, ProtocolError
from veil.gwas.assoc import genomic_control
from veil.gwas.logistic import LogisticFit, spd_inverse
from veil.gwas.plinkio import VariantTable
from veil.gwas.qc import hwe_exact_p
from veil.gwas.suffstats import (
    cell_logistic_derivatives,
    distinct_patterns,
    site_genotype_counts,
    site_group_counts,
    site_logistic_derivatives,
)
from veil.gwas.variants import AbsentPolicy, align_genotypes, match_variants


def table(
    ids: list[str], a1: list[str], a2: list[str], bp: list[int] | None = None
) -> VariantTable:
    n = len(ids)
    return VariantTable(
        np.full(n, "1"),
        np.array(ids),
        np.zeros(n),
        np.array(bp or [100 * (i + 1) for i in range(n)], dtype=np.int64),
        np.array(a1),
        np.array(a2),
    )


def test_match_flips_reports_and_conflicts() -> None:
    t1 = table(["a", "b", "c", "d"], ["A", "C", "G", "T"], ["G", "T", "A", "C"])
    # b swapped, c at another position (conflict), d absent, e new
    t2 = table(
        ["e", "c", "b", "a"], ["A", "G", "T", "A"], ["C", "A", "C", "G"], [900, 999, 200, 100]
    )
    al = match_variants([("h1", t1), ("h2", t2)], AbsentPolicy.USE_AVAILABLE)
    assert list(al.variants.snp) == ["a", "b", "c", "d", "e"]
    s2 = al.site("h2")
    np.testing.assert_array_equal(s2.index, [3, 2, -1, -1, 0])
    np.testing.assert_array_equal(s2.flip, [False, True, False, False, False])
    assert al.conflicts["h2"] == ["c"]
    assert sorted(al.absent["h2"]) == ["c", "d"] and al.absent["h1"] == ["e"]
    geno = np.array([[0, 1], [1, 1], [2, -1], [0, 2]], dtype=np.int8)
    aligned = align_genotypes(geno, s2)
    np.testing.assert_array_equal(aligned[1], [0, -1])  # b flipped: 2 - g, missing kept
    np.testing.assert_array_equal(aligned[3], [-1, -1])  # d absent: all missing
    drop = match_variants([("h1", t1), ("h2", t2)], AbsentPolicy.DROP)
    assert list(drop.variants.snp) == ["a", "b"] and set(drop.dropped) == {"c", "d", "e"}


@pytest.mark.parametrize("policy", [AbsentPolicy.DROP, AbsentPolicy.USE_AVAILABLE])
def test_identical_tables_take_the_fast_path_with_the_general_answer(
    policy: AbsentPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    from veil.gwas import variants as variants_mod

    ids = [f"rs{i}" for i in range(7)]
    t1 = table(ids, list("ACGTACG"), list("GTACGTA"))
    t2 = table(ids, list("ACGTACG"), list("GTACGTA"))  # equal content, another object
    tables = [("h1", t1), ("h2", t2), ("h3", t1)]
    assert variants_mod._identical_everywhere(tables) is not None
    fast = match_variants(tables, policy)
    monkeypatch.setattr(variants_mod, "_identical_everywhere", lambda tables: None)
    general = match_variants(tables, policy)
    for col in ("chrom", "snp", "cm", "bp", "a1", "a2"):
        a, b = getattr(fast.variants, col), getattr(general.variants, col)
        assert a.dtype == b.dtype and np.array_equal(a, b), col
    for f, g in zip(fast.sites, general.sites, strict=True):
        assert f.site == g.site
        np.testing.assert_array_equal(f.index, g.index)
        np.testing.assert_array_equal(f.flip, g.flip)
    assert (fast.absent, fast.conflicts, fast.dropped) == (
        general.absent,
        general.conflicts,
        general.dropped,
    )
    monkeypatch.undo()
    # any difference (a swapped pair, another position, a duplicate id) leaves the fast path
    swapped = table(ids, list("GCGTACG"), list("ATACGTA"))
    moved = table(ids, list("ACGTACG"), list("GTACGTA"), [1, 2, 3, 4, 5, 6, 8])
    dup = table([*ids[:6], "rs0"], list("ACGTACG"), list("GTACGTA"))
    for other in (swapped, moved, table(ids[:6], list("ACGTAC"), list("GTACGT"))):
        assert variants_mod._identical_everywhere([("h1", t1), ("h2", other)]) is None
    assert variants_mod._identical_everywhere([("h1", dup), ("h2", dup)]) is None
    with pytest.raises(DataError, match="more than once"):
        match_variants([("h1", dup), ("h2", dup)])


def test_match_errors() -> None:
    t1 = table(["a", "a"], ["A", "C"], ["G", "T"])
    with pytest.raises(DataError, match="site 'h1'.*more than once"):
        match_variants([("h1", t1)])
    with pytest.raises(DataError, match="share no variant"):
        match_variants([("h1", table(["x"], ["A"], ["G"])), ("h2", table(["y"], ["A"], ["G"]))])


def test_hwe_matches_wigginton_recursion() -> None:
    rng = np.random.default_rng(0)
    cases = [(0, 0, 0), (0, 5, 0), (10, 0, 0), (0, 3, 3), (1, 1, 1), (57, 14, 10), (2, 0, 48)]
    cases += [tuple(int(x) for x in rng.integers(0, 60, 3)) for _ in range(200)]
    het = np.array([c[0] for c in cases])
    hom1 = np.array([c[1] for c in cases])
    hom2 = np.array([c[2] for c in cases])
    got = hwe_exact_p(het, hom1, hom2)
    want = [hwe_exact_reference(*c) for c in cases]
    np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("p", [1, 2, 3, 5])
def test_spd_inverse(p: int) -> None:
    rng = np.random.default_rng(p)
    x = rng.normal(size=(40, 12, p))
    a = np.einsum("nij,nik->njk", x, x)
    a[0] = 0.0
    if p > 1:
        a[1, :, 0] = a[1, :, 1]
        a[1, 0, :] = a[1, 1, :]
        a[1, 0, 0] = a[1, 1, 1]  # two identical parameters: singular
    inv, ok = spd_inverse(a)
    assert not ok[0] and (p == 1 or not ok[1])
    good = np.arange(2, 40)
    np.testing.assert_allclose(inv[good], np.linalg.inv(a[good]), rtol=1e-10, atol=1e-12)
    assert ok[good].all()


def test_logistic_state_machine_errors_and_na() -> None:
    fit = LogisticFit(np.array([10.0, 2.0]), 3)
    assert fit.status[1] == 2  # N <= p: NA without iterating
    with pytest.raises(ProtocolError, match="expects"):
        fit.step(np.zeros((2, 3)), np.zeros((2, 3, 3)))
    with pytest.raises(ProtocolError, match="before it converged"):
        fit.result()


def test_perfect_separation_is_na_not_a_crash() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(200) < 0.5).astype(float)
    z = np.ones((200, 1))
    geno = np.stack([np.where(y == 1, 2, 0), rng.integers(0, 3, 200)]).astype(np.int8)
    fit = LogisticFit(np.array([200.0, 200.0]), 2)
    while not fit.done:
        idx, coef = fit.request()
        g, h = site_logistic_derivatives(geno, y, z, coef, idx)
        fit.step(g, h)
    res = fit.result()
    assert np.isnan(res.beta[0]) and np.isnan(res.p[0])
    assert np.isfinite(res.beta[1]) and 0 < res.p[1] <= 1


def test_cell_kernel_equals_dense_kernel() -> None:
    rng = np.random.default_rng(2)
    n, v = 300, 40
    geno = rng.integers(-1, 3, size=(v, n)).astype(np.int8)
    z = np.column_stack([np.ones(n), rng.integers(0, 2, n), rng.integers(0, 3, n)]).astype(float)
    y = (rng.random(n) < 0.4).astype(float)
    coef = rng.normal(scale=0.3, size=(v, 4))
    found = distinct_patterns(z)
    assert found is not None
    patterns, which = found
    group = which * 2 + y.astype(np.intp)
    fine = site_group_counts(geno, group, patterns.shape[0] * 2)
    from veil.gwas.suffstats import CellCounts

    counts = fine.reshape(v, patterns.shape[0], 2, 3).transpose(0, 1, 3, 2).astype(float)
    g1, h1 = cell_logistic_derivatives(CellCounts(patterns, counts), coef)
    g2, h2 = site_logistic_derivatives(geno, y, z, coef)
    np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(h1, h2, rtol=1e-10, atol=1e-9)


def test_genotype_counts_and_lambda() -> None:
    geno = np.array([[0, 1, 2, -1, 2], [1, 1, 1, 1, -1]], dtype=np.int8)
    status = np.array([1, 0, 1, 0, -1], dtype=np.int8)
    c = site_genotype_counts(geno, status)
    np.testing.assert_array_equal(c[0, 0], [1, 1, 2, 1])  # all
    np.testing.assert_array_equal(c[0, 1], [1, 0, 1, 0])  # cases
    np.testing.assert_array_equal(c[0, 2], [0, 1, 0, 1])  # controls
    np.testing.assert_array_equal(c[1, 0], [0, 4, 0, 1])
    assert genomic_control(np.array([0.456, 0.456, np.nan])) == pytest.approx(1.0)
    assert np.isnan(genomic_control(np.array([np.nan])))


def test_hwe_screening_decides_like_the_exact_test() -> None:
    from veil.gwas.qc import hwe_observed_probability, hwe_screened_p

    rng = np.random.default_rng(5)
    f = rng.uniform(0.01, 0.5, 3000)
    n = rng.integers(20, 400, 3000)
    g = np.stack(
        [
            rng.multinomial(k, [(1 - x) ** 2, 2 * x * (1 - x), x * x])
            for x, k in zip(f, n, strict=True)
        ]
    )
    g[:50, 1] = 0  # no heterozygotes: strong departures
    exact = hwe_exact_p(g[:, 1], g[:, 0], g[:, 2])
    assert np.all(hwe_observed_probability(g[:, 1], g[:, 0], g[:, 2]) <= exact * (1 + 1e-9))
    for threshold in (1e-2, 1e-6, 1e-20):
        screened, fails = hwe_screened_p(g[:, 1], g[:, 0], g[:, 2], threshold)
        np.testing.assert_array_equal(fails, exact < threshold)
        done = np.isfinite(screened)
        np.testing.assert_allclose(screened[done], exact[done], rtol=1e-12)
        assert done.sum() < 0.2 * done.size  # the bounds decide most variants
