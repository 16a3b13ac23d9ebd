"""``veil gwas`` refuses bad input with one line naming the site and file, writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from gwas_synth import make_synthetic, write_sites
from typer.testing import CliRunner

from veil.cli.main import app


@pytest.fixture()
def study(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    syn = make_synthetic(seed=51, n_variants=30)
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
    assert len(errors) == 1 and "Traceback" not in text, text  # one line, no traceback
    for n in needles:
        assert n in errors[0], text
    assert not out.exists() or not any(out.iterdir())
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_missing_file(study: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    prefix = study["h2"][0]
    prefix.with_suffix(".bim").unlink()
    out = tmp_path / "out"
    code, text = invoke(study, out)
    assert_refused(code, text, out, "site 'h2'", f"{prefix}.bim", "does not exist")


def test_bed_size_mismatch(study: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    bed = study["h3"][0].with_suffix(".bed")
    bed.write_bytes(bed.read_bytes()[:-5])
    out = tmp_path / "out"
    code, text = invoke(study, out)
    assert_refused(code, text, out, "site 'h3'", str(bed), "inconsistent")


def test_no_shared_variant(study: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    bim = study["h1"][0].with_suffix(".bim")
    lines = [ln.split() for ln in bim.read_text().splitlines()]
    bim.write_text("".join(" ".join([a, "x" + b, *rest]) + "\n" for a, b, *rest in lines))
    out = tmp_path / "out"
    code, text = invoke(study, out)
    assert_refused(code, text, out, "share no variant")


def test_all_missing_phenotype(study: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    fam = study["h2"][0].with_suffix(".fam")
    rows = [ln.split() for ln in fam.read_text().splitlines()]
    fam.write_text("".join(" ".join([*r[:5], "-9"]) + "\n" for r in rows))
    out = tmp_path / "out"
    code, text = invoke(study, out)
    assert_refused(code, text, out, "site 'h2'", "phenotype", "missing")


def test_unknown_site_in_covar(study: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = invoke(study, out, "--covar", f"h9={study['h1'][1]}")
    assert_refused(code, text, out, "--covar", "h9")


def test_two_sites_need_the_flag(study: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    del study["h3"]
    out = tmp_path / "out"
    code, text = invoke(study, out)
    assert_refused(code, text, out, "--allow-two-sites")


def test_covariates_must_match(study: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    out = tmp_path / "out"
    extra = ["--covar", f"h1={study['h1'][1]}", "--covar", f"h2={study['h2'][1]}",
             "--test", "logistic"]  # fmt: skip
    code, text = invoke(study, out, *extra)
    assert_refused(code, text, out, "site 'h3'", "covariate")


def test_two_sites_with_the_flag_write_every_output(
    study: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    del study["h3"]
    out = tmp_path / "out"
    extra = ["--allow-two-sites", "--test", "logistic", "--beta", "--maf", "0.02"]
    for name, (_, cov) in study.items():
        extra += ["--covar", f"{name}={cov}"]
    code, text = invoke(study, out, *extra)
    assert code == 0, text
    names = sorted(p.name for p in out.iterdir())
    assert names == ["manhattan.png", "qq.png", "report.html", "report.json", "results.tsv"]
    header = (out / "results.tsv").read_text().splitlines()[0].split("\t")
    assert header == ["CHR", "SNP", "BP", "A1", "TEST", "NMISS", "BETA", "SE", "STAT", "P"]
    assert "lambda_GC" in text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


# covariate options checked before anything runs (found by a new-user review): a
# --covar-name without covariate files used to run without any covariate (exit 0), and files
# for only some sites failed inside the job with "site 'h3' has covariates None".
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
