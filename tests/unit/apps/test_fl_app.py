"""``veil fl`` on small files: report contents, and bad input leaves nothing half-written."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from veil.cli.main import app


@pytest.fixture
def bank_files(tmp_path):
    rng = np.random.default_rng(3)
    paths = {}
    for i, b in enumerate(["b1", "b2", "b3"]):
        n = 300
        x1 = rng.normal(i * 0.3, 1, n)
        x2 = rng.normal(0, 1, n)
        grade = rng.choice(["A", "B", "C"], n)
        z = 1.5 * x1 - x2 + (grade == "C") * 1.0 - 0.5
        y = np.where(rng.random(n) < 1 / (1 + np.exp(-z)), "bad", "good")
        df = pd.DataFrame({"id": np.arange(n), "x1": x1, "x2": x2, "grade": grade, "y": y})
        df.loc[rng.random(n) < 0.05, "x2"] = np.nan
        paths[b] = tmp_path / f"{b}.csv"
        df.to_csv(paths[b], index=False)
    return paths


def args(files, out, *extra):
    a = [
        "fl",
        "--label",
        "y",
        "--out",
        str(out),
        "--transport",
        "memory",
        "--rounds",
        "5",
        "--drop",
        "id",
        "--lr",
        "0.1",
    ]
    for b, p in files.items():
        a += ["--party", f"{b}={p}"]
    return a + list(extra)


def test_report(bank_files, tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(app, args(bank_files, out, "--positive", "bad"))
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["models"]) == {"federated_secure", "pooled_plaintext", "local"}
    assert set(rep["models"]["local"]) == {"b1", "b2", "b3"}
    fed, pooled = rep["models"]["federated_secure"]["auc"], rep["models"]["pooled_plaintext"]["auc"]
    assert fed > 0.75 and abs(fed - pooled) < 0.03
    # the in-job federated evaluation equals the check computed from the files
    assert rep["federated_evaluation"]["auc"] == pytest.approx(fed, abs=1e-9)
    assert rep["rounds"] == 5 and rep["epsilon"] is None and rep["delta"] is None
    assert set(rep["bytes_sent"]) == {"hub", "b1", "b2", "b3"}
    assert all(v > 0 for v in rep["bytes_sent"].values())
    assert any(e["tag"] == "fl.round_sum" and e["value"]["kind"] == "secagg" for e in rep["ledger"])
    assert (out / "report.html").read_text().count("<img") == 2


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda f, tmp: f | {"b2": tmp / "missing.csv"},
            "'b2': file .*missing.csv not found",
        ),
        (lambda f, tmp: f, "not 0/1: name the positive class"),
    ],
)
def test_bad_input_writes_nothing(bank_files, tmp_path, mutate, message):
    out = tmp_path / "out"
    r = CliRunner().invoke(app, args(mutate(bank_files, tmp_path), out))
    assert r.exit_code == 2
    assert pytest.importorskip("re").search(message, " ".join(r.output.split()))
    assert not (out / "report.json").exists()


def test_columns_differ(bank_files, tmp_path):
    df = pd.read_csv(bank_files["b3"]).drop(columns=["grade"])
    df.to_csv(bank_files["b3"], index=False)
    r = CliRunner().invoke(app, args(bank_files, tmp_path / "o", "--positive", "bad"))
    assert r.exit_code == 2
    assert "party 'b3' has no column 'grade'" in " ".join(r.output.split())
