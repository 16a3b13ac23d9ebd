"""`veil risk`: bad inputs stop with one line naming party and file, and write nothing."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from veil.cli.main import app


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(5)
    ids = [f"id{i:04d}" for i in range(400)]
    x1, x2, x3 = rng.normal(size=(3, 400))
    y = np.where(rng.random(400) < 1 / (1 + np.exp(-(x1 + x2 - x3))), "bad", "good")
    bank = pd.DataFrame({"cid": ids, "y": y, "x1": x1, "grade": rng.choice(list("ABC"), 400)})
    ext = pd.DataFrame({"cid": ids[50:], "x2": x2[50:], "x3": x3[50:]})
    paths = {"bank": tmp_path / "bank.csv", "ext": tmp_path / "ext.csv"}
    bank.sample(frac=1, random_state=1).to_csv(paths["bank"], index=False)
    ext.sample(frac=1, random_state=2).to_csv(paths["ext"], index=False)
    return paths


def run(files, out, *extra, label="y"):
    return CliRunner().invoke(
        app,
        [
            "risk",
            "--bank",
            str(files["bank"]),
            "--provider",
            f"ext={files['ext']}",
            "--id",
            "cid",
            "--label",
            label,
            "--out",
            str(out),
            "--transport",
            "memory",
            "--epochs",
            "40",
            *extra,
        ],
    )


def test_two_parties_semi2k(files, tmp_path):
    r = run(files, tmp_path / "o")
    assert r.exit_code == 0, r.output
    import json

    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["n_intersection"] == 350
    assert rep["models"]["joint_secure"]["auc"] > rep["models"]["bank_only"]["auc"] + 0.05
    assert (
        abs(rep["models"]["joint_secure"]["auc"] - rep["models"]["pooled_plaintext"]["auc"]) < 0.01
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("label", "label 'x1' in .*bank.csv is not binary"),
        ("missing", "party 'ext': file .*nope.csv not found"),
        ("no-overlap", "share only 0 customers"),
        ("text", "'note' is not numeric and has [0-9]+ distinct values"),
        ("no-id", "party 'ext': .*ext.csv has no id column 'cid'"),
    ],
)
def test_bad_inputs(files, tmp_path, change, message):
    import re

    label = "y"
    if change == "label":
        label = "x1"
    elif change == "missing":
        files["ext"] = tmp_path / "nope.csv"
    elif change == "no-overlap":
        df = pd.read_csv(files["ext"])
        df["cid"] = "other" + df["cid"]
        df.to_csv(files["ext"], index=False)
    elif change == "text":
        df = pd.read_csv(files["ext"])
        df["note"] = [f"comment {i}" for i in range(len(df))]
        df.to_csv(files["ext"], index=False)
    elif change == "no-id":
        pd.read_csv(files["ext"]).rename(columns={"cid": "key"}).to_csv(files["ext"], index=False)
    out = tmp_path / "o"
    r = run(files, out, label=label)
    assert r.exit_code == 2, r.output
    assert re.search(message, " ".join(r.output.split())), r.output
    assert not (out / "report.json").exists()


def test_tee_engine_matches_mpc_and_says_simulated(files, tmp_path):
    import json

    r = run(files, tmp_path / "tee", "--engine", "tee")
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "tee" / "report.json").read_text())
    assert rep["engine"] == "tee" and "dealer" not in rep["parties"]
    assert (
        abs(rep["models"]["joint_secure"]["auc"] - rep["models"]["pooled_plaintext"]["auc"]) < 0.01
    )
    tee_entries = [e for e in rep["ledger"] if e["event"] == "tee_job"]
    assert tee_entries and all("simulated" in e["assurance"] for e in tee_entries)
