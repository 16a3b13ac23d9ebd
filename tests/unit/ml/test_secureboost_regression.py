"""SecureBoost regression (``objective="reg:squarederror"``): gradients, base score, equality
with the plaintext twin, accuracy against xgboost, early stopping on RMSE, and errors."""

import json

import numpy as np
import pytest

import veil
from veil.errors import ConfigError, DataError, PartyFailed
from veil.ml.secureboost import BoostParams, SecureBoost
from veil.ml.secureboost.objective import Target
from veil.ml.secureboost.protocol import train_plaintext
from veil.ml.secureboost.tree import Tree, squared_error_grad_hess

PARTIES = ["utility", "w1", "w2"]
COLS = {"utility": slice(0, 3), "w1": slice(3, 5), "w2": slice(5, 6)}
FAST = {"key_bits": 1024, "insecure": True}
REG = {"objective": "reg:squarederror"}


def make_data(n, seed):
    """A target in "GW" (mean ~6) with interactions across the parties' columns."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = 6 + X[:, 0] - 0.5 * X[:, 1] + 0.8 * X[:, 3] * X[:, 0] + np.sin(2 * X[:, 4])
    y += 0.3 * X[:, 5] ** 2 + rng.normal(0, 0.2, n)
    return X, y


X, Y = make_data(2000, 0)
XT, YT = make_data(1500, 1)
XC, XTC = X, XT
# at most 28 distinct values per column (< max_bin): every party's candidate splits are
# xgboost's, so the trees must be xgboost's
XD, XTD = np.round(X * 4) / 4, np.round(XT * 4) / 4
PARAMS = {"n_estimators": 10, "max_depth": 4, "learning_rate": 0.3, "max_bin": 32}


def _job(ctx, params, y=Y, eval_set=False, discrete=False):
    c = COLS[ctx.party]
    sb = SecureBoost(ctx, "utility", ["w1", "w2"], **REG, **params, **FAST)
    lab = ctx.party == "utility"
    X, XT = (XD, XTD) if discrete else (XC, XTC)
    ev = (XT[:, c], YT if lab else None) if eval_set else None
    sb.fit(X[:, c], y if lab else None, eval_set=ev)
    return {
        "train": sb.predict(X[:, c]),
        "test": sb.predict(XT[:, c]),
        "n_trees": sb.n_trees_,
        "evals": sb.evals_result_,
        "best": sb.best_iteration_,
        "base": None if sb._lh is None else sb._lh.base_margin,
    }


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_squared_error_gradients_and_hessians():
    g, h = squared_error_grad_hess(np.array([1.0, 2.0, -3.0]), np.array([1.5, 0.0, -3.0]))
    np.testing.assert_array_equal(g, [0.5, -2.0, 0.0])
    np.testing.assert_array_equal(h, [1.0, 1.0, 1.0])


def test_standardised_target_and_its_inverse():
    y = np.array([3.0, 5.0, 7.0, 9.0])  # mean 6, population sd sqrt(5)
    sd = np.sqrt(5.0)
    t = Target.fit(y, BoostParams(objective="reg:squarederror", gamma=2.0), "utility")
    np.testing.assert_allclose(t.y, (y - 6) / sd)
    assert t.base == 0.0 and t.params.gamma == pytest.approx(2.0 / 5.0)
    tree = Tree()
    tree.add_node()
    tree.value[0] = 0.5
    assert t.finish([tree]) == pytest.approx(6.0) and tree.value[0] == pytest.approx(0.5 * sd)
    assert t.loss(y, np.zeros(4)) == pytest.approx(sd)  # RMSE of the mean, in y's unit
    given = Target.fit(y, BoostParams(objective="reg:squarederror", base_score=4.0), "u")
    assert given.finish([]) == pytest.approx(4.0)
    with pytest.raises(DataError, match="'u'.*0/1 labels"):
        Target.fit(y, BoostParams(), "u")


def test_objective_and_base_score_validation():
    assert BoostParams().objective == "binary:logistic" and not BoostParams().regression
    assert BoostParams(objective="reg:squarederror", base_score=5.0).regression
    with pytest.raises(ConfigError, match="objective"):
        BoostParams(objective="reg:absoluteerror")
    with pytest.raises(ConfigError, match="probability"):
        BoostParams(base_score=5.0)  # a probability for the logistic objective
    with pytest.raises(ConfigError, match="finite"):
        BoostParams(objective="reg:squarederror", base_score=float("nan"))


def test_vertical_regression_equals_plaintext_twin_and_base_is_mean():
    fed = veil.simulate(_job, PARTIES, params={"params": PARAMS})
    twin = train_plaintext("utility", X, Y, BoostParams(**REG, **PARAMS))
    # exact histogram sums: the same splits and leaves as the one-party trainer
    np.testing.assert_allclose(fed["utility"]["train"], twin.predict_own(X), rtol=0, atol=1e-9)
    assert fed["utility"]["base"] == pytest.approx(Y.mean(), abs=1e-12)
    assert twin.base_margin == pytest.approx(Y.mean(), abs=1e-12)
    assert fed["w1"]["train"] is None and fed["w2"]["test"] is None
    assert {o["n_trees"] for o in fed.values()} == {10}
    # the trees use the feature holders' columns (the target needs them)
    owners = {o for t in twin.trees for o in t.owner}
    assert owners == {"", "utility"}


def test_same_trees_as_xgboost_when_the_bins_agree():
    xgb = pytest.importorskip("xgboost")
    fed = veil.simulate(_job, PARTIES, params={"params": PARAMS, "discrete": True})
    ref = xgb.XGBRegressor(tree_method="hist", reg_lambda=1.0, **PARAMS).fit(XD, Y)
    config = json.loads(ref.get_booster().save_config())
    base = float(config["learner"]["learner_model_param"]["base_score"].strip("[]"))
    assert base == pytest.approx(Y.mean(), rel=1e-6)  # xgboost >= 2: the mean, like ours
    # xgboost sums in float32 (~1e-6 relative); our gains use 2**-20 fixed-point gradients
    train = ref.predict(XD).astype(np.float64)
    np.testing.assert_allclose(fed["utility"]["train"], train, rtol=0, atol=1e-4)
    # new rows: where a node's training rows leave bins empty, tied candidates are broken by
    # the feature holders' secret shuffle (xgboost: the lowest), so a few new rows may fall on
    # the other side of an equally good threshold
    theirs = ref.predict(XTD).astype(np.float64)
    assert np.mean(np.abs(fed["utility"]["test"] - theirs) < 1e-4) > 0.99
    ours, theirs_rmse = _rmse(YT, fed["utility"]["test"]), _rmse(YT, theirs)
    assert abs(ours - theirs_rmse) <= 0.01 * theirs_rmse, (ours, theirs_rmse)


def test_rmse_close_to_xgboost_on_continuous_features():
    """With continuous columns the 32 quantile cuts differ slightly from xgboost's sketch, and a
    different cut early on changes every later greedy split: on this generator the RMSE ratio
    veil/xgboost over six seeds ranged 0.94–1.04 (mean 1.00) for the same settings. Hence 5 %
    here, while the equal-bins test above pins the algorithm itself to 1e-4."""
    xgb = pytest.importorskip("xgboost")
    fed = veil.simulate(_job, PARTIES, params={"params": PARAMS})
    ref = xgb.XGBRegressor(tree_method="hist", reg_lambda=1.0, **PARAMS).fit(XC, Y)
    ours, theirs = _rmse(YT, fed["utility"]["test"]), _rmse(YT, ref.predict(XTC))
    assert abs(ours - theirs) <= 0.05 * theirs, (ours, theirs)
    assert ours < 0.6 * float(np.std(YT))  # and the model explains most of the variance


def test_predictions_follow_the_target_unit():
    """Standardising inside makes the model unit-free: y' = a·y + b gives a·pred + b."""
    a, b = 1000.0, -250.0
    p1 = veil.simulate(_job, PARTIES, params={"params": PARAMS})["utility"]
    p2 = veil.simulate(_job, PARTIES, params={"params": PARAMS, "y": a * Y + b})["utility"]
    np.testing.assert_allclose(p2["train"], a * p1["train"] + b, rtol=1e-9, atol=1e-6)
    # Within a deep node, "bin <= k" and "bin <= k+1" tie when bin k+1 is empty there; the
    # feature holders' secret shuffle of candidates breaks such ties at random, so a few new
    # rows may land on the other side of an (equally good) threshold.
    same = np.isclose(p2["test"], a * p1["test"] + b, rtol=1e-9, atol=1e-6)
    assert same.mean() > 0.99


def test_early_stopping_on_validation_rmse():
    # deep trees at full learning rate overfit within a few rounds
    params = PARAMS | {"n_estimators": 30, "learning_rate": 1.0, "max_depth": 6,
                       "early_stopping_rounds": 2}  # fmt: skip
    out = veil.simulate(_job, PARTIES, params={"params": params, "eval_set": True})["utility"]
    ev, best = out["evals"], out["best"]
    assert best == int(np.argmin(ev)) and out["n_trees"] == best + 1 < 30
    assert len(ev) == best + 3  # stopped two rounds after the best
    assert ev[best] == pytest.approx(_rmse(YT, out["test"]), rel=1e-9)


def test_predict_proba_and_bad_targets_refused():
    def job(ctx, y, params):
        sb = SecureBoost(ctx, "utility", ["w1"], **REG, **params, **FAST)
        sb.fit(
            X[:, :2] if ctx.party == "utility" else X[:, 2:4], y if ctx.party == "utility" else None
        )
        return sb.predict_proba(X[:5, :2] if ctx.party == "utility" else X[:5, 2:4])

    small = {"n_estimators": 1, "max_depth": 2}
    with pytest.raises(PartyFailed, match="predict_proba"):
        veil.simulate(job, ["utility", "w1"], params={"y": Y, "params": small})
    bad = Y.copy()
    bad[3] = np.nan
    with pytest.raises(PartyFailed, match="finite targets"):
        veil.simulate(job, ["utility", "w1"], params={"y": bad, "params": small})
    # 2**40 fixed point over 2000 rows cannot be summed exactly: a clear error, nothing sent
    with pytest.raises(PartyFailed, match="lower frac_bits"):
        veil.simulate(job, ["utility", "w1"], params={"y": 1e3 * Y, "params": small | {
            "frac_bits": 40}})  # fmt: skip


def test_gradients_too_wide_for_the_key_are_refused_before_encrypting():
    def job(ctx):
        sb = SecureBoost(ctx, "utility", ["w1"], **REG, n_estimators=1, key_bits=256,
                         insecure=True)  # fmt: skip
        lab = ctx.party == "utility"
        sb.fit(X[:, :2] if lab else X[:, 2:4], Y if lab else None)

    # OU-256 offers ~83 plaintext bits: two slots for 2000 rows x 32 bins of 2**-20 values
    # would need ~2 x 47 bits
    with pytest.raises(PartyFailed, match="plaintext space.*larger key_bits"):
        veil.simulate(job, ["utility", "w1"])


def test_local_twin_refuses_a_joint_model():
    twin = train_plaintext("utility", X, Y, BoostParams(**REG, n_estimators=2, max_depth=2))
    twin.trees[0].owner[0] = "w1"
    with pytest.raises(Exception, match="joint prediction"):
        twin.predict_own(X)
    with pytest.raises(DataError, match="finite"):
        train_plaintext("utility", X, np.full(len(X), np.inf), BoostParams(**REG))
