"""Federated GWAS: PLINK's association tests on genotypes that never leave each hospital.

Each site computes per-variant sufficient statistics on its own subjects (``site_*`` functions
in :mod:`veil.gwas.suffstats`, wrapped by :class:`~veil.gwas.site.SiteAnalysis`); the pooled
tests (:mod:`veil.gwas.qc`, :mod:`veil.gwas.assoc`, :mod:`veil.gwas.linear`,
:class:`~veil.gwas.logistic.LogisticFit`) consume only their sums, so the result equals PLINK
1.9 on the pooled fileset. :func:`~veil.gwas.session.run_site` is the per-site flow written
against a sums-only aggregator. See ``docs/gwas.md``.
"""
