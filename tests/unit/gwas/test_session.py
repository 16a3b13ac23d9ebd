"""The per-site flow: sums only, agreement on the trait, failures that stop every site."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from gwas_synth import make_synthetic

from veil.errors import ConfigError, ProtocolError
from veil.gwas.session import (
    Aggregate,
    GwasOptions,
    GwasResult,
    LocalSum,
    Test,
    prepare_local,
    run_local,
    run_site,
)
from veil.gwas.site import SiteAnalysis, SiteCovariates


def run_masked(
    sites: list[SiteAnalysis], variants: object, options: GwasOptions
) -> tuple[list[GwasResult], list[dict[str, np.ndarray]]]:
    """Run the sites with an aggregator that only ever sees masked contributions.

    Each site adds a random mask; the masks of all sites sum to zero (as pairwise masks in
    secure aggregation do), so no single contribution is the site's array, yet every site
    must obtain the same results as with plain sums.
    """
    n = len(sites)
    hub = LocalSum(n)
    seen: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
    rngs = [np.random.default_rng(1000 + i) for i in range(n)]
    masks: dict[str, list[np.ndarray]] = {}
    lock = threading.Lock()

    def masked(i: int) -> Aggregate:
        inner = hub.for_site(i)

        def aggregate(key: str, arr: np.ndarray) -> np.ndarray:
            with lock:
                if key not in masks:
                    parts = [
                        rngs[0].normal(scale=1.0 + np.abs(arr), size=arr.shape)
                        for _ in range(n - 1)
                    ]
                    masks[key] = [*parts, -np.sum(parts, axis=0)]
            sent = arr + masks[key][i]
            seen[i][key] = sent
            return inner(key, sent)

        return aggregate

    results: list[GwasResult | None] = [None] * n

    def work(i: int) -> None:
        hub.start(i)
        try:
            results[i] = run_site(sites[i], variants, n, masked(i), options)  # type: ignore[arg-type]
        finally:
            hub.stop(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in results)
    return results, seen  # type: ignore[return-value]


def test_only_sums_are_needed_and_all_sites_agree() -> None:
    syn = make_synthetic(seed=31, n_variants=30)
    covs = [SiteCovariates(c, ("C1", "C2")) for c in syn.covariates]
    options = GwasOptions(test=Test.LOGISTIC)
    sites, al = prepare_local(syn.sites, covs)
    plain = run_local(sites, al.variants, options)
    sites, al = prepare_local(syn.sites, covs)
    results, seen = run_masked(sites, al.variants, options)
    for r in results:
        assert r.logistic is not None and plain.logistic is not None
        np.testing.assert_allclose(r.logistic.z, plain.logistic.z, rtol=1e-7, equal_nan=True)
    # what a site sends is never its own statistic in the clear
    own = sites[0].genotype_counts().astype(float)
    assert not np.allclose(seen[0]["gwas/counts"], own)


def test_trait_must_suit_the_test() -> None:
    syn = make_synthetic(seed=32, n_per_site=(40, 40), n_variants=10, quantitative=True)
    sites, al = prepare_local(syn.sites)
    with pytest.raises(ConfigError, match="needs a case/control phenotype"):
        run_local(sites, al.variants, GwasOptions(test=Test.LOGISTIC))
    syn = make_synthetic(seed=33, n_per_site=(40, 40), n_variants=10)
    sites, al = prepare_local(syn.sites)
    with pytest.raises(ConfigError, match="--linear needs a quantitative"):
        run_local(sites, al.variants, GwasOptions(test=Test.LINEAR))


def test_one_quantitative_site_makes_the_trait_quantitative() -> None:
    syn = make_synthetic(seed=34, n_per_site=(40, 40), n_variants=10)
    syn.sites[1].samples.pheno[:3] = [0.5, 1.7, 3.0]
    sites, al = prepare_local(syn.sites)
    res = run_local(sites, al.variants, GwasOptions(test=Test.LINEAR))
    assert res.linear is not None and np.isfinite(res.linear.beta).sum() > 5


def test_local_sum_refuses_mismatched_keys() -> None:
    hub = LocalSum(2, timeout=5)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        hub.start(i)
        try:
            hub.for_site(i)(f"key{i}", np.zeros(3))
        except BaseException as exc:
            errors.append(exc)
        finally:
            hub.stop(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert any(isinstance(e, ProtocolError) for e in errors)
