"""Federated GWAS: PLINK's association tests on genotypes that never leave each hospital.

Each site computes per-variant sufficient statistics on its own subjects (``site_*`` functions
in :mod:`veil.gwas.suffstats`, wrapped by :class:`~veil.gwas.site.SiteAnalysis`); the pooled
tests (:mod:`veil.gwas.qc`, :mod:`veil.gwas.assoc`, :mod:`veil.gwas.linear`,
:class:`~veil.gwas.logistic.LogisticFit`) consume only their sums, so the result equals PLINK
1.9 on the pooled fileset. :func:`~veil.gwas.session.run_site` is the per-site flow written
against a sums-only aggregator; :class:`~veil.gwas.secure_sum.SecureSum` is that aggregator
across real parties (pairwise masking), :func:`~veil.gwas.job.gwas_job` the job each hospital
runs and :func:`~veil.gwas.job.run_gwas` runs all of them here. See ``docs/gwas.md``.
"""
