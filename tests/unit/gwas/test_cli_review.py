"""``veil gwas`` covariate options checked before anything runs (found by a new-user review).

A ``--covar-name`` without covariate files used to run the test without any covariate (exit
0), and covariate files for only some sites failed inside the job with "site 'h3' has
covariates None". Both now stop at once with one line and write nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gwas_synth import make_synthetic, write_sites
from typer.testing import CliRunner

from veil.cli.main import app


@pytest.fixture()
def study(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    syn = make_synthetic(seed=53, n_variants=20)
    data = tmp_path / "data"
    data.mkdir()
    paths = write_sites(syn, data)
    return {f.site: pair for f, pair in zip(syn.sites, paths, strict=True)}


def invoke(study: dict[str, tuple[Path, Path]], out: Path, *extra: str) -> tuple[int, str]:
    args = ["gwas", "--out", str(out)]
    for name, (prefix, _) in study.items():
        args += ["--site", f"{name}={prefix}"]
    res = CliRunner().invoke(app, [*args, *extra])
    return res.exit_code, res.output


def assert_refused(code: int, text: str, out: Path, *needles: str) -> None:
    assert code == 2, text
    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in text, text
    for n in needles:
        assert n in errors[0], text
    assert not out.exists()


def test_covar_name_without_covariate_files(
    study: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, text = invoke(study, out, "--covar-name", "C1", "--test", "logistic")
    assert_refused(code, text, out, "--covar-name C1", "--covar")


def test_covariate_files_for_some_sites_only(
    study: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    extra = ["--covar", f"h1={study['h1'][1]}", "--test", "logistic"]
    code, text = invoke(study, out, *extra)
    assert_refused(code, text, out, "site 'h2'", "site 'h3'", "covariate file")
    assert "None" not in text


def test_covariate_files_for_every_site_still_run(
    study: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    extra = ["--test", "logistic", "--covar-name", "C1"]
    for name, (_, cov) in study.items():
        extra += ["--covar", f"{name}={cov}"]
    code, text = invoke(study, out, *extra)
    assert code == 0, text
    assert (out / "results.tsv").read_text().startswith("CHR\tSNP\tBP\tA1\tTEST\tNMISS\tOR")


def test_job_refuses_covar_names_without_a_covariate_file(
    study: dict[str, tuple[Path, Path]],
) -> None:
    """The same check inside the job (what each `veil node` runs), naming the site."""
    from veil.errors import PartyFailed
    from veil.gwas.job import GwasJobOptions, run_gwas
    from veil.gwas.session import GwasOptions, Test

    opts = GwasJobOptions(gwas=GwasOptions(test=Test.LOGISTIC), covar_names=("C1",))
    with pytest.raises(PartyFailed, match="has no covariate file"):
        run_gwas({s: p for s, (p, _) in study.items()}, options=opts)


def test_write_results_creates_its_folder(tmp_path: Path) -> None:
    from veil.gwas.results import write_results
    from veil.gwas.session import GwasOptions, prepare_local, run_local

    syn = make_synthetic(seed=53, n_variants=20)
    sites, alignment = prepare_local(syn.sites)
    res = run_local(sites, alignment.variants, GwasOptions())
    write_results(tmp_path / "new" / "results.tsv", res)
    assert (tmp_path / "new" / "results.tsv").read_text().startswith("CHR")
