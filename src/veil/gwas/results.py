"""``results.tsv`` in PLINK 1.9's column layout, one row per tested variant, ``NA`` as PLINK.

* ``--assoc``: ``CHR SNP BP A1 F_A F_U A2 CHISQ P OR``
* trend (PLINK ``--model trend-only``): ``CHR SNP A1 A2 TEST AFF UNAFF CHISQ DF P`` where
  AFF/UNAFF are ``A1/A2`` allele counts in cases/controls
* ``--logistic``: ``CHR SNP BP A1 TEST NMISS OR SE STAT P`` (``BETA`` instead of ``OR`` with
  ``beta=True``; SE is the standard error of the coefficient, as PLINK's ``--ci`` output)
* ``--linear``: ``CHR SNP BP A1 TEST NMISS BETA SE STAT P``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from veil.gwas.plinkio import write_table
from veil.gwas.session import GwasResult, Test


def result_columns(result: GwasResult, beta: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Header and columns of ``results.tsv`` for ``result``."""
    vt = result.variants
    chrom, snp, bp = list(vt.chrom), list(vt.snp), [int(b) for b in vt.bp]
    a1, a2 = list(vt.a1), list(vt.a2)
    v = len(vt)
    if result.test is Test.ASSOC:
        a = result.assoc
        assert a is not None
        return (
            ["CHR", "SNP", "BP", "A1", "F_A", "F_U", "A2", "CHISQ", "P", "OR"],
            [chrom, snp, bp, a1, _f(a.f_a), _f(a.f_u), a2, _f(a.chisq), _f(a.p), _f(a.odds_ratio)],
        )
    if result.test is Test.TREND:
        t = result.trend
        assert t is not None
        aff = [f"{x}/{y}" for x, y in zip(t.case_a1, t.case_a2, strict=True)]
        unaff = [f"{x}/{y}" for x, y in zip(t.ctrl_a1, t.ctrl_a2, strict=True)]
        return (
            ["CHR", "SNP", "A1", "A2", "TEST", "AFF", "UNAFF", "CHISQ", "DF", "P"],
            [chrom, snp, a1, a2, ["TREND"] * v, aff, unaff, _f(t.chisq), _df(t.chisq), _f(t.p)],
        )
    if result.test is Test.LOGISTIC:
        lr = result.logistic
        assert lr is not None
        effect, name = (lr.beta, "BETA") if beta else (lr.odds_ratio, "OR")
        return (
            ["CHR", "SNP", "BP", "A1", "TEST", "NMISS", name, "SE", "STAT", "P"],
            [
                chrom,
                snp,
                bp,
                a1,
                ["ADD"] * v,
                [int(n) for n in lr.nobs],
                _f(effect),
                _f(lr.se),
                _f(lr.z),
                _f(lr.p),
            ],
        )
    lin = result.linear
    assert lin is not None
    return (
        ["CHR", "SNP", "BP", "A1", "TEST", "NMISS", "BETA", "SE", "STAT", "P"],
        [
            chrom,
            snp,
            bp,
            a1,
            ["ADD"] * v,
            [int(n) for n in lin.nobs],
            _f(lin.beta),
            _f(lin.se),
            _f(lin.t),
            _f(lin.p),
        ],
    )


def write_results(
    path: str | Path, result: GwasResult, beta: bool = False, digits: int = 6
) -> None:
    """Write ``results.tsv`` (atomically; its folder is created); floats with ``digits``
    significant digits."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    header, columns = result_columns(result, beta)
    write_table(path, header, columns, digits=digits)


def _f(arr: np.ndarray) -> list[float]:
    return [float(x) for x in arr]


def _df(chisq: np.ndarray) -> list[str]:
    return ["1" if np.isfinite(x) else "NA" for x in chisq]
