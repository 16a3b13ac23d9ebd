"""The secure path equals PLINK 1.9 on the pooled fileset: every site as its own party, only
masked sums on the links (:mod:`veil.gwas.secure_sum`), results written as ``results.tsv``.

Reuses the comparisons of ``test_gwas_plink.py`` (same tolerances: PLINK's 4 printed digits,
and its single-precision ``--logistic``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "gwas"))

from gwas_synth import SPECIAL_SEPARATED, make_synthetic, write_sites
from test_gwas_plink import LOGISTIC_ATOL, QC_SETTINGS, close, num, run_plink, same_variants

from veil.gwas.job import GwasJobOptions, run_gwas
from veil.gwas.session import GwasOptions, Test
from veil.gwas.variants import AbsentPolicy

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CASES = {
    Test.ASSOC: (["--assoc"], "assoc", {"F_A": "f_a", "F_U": "f_u", "CHISQ": "chisq", "P": "p",
                                        "OR": "odds_ratio"}),
    Test.LOGISTIC: (["--logistic", "hide-covar"], "assoc.logistic",
                    {"OR": "odds_ratio", "STAT": "z", "P": "p"}),
    Test.LINEAR: (["--linear", "hide-covar"], "assoc.linear", {"BETA": "beta", "STAT": "t",
                                                               "P": "p"}),
}  # fmt: skip


@pytest.mark.parametrize("test", list(CASES))
def test_secure_run_equals_plink(tmp_path: Path, test: Test) -> None:
    syn = make_synthetic(seed=61, quantitative=test is Test.LINEAR)
    data = tmp_path / "data"
    data.mkdir()
    paths = write_sites(syn, data)
    opts = GwasJobOptions(gwas=GwasOptions(test=test, qc=QC_SETTINGS["qc"][0]),
                          absent=AbsentPolicy.USE_AVAILABLE)  # fmt: skip
    run = run_gwas(
        {f.site: p for f, (p, _) in zip(syn.sites, paths, strict=True)},
        covars={f.site: c for f, (_, c) in zip(syn.sites, paths, strict=True)},
        options=opts,
    )
    res = run.result
    assert all(e["value"]["kind"] in ("secure-sum", "plain") for e in run.facts.ledger)
    flags, out_name, columns = CASES[test]
    pl = run_plink(syn, tmp_path, flags, out_name, "qc")
    same_variants(res, pl, tmp_path / "plink.log")
    part = {Test.ASSOC: res.assoc, Test.LOGISTIC: res.logistic, Test.LINEAR: res.linear}[test]
    assert part is not None
    atol = LOGISTIC_ATOL if test is Test.LOGISTIC else {}
    for i, snp in enumerate(res.variants.snp):
        row = pl[snp]
        assert row["A1"] == res.variants.a1[i], snp
        if test is Test.LOGISTIC and snp == SPECIAL_SEPARATED:
            assert np.isnan(res.logistic.beta[i])  # type: ignore[union-attr]
            assert row["OR"] == "NA" or num(row["OR"]) > 1e4  # as test_gwas_plink documents
            continue
        if "NMISS" in row:
            assert int(row["NMISS"]) == int(part.nobs[i]), snp
        for col, attr in columns.items():
            close(float(getattr(part, attr)[i]), row[col], f"{snp} {col}", atol.get(col, 0.0))
