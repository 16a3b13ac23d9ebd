"""The federated GWAS over real processes: ``veil gwas --transport grpc`` and ``veil node``.

Three sites of a synthetic study (allele-swapped site, a variant at one site only, missing calls,
monomorphic and separated variants) run as separate processes talking gRPC with mutual TLS;
``results.tsv`` must equal the pooled in-process run (``run_local``, itself equal to PLINK 1.9:
``test_gwas_plink.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "gwas"))

from gwas_synth import make_synthetic, write_sites

from veil.gwas.plinkio import read_covariates, read_fileset
from veil.gwas.qc import QcOptions
from veil.gwas.results import write_results
from veil.gwas.session import GwasOptions, Test, prepare_local, run_local
from veil.gwas.site import SiteCovariates
from veil.gwas.variants import AbsentPolicy
from veil.transport.ports import free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
VEIL = Path(sys.executable).with_name("veil")
QC = QcOptions(maf=0.02, geno=0.1, hwe=1e-6)
QC_ARGS = ["--maf", "0.02", "--geno", "0.1", "--hwe", "1e-6"]


def study(tmp: Path, seed: int) -> dict[str, tuple[Path, Path]]:
    syn = make_synthetic(seed=seed)
    data = tmp / "data"
    data.mkdir()
    return {f.site: pair for f, pair in zip(syn.sites, write_sites(syn, data), strict=True)}


def pooled_tsv(files: dict[str, tuple[Path, Path]], test: Test, out: Path) -> Path:
    filesets = [read_fileset(prefix, name) for name, (prefix, _) in files.items()]
    covs = []
    for f in filesets:
        values, names = read_covariates(files[f.site][1], f.site, f.samples)
        covs.append(SiteCovariates(values, tuple(names)))
    sites, al = prepare_local(filesets, covs, policy=AbsentPolicy.USE_AVAILABLE)
    write_results(out, run_local(sites, al.variants, GwasOptions(test=test, qc=QC)))
    return out


def read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text().splitlines()
    return lines[0].split("\t"), [ln.split("\t") for ln in lines[1:]]


def assert_same_tsv(ours: Path, ref: Path) -> None:
    """Same header, variants, alleles and counts; numbers equal to the 6 printed digits."""
    h1, rows1 = read_tsv(ours)
    h2, rows2 = read_tsv(ref)
    assert h1 == h2 and len(rows1) == len(rows2) > 20
    for r1, r2 in zip(rows1, rows2, strict=True):
        for col, a, b in zip(h1, r1, r2, strict=True):
            if col in ("CHR", "SNP", "BP", "A1", "A2", "TEST", "NMISS") or "NA" in (a, b):
                assert a == b, (r1[1], col)
            else:
                np.testing.assert_allclose(float(a), float(b), rtol=2e-6, err_msg=f"{r1[1]} {col}")


def test_veil_gwas_over_grpc_processes(tmp_path: Path) -> None:
    files = study(tmp_path, seed=23)
    out = tmp_path / "out"
    cmd = [str(VEIL), "gwas", "--test", "logistic", "--absent", "available", "--transport",
           "grpc", "--out", str(out), *QC_ARGS]  # fmt: skip
    for name, (prefix, cov) in files.items():
        cmd += ["--site", f"{name}={prefix}", "--covar", f"{name}={cov}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr
    assert_same_tsv(out / "results.tsv", pooled_tsv(files, Test.LOGISTIC, tmp_path / "ref.tsv"))
    report = json.loads((out / "report.json").read_text())
    assert report["transport"] == "grpc" and report["sites"] == ["h1", "h2", "h3"]
    assert all(report["parties"][s]["bytes_sent"] > 0 for s in files)
    sums = [e for e in report["ledger"] if e["value"]["kind"] == "secure-sum"]
    assert {e["party"] for e in sums} == set(files)
    assert {"gwas.counts", "gwas.logistic.iter0"} <= {e["tag"] for e in sums}
    assert all(sorted(e["to"]) == sorted(files) for e in sums)


def test_each_site_runs_veil_node(tmp_path: Path) -> None:
    """Deployment as in docs/gwas.md: certificates, one cluster.toml, one ``veil node`` per site."""
    files = study(tmp_path, seed=22)
    names = list(files)
    subprocess.run([str(VEIL), "certs", "init", "--parties", ",".join(names), "--out",
                    str(tmp_path / "certs")], check=True, capture_output=True)  # fmt: skip
    lines = [
        '[cluster]\nca = "certs/ca.pem"\n[timeouts]\nconnect = 60\nrecv = 60\n',
        '[policy]\ndefault = "deny"\n[[policy.rule]]\neffect = "allow"\ntag = "gwas.*"\n',
    ]
    for name, port in zip(names, free_ports(len(names)), strict=True):
        lines.append(f'[parties.{name}]\naddress = "127.0.0.1:{port}"\n'
                     f'cert = "certs/{name}.pem"\nkey = "certs/{name}.key"\n')  # fmt: skip
    (tmp_path / "cluster.toml").write_text("\n".join(lines))
    common = ["--param", "test=assoc", "--param", "absent=available", "--param", "maf=0.02",
              "--param", "geno=0.1", "--param", "hwe=1e-6",
              "--param", f"sites={json.dumps(names)}"]  # fmt: skip
    procs = {}
    for name, (prefix, _) in files.items():
        procs[name] = subprocess.Popen(
            [str(VEIL), "node", "veil.gwas.job:gwas_job", "--config",
             str(tmp_path / "cluster.toml"), "--party", name, "--json", *common,
             "--param", f"prefix={prefix}", "--param", f"out={tmp_path / ('out_' + name)}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    for name, p in procs.items():
        _, err = p.communicate(timeout=100)
        assert p.returncode == 0, f"{name}: {err}"
    ref = pooled_tsv(files, Test.ASSOC, tmp_path / "ref.tsv")
    for name in names:
        assert_same_tsv(tmp_path / f"out_{name}" / "results.tsv", ref)
        report = json.loads((tmp_path / f"out_{name}" / "report.json").read_text())
        assert list(report["parties"]) == [name]  # a site reports its own traffic
        tags = {e["tag"] for e in report["ledger"]}
        assert tags <= {"gwas.variants", "gwas.head", "gwas.counts"}, tags
