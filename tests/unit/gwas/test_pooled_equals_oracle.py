"""Every federated statistic equals the same statistic computed on the pooled data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gwas_oracle import binary_pheno, chi2_sf1, hwe_exact_reference, pooled_genotype
from gwas_synth import (
    SPECIAL_ALL_HET,
    SPECIAL_MONO,
    SPECIAL_ONLY_LAST,
    SPECIAL_SEPARATED,
    Synthetic,
    make_synthetic,
)

from veil.gwas.qc import QcOptions
from veil.gwas.session import GwasOptions, GwasResult, Test, prepare_local, run_local
from veil.gwas.site import SiteCovariates
from veil.gwas.variants import AbsentPolicy

sm = pytest.importorskip("statsmodels.api")
scipy_stats = pytest.importorskip("scipy.stats")

RTOL = 1e-8
NA_LOGISTIC = {SPECIAL_MONO, SPECIAL_SEPARATED, SPECIAL_ALL_HET}


@pytest.fixture(scope="module")
def binary() -> Synthetic:
    return make_synthetic(seed=11)


@pytest.fixture(scope="module")
def quantitative() -> Synthetic:
    return make_synthetic(seed=12, quantitative=True)


def run(
    syn: Synthetic,
    test: Test,
    *,
    covariates: bool = True,
    site_covariate: bool = False,
    policy: AbsentPolicy = AbsentPolicy.USE_AVAILABLE,
    qc: QcOptions | None = None,
    use_cells: bool = True,
) -> GwasResult:
    covs = [SiteCovariates(c, ("C1", "C2")) for c in syn.covariates] if covariates else None
    sites, alignment = prepare_local(syn.sites, covs, policy=policy, site_covariate=site_covariate)
    for s in sites:
        s.use_cells = use_cells
    return run_local(sites, alignment.variants, GwasOptions(test=test, qc=qc or QcOptions()))


def design(syn: Synthetic, g: np.ndarray, covariates: bool, site_covariate: bool) -> np.ndarray:
    cols = [np.ones_like(g), g]
    if covariates:
        cols += [syn.pooled_cov[:, 0], syn.pooled_cov[:, 1]]
    if site_covariate:
        cols += [(syn.pooled_site == j).astype(float) for j in range(1, syn.pooled_site.max() + 1)]
    return np.column_stack(cols)


@pytest.mark.parametrize(
    ("covariates", "site_covariate", "use_cells"),
    [(True, False, True), (False, True, True), (False, True, False), (False, False, True)],
)
def test_logistic_equals_statsmodels(
    binary: Synthetic, covariates: bool, site_covariate: bool, use_cells: bool
) -> None:
    res = run(
        binary,
        Test.LOGISTIC,
        covariates=covariates,
        site_covariate=site_covariate,
        use_cells=use_cells,
    )
    lr = res.logistic
    assert lr is not None
    y = binary_pheno(binary)
    checked = 0
    for i, (snp, a1) in enumerate(zip(res.variants.snp, res.variants.a1, strict=True)):
        if snp in NA_LOGISTIC:
            assert np.isnan(lr.beta[i]) and np.isnan(lr.p[i]), snp
            continue
        g = pooled_genotype(binary, snp, a1)
        x = design(binary, g, covariates, site_covariate)
        ok = np.isfinite(y) & np.all(np.isfinite(x), axis=1)
        assert lr.nobs[i] == ok.sum()
        if np.linalg.matrix_rank(x[ok]) < x.shape[1]:  # e.g. site dummies at a 1-site variant
            assert np.isnan(lr.beta[i]), snp
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.Logit(y[ok], x[ok]).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
        np.testing.assert_allclose(lr.beta[i], fit.params[1], rtol=RTOL, err_msg=snp)
        np.testing.assert_allclose(lr.se[i], fit.bse[1], rtol=RTOL, err_msg=snp)
        np.testing.assert_allclose(lr.z[i], fit.tvalues[1], rtol=RTOL, err_msg=snp)
        np.testing.assert_allclose(lr.p[i], fit.pvalues[1], rtol=RTOL, err_msg=snp)
        np.testing.assert_allclose(lr.odds_ratio[i], np.exp(fit.params[1]), rtol=RTOL)
        checked += 1
    assert checked >= 50
    assert SPECIAL_ONLY_LAST in set(res.variants.snp)


def test_linear_equals_statsmodels(quantitative: Synthetic) -> None:
    res = run(quantitative, Test.LINEAR, site_covariate=True)
    lin = res.linear
    assert lin is not None
    y = np.where(quantitative.pooled_pheno == -9, np.nan, quantitative.pooled_pheno)
    checked = 0
    for i, (snp, a1) in enumerate(zip(res.variants.snp, res.variants.a1, strict=True)):
        if snp in (SPECIAL_MONO, SPECIAL_ALL_HET):
            assert np.isnan(lin.beta[i]), snp
            continue
        g = pooled_genotype(quantitative, snp, a1)
        x = design(quantitative, g, True, True)
        ok = np.isfinite(y) & np.all(np.isfinite(x), axis=1)
        if np.linalg.matrix_rank(x[ok]) < x.shape[1]:
            assert np.isnan(lin.beta[i]), snp
            continue
        fit = sm.OLS(y[ok], x[ok]).fit()
        assert lin.nobs[i] == ok.sum()
        np.testing.assert_allclose(lin.beta[i], fit.params[1], rtol=RTOL, err_msg=snp)
        np.testing.assert_allclose(lin.se[i], fit.bse[1], rtol=RTOL, err_msg=snp)
        np.testing.assert_allclose(lin.t[i], fit.tvalues[1], rtol=RTOL, err_msg=snp)
        np.testing.assert_allclose(lin.p[i], fit.pvalues[1], rtol=RTOL, err_msg=snp)
        checked += 1
    assert checked >= 50


def test_assoc_and_trend_equal_direct_tests(binary: Synthetic) -> None:
    res = run(binary, Test.ASSOC, covariates=False)
    tr = run(binary, Test.TREND, covariates=False).trend
    a = res.assoc
    assert a is not None and tr is not None
    y = binary_pheno(binary)
    for i, (snp, a1) in enumerate(zip(res.variants.snp, res.variants.a1, strict=True)):
        g = pooled_genotype(binary, snp, a1)
        ok = np.isfinite(g) & np.isfinite(y)
        gc, yc = g[ok], y[ok]
        a1_case, a1_ctrl = gc[yc == 1].sum(), gc[yc == 0].sum()
        a2_case, a2_ctrl = 2 * (yc == 1).sum() - a1_case, 2 * (yc == 0).sum() - a1_ctrl
        np.testing.assert_allclose(a.f_a[i], a1_case / (a1_case + a2_case), rtol=1e-12)
        np.testing.assert_allclose(a.f_u[i], a1_ctrl / (a1_ctrl + a2_ctrl), rtol=1e-12)
        if snp == SPECIAL_MONO:
            assert np.isnan(a.chisq[i]) and np.isnan(a.p[i]) and np.isnan(a.odds_ratio[i])
            assert np.isnan(tr.chisq[i])
            continue
        table = np.array([[a1_case, a2_case], [a1_ctrl, a2_ctrl]])
        chi2, p, _, _ = scipy_stats.chi2_contingency(table, correction=False)
        np.testing.assert_allclose(a.chisq[i], chi2, rtol=1e-10, err_msg=snp)
        np.testing.assert_allclose(a.p[i], p, rtol=1e-9, err_msg=snp)
        if a1_ctrl * a2_case > 0:
            np.testing.assert_allclose(
                a.odds_ratio[i], a1_case * a2_ctrl / (a1_ctrl * a2_case), rtol=1e-12
            )
        else:
            assert np.isnan(a.odds_ratio[i])
        if np.std(gc) == 0:
            assert np.isnan(tr.chisq[i])
            continue
        r = np.corrcoef(gc, yc)[0, 1]
        np.testing.assert_allclose(tr.chisq[i], ok.sum() * r * r, rtol=1e-10, err_msg=snp)
        np.testing.assert_allclose(tr.p[i], chi2_sf1(ok.sum() * r * r), rtol=1e-9, err_msg=snp)
        assert tr.case_a1[i] == a1_case and tr.ctrl_a2[i] == a2_ctrl


def test_a1_is_minor_allele_of_pooled_counts(binary: Synthetic) -> None:
    res = run(binary, Test.ASSOC, covariates=False)
    ref_a1 = dict(zip(binary.variants.snp, binary.variants.a1, strict=True))
    n_swapped = 0
    for snp, a1 in zip(res.variants.snp, res.variants.a1, strict=True):
        g = pooled_genotype(binary, snp, a1)
        freq = np.nanmean(g) / 2.0
        assert freq <= 0.5 + 1e-12, snp
        n_swapped += a1 != ref_a1[snp]
    assert n_swapped > 0  # the synthetic data has major reference alleles


def test_qc_equals_direct_computation(binary: Synthetic) -> None:
    base = run(binary, Test.ASSOC, covariates=False, qc=QcOptions(hwe=1e-300, hwe_exact_all=True))
    qc = base.qc
    y = binary_pheno(binary)
    for i, snp in enumerate(base.variants.snp):  # QC arrays cover all aligned variants
        row = int(np.flatnonzero(binary.variants.snp == snp)[0])
        g = binary.pooled_geno[row]
        called = g >= 0
        np.testing.assert_allclose(qc.missing_rate[i], 1 - called.mean(), rtol=1e-12)
        freq = g[called].mean() / 2 if called.any() else 0.5
        np.testing.assert_allclose(qc.maf[i], min(freq, 1 - freq), rtol=1e-12, atol=1e-15)
        ctrl = g[(y == 0) & called]
        counts = [int((ctrl == k).sum()) for k in (0, 1, 2)]
        expected = hwe_exact_reference(counts[1], counts[0], counts[2])
        np.testing.assert_allclose(qc.hwe_p[i], expected, rtol=1e-9, err_msg=snp)
    strict = run(binary, Test.ASSOC, covariates=False, qc=QcOptions(maf=0.1, geno=0.05, hwe=1e-3))
    geno_ok = qc.missing_rate <= 0.05
    hwe_ok = qc.hwe_p >= 1e-3
    expect_keep = (qc.maf >= 0.1) & geno_ok & hwe_ok
    assert strict.qc.removed["geno"] == int((~geno_ok).sum())
    assert strict.qc.removed["hwe"] == int((geno_ok & ~hwe_ok).sum())
    assert strict.qc.removed["maf"] == int((geno_ok & hwe_ok & (qc.maf < 0.1)).sum())
    assert set(strict.variants.snp) == set(base.variants.snp[expect_keep])
    assert 0 < expect_keep.sum() < expect_keep.size


def test_drop_policy_removes_variant_absent_somewhere(binary: Synthetic) -> None:
    res = run(binary, Test.ASSOC, covariates=False, policy=AbsentPolicy.DROP)
    assert SPECIAL_ONLY_LAST not in set(res.variants.snp)
    assert len(res.variants) == len(binary.variants) - 1


def test_results_depend_on_pooled_data_only() -> None:
    """Two different splits of the same subjects give the same pooled results."""
    one = make_synthetic(seed=5, n_per_site=(140, 140, 140))
    two = make_synthetic(seed=5, n_per_site=(60, 250, 110))
    np.testing.assert_array_equal(one.pooled_pheno, two.pooled_pheno)
    r1 = run(one, Test.LOGISTIC, use_cells=False)
    r2 = run(two, Test.LOGISTIC, use_cells=False)
    common = [s != SPECIAL_ONLY_LAST for s in r1.variants.snp]
    assert list(r1.variants.snp) == list(r2.variants.snp)
    assert r1.logistic is not None and r2.logistic is not None
    np.testing.assert_allclose(
        r1.logistic.z[common], r2.logistic.z[common], rtol=1e-9, equal_nan=True
    )
