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
        ("positive", "party 'bank': --positive 'bda' is not a value of 'y' in .*bank.csv"),
        ("label-gap", "party 'bank': .*bank.csv: 1 rows have no label 'y'; drop them"),
        ("dup-id", "party 'ext': .*ext.csv has 1 duplicate 'cid' value.*keep one row per"),
        ("provider-is-bank", "--provider bank=...: 'bank' is the bank"),
    ],
)
def test_bad_inputs(files, tmp_path, change, message):
    import re

    label = "y"
    extra: tuple[str, ...] = ()
    if change == "positive":
        extra = ("--positive", "bda")
    elif change == "label-gap":
        df = pd.read_csv(files["bank"])
        df.loc[0, "y"] = None
        df.to_csv(files["bank"], index=False)
    elif change == "dup-id":
        df = pd.read_csv(files["ext"])
        pd.concat([df, df.iloc[:1]]).to_csv(files["ext"], index=False)
    elif change == "provider-is-bank":
        extra = ("--provider", f"bank={files['ext']}")
    elif change == "label":
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
    r = run(files, out, *extra, label=label)
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


# ---------------------------------------------------------------- SecureBoost (--model)
FAST_SB = ["--sb-param", "key_bits=1024", "--sb-param", "insecure=true"]


@pytest.fixture
def tree_files(tmp_path):
    """A non-linear label (an interaction across parties) that trees learn and LR does not."""
    rng = np.random.default_rng(11)
    n = 1500
    ids = [f"id{i:05d}" for i in range(n)]
    x1, x2, x3 = rng.normal(size=(3, n))
    grade = rng.choice(list("ABC"), n)
    z = 1.2 * x1 + 1.5 * np.sign(x2) * (x3 > 0) + (grade == "C")
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-z)), "bad", "good")
    x1 = np.where(rng.random(n) < 0.05, np.nan, x1)  # missing values: the owner's mean
    bank = pd.DataFrame({"cid": ids, "y": y, "x1": x1, "grade": grade})
    ext = pd.DataFrame({"cid": ids[100:], "x2": x2[100:], "x3": x3[100:]})
    paths = {"bank": tmp_path / "bank.csv", "ext": tmp_path / "ext.csv"}
    bank.sample(frac=1, random_state=1).to_csv(paths["bank"], index=False)
    ext.sample(frac=1, random_state=2).to_csv(paths["ext"], index=False)
    return paths


def test_secureboost_model_matches_pooled_xgboost(tree_files, tmp_path):
    import json

    out = tmp_path / "sb"
    r = run(tree_files, out, "--model", "secureboost", *FAST_SB, "--sb-param", "n_estimators=10")
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["model"] == "secureboost" and "dealer" not in rep["parties"]  # no MPC, no dealer
    models = rep["models"]
    assert set(models) == {"bank_only_xgboost", "joint_secureboost", "pooled_plaintext_xgboost"}
    assert all(set(m) == {"auc", "ks"} for m in models.values())
    joint, pooled = models["joint_secureboost"]["auc"], models["pooled_plaintext_xgboost"]["auc"]
    assert abs(joint - pooled) <= 0.01, (joint, pooled)
    assert joint > models["bank_only_xgboost"]["auc"] + 0.05
    assert rep["secureboost"]["n_trees"] == 10
    assert rep["secureboost"]["params"]["max_depth"] == 3  # the job's default
    assert {"secureboost_training", "secureboost_prediction"} <= set(rep["seconds"])
    assert "training" not in rep["seconds"]  # no logistic regression was trained
    assert rep["bytes_sent"]["ext"] > 0 and rep["messages"]["bank"] > 0
    tags = {(e["event"], e["tag"]) for e in rep["ledger"]}
    assert ("disclosure", "secureboost.instance_spaces") in tags
    assert ("reveal", "metrics.joint_secureboost") in tags
    assert not any(t == "scores" for _, t in tags)  # SecureBoost's scores never travel
    html = (out / "report.html").read_text()
    assert "joint_secureboost" in html and "SecureBoost (10 trees" in html


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "foo"], "--model must be lr, secureboost or both, got 'foo'"),
        (["--model", "secureboost", "--sb-param", "depth=3"], "unknown SecureBoost parameters"),
        (["--model", "both", "--sb-param", "n_estimators=0"], "n_estimators must be >= 1"),
        (["--model", "secureboost", "--sb-param", "early_stopping_rounds=3"],
         "early_stopping_rounds needs a validation set"),
        (["--model", "secureboost", "--sb-param", "max_depth=abc"],
         "SecureBoost parameter max_depth must be an integer, got 'abc'"),
        (["--model", "secureboost", "--sb-param", "learning_rate=fast"],
         "SecureBoost parameter learning_rate must be a number, got 'fast'"),
    ],
)  # fmt: skip
def test_bad_model_options(files, tmp_path, extra, message):
    out = tmp_path / "o"
    r = run(files, out, *extra)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()), r.output
    assert not out.exists()


def test_policy_without_secureboost_rules_refuses_before_training(files):
    """SecureBoost's disclosures are asked of the policy first: the LR-only rules refuse them."""
    import veil
    from veil.apps.risk import policy_rules, risk_job
    from veil.errors import PartyFailed
    from veil.runtime.policy import RevealPolicy

    common = {"bank": "bank", "providers": ["ext"], "id_col": "cid", "label": "y",
              "model": "secureboost", "sb_params": {"key_bits": 1024, "insecure": True}}  # fmt: skip
    params = {p: common | {"csv": str(files[p])} for p in ("bank", "ext")}
    policy = RevealPolicy.from_mapping({"default": "deny", "rule": policy_rules("bank")})
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(risk_job, ["bank", "ext"], params=params, per_party_params=True,
                      policy=policy, timeout=30)  # fmt: skip
    assert ei.value.error_type == "RevealDenied"
    assert "secureboost.instance_spaces" in ei.value.error and "--model lr" in ei.value.error
    allowed = RevealPolicy.from_mapping(
        {"default": "deny", "rule": policy_rules("bank", secureboost=True)}
    )
    res = veil.simulate(risk_job, ["bank", "ext"], params=params, per_party_params=True,
                        policy=allowed, timeout=60)  # fmt: skip
    assert set(res["ext"]["models"]) == {"bank_only_xgboost", "joint_secureboost"}
    assert "test_scores" in res["bank"]["secureboost"]
    assert "test_scores" not in res["ext"]["secureboost"]
