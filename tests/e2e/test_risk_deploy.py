"""The risk job deployed as in docs/risk.md: certificates, one config, one `veil node` each."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from veil.apps.risk import policy_rules
from veil.transport.ports import free_ports

pytestmark = pytest.mark.e2e
PARTIES = ["bank", "bureau", "income", "dealer"]
VEIL = Path(sys.executable).with_name("veil")


def write_files(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(8)
    ids = [f"c{i:04d}" for i in range(500)]
    x = rng.normal(size=(3, 500))
    y = np.where(rng.random(500) < 1 / (1 + np.exp(-(x[0] + x[1] - x[2]))), "bad", "good")
    frames = {
        "bank": pd.DataFrame({"cid": ids, "y": y, "x0": x[0]}),
        "bureau": pd.DataFrame({"cid": ids[20:], "x1": x[1][20:]}),
        "income": pd.DataFrame({"cid": ids[:480], "x2": x[2][:480]}),
    }
    paths = {}
    for name, df in frames.items():
        paths[name] = folder / f"{name}.csv"
        df.sample(frac=1, random_state=3).to_csv(paths[name], index=False)
    return paths


def write_cluster(folder: Path, parties: list[str], *, secureboost: bool = False) -> Path:
    """Certificates and cluster.toml with the job's deny-by-default policy (docs/risk.md)."""
    subprocess.run(
        [VEIL, "certs", "init", "--parties", ",".join(parties), "--out", folder / "certs"],
        check=True,
        capture_output=True,
    )
    ports = free_ports(len(parties))
    lines = ['[cluster]\nca = "certs/ca.pem"\n[timeouts]\nconnect = 60\nrecv = 120\n']
    for p, port in zip(parties, ports, strict=True):
        lines.append(
            f'[parties.{p}]\naddress = "127.0.0.1:{port}"\ncert = "certs/{p}.pem"\n'
            f'key = "certs/{p}.key"\n'
        )
    lines.append('[policy]\ndefault = "deny"\n')
    for r in policy_rules("bank", secureboost=secureboost):
        to = f"\nto = {json.dumps(r['to'])}" if "to" in r else ""
        lines.append(f'[[policy.rule]]\neffect = "allow"\ntag = "{r["tag"]}"{to}\n')
    (folder / "cluster.toml").write_text("\n".join(lines))
    return folder / "cluster.toml"


def run_nodes(
    folder: Path, parties: list[str], files: dict[str, Path], params: list[str]
) -> dict[str, dict]:
    """One `veil node` process per party; returns each party's JSON result."""
    common = ["--param", "bank=bank", "--param", 'providers=["bureau","income"]',
              "--param", "id_col=cid", "--param", "label=y", *params]  # fmt: skip
    procs = {}
    for p in parties:
        csv = str(files[p]) if p in files else ""
        procs[p] = subprocess.Popen(
            [VEIL, "node", "veil.apps.risk:risk_job", "--config", folder / "cluster.toml",
             "--party", p, "--json", "--ledger", folder / f"{p}.jsonl", *common,
             "--param", f"csv={csv}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
    outs = {}
    for p, proc in procs.items():
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"{p}: {err}"
        outs[p] = json.loads(out)["result"]
    return outs


def test_three_institutions_and_a_dealer(tmp_path):
    write_cluster(tmp_path, PARTIES)
    files = write_files(tmp_path)
    params = ["--param", "protocol=semi2k", "--param", "dealer=dealer", "--param", "epochs=10"]
    outs = run_nodes(tmp_path, PARTIES, files, params)
    assert {o["n_intersection"] for o in outs.values()} == {460}
    assert (
        outs["bank"]["models"]["joint_secure"]["auc"] > outs["bank"]["models"]["bank_only"]["auc"]
    )
    assert "model" in outs["bank"] and "model" not in outs["bureau"]  # weights only at the bank
    events = [json.loads(line) for line in (tmp_path / "bureau.jsonl").read_text().splitlines()]
    assert {e["tag"] for e in events} <= {
        "psi.size",
        "data.columns",
        "scores",
        "model.weights",
        "model.intercept",
        "metrics.joint",
        "metrics.bank_only",
    }
    assert all(e["event"] == "reveal" for e in events)


def test_secureboost_three_institutions_no_dealer(tmp_path):
    """`--param model=secureboost` over gRPC/mTLS: HE trees, no dealer, trees at the bank."""
    parties = ["bank", "bureau", "income"]
    write_cluster(tmp_path, parties, secureboost=True)
    files = write_files(tmp_path)
    sb = json.dumps({"n_estimators": 5, "max_depth": 2})
    outs = run_nodes(tmp_path, parties, files, ["--param", "model=secureboost",
                                                "--param", f"sb_params={sb}"])  # fmt: skip
    assert {o["n_intersection"] for o in outs.values()} == {460}
    models = outs["bureau"]["models"]  # every party gets the metrics
    assert set(models) == {"bank_only_xgboost", "joint_secureboost"}
    assert models["joint_secureboost"]["auc"] > models["bank_only_xgboost"]["auc"] + 0.05
    assert outs["bank"]["secureboost"]["n_trees"] == 5
    assert len(outs["bank"]["secureboost"]["test_scores"]) == outs["bank"]["n_test"]
    assert "test_scores" not in outs["bureau"]["secureboost"]  # scores only at the bank
    events = [json.loads(line) for line in (tmp_path / "bureau.jsonl").read_text().splitlines()]
    assert {(e["event"], e["tag"]) for e in events} == {
        ("reveal", "psi.size"),
        ("reveal", "data.columns"),
        ("disclosure", "secureboost.instance_spaces"),
        ("disclosure", "secureboost.split_sums"),
        ("reveal", "metrics.bank_only_xgboost"),
        ("reveal", "metrics.joint_secureboost"),
    }
