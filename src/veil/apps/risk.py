"""Joint credit-risk modelling: a bank and external data providers (`veil risk`, demo `risk`).

The bank holds loan outcomes (the label) and some features; each provider holds other features
on overlapping customers, each under its own ids. The SPMD job (:func:`risk_job`):

1. **PSI** (:mod:`veil.psi`, ECDH over X25519): every party learns the intersection size and its
   own rows of the common customers, in a common order — nothing about the others' customers.
2. **Encoding** at each owner (:mod:`veil.data.vertical`): impute, one-hot, private scaling.
3. A public seeded **train/test split** of the aligned rows.
4. ``model="lr"`` (default) or ``"both"``: **secure standardisation** and **logistic
   regression** under MPC (semi2k with a dealer, or aby3; or in a TEE): features, labels and
   weights stay secret-shared.
5. ``model="secureboost"`` or ``"both"``: **SecureBoost** (:mod:`veil.apps.risk_trees`) on the
   same encoded blocks and split: gradients encrypted under the bank's HE key, trees at the
   bank, each split's threshold at its owner; test scores at the bank.
6. **Reveals**, each through the reveal policy and the audit ledger: test-set scores and the
   weights to the bank only (``scores``, ``model.weights``); AUC and KS to everyone
   (``metrics.*``). The bank also fits a **bank-only** model on its own features (plaintext, at
   the bank: sklearn for LR, xgboost for trees) and publishes its metrics, so everyone sees the
   lift the collaboration buys.

What leaks: the intersection size (to all), the number of feature columns per party and their
names (to all), the test scores and the model (to the bank), the metrics (to all). SecureBoost
leaks more, by design (``docs/secureboost.md``): node row sets to the providers, per-bin
gradient sums and split partitions to the bank — asked of the policy first
(:func:`veil.apps.risk_trees.check_disclosures`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from veil.apps import risk_trees
from veil.data.tables import read_party_csv
from veil.data.vertical import VDataFrame, encode_block, secure_standardize, split_rows
from veil.errors import ConfigError, DataError
from veil.ml import SSLogisticRegression
from veil.ml.metrics import auc, ks
from veil.psi import PsiOptions, intersect_ids
from veil.runtime.context import Context

#: The reveal policy of the job: nothing leaves unless listed here.
POLICY_RULES: list[dict[str, Any]] = [
    {"effect": "allow", "tag": "data.columns"},
    {"effect": "allow", "tag": "metrics.*"},
    {"effect": "allow", "tag": "psi.size"},
]


#: The joint models ``risk_job`` trains (``model=``).
MODELS = ("lr", "secureboost", "both")


def policy_rules(label_holder: str, *, secureboost: bool = False) -> list[dict[str, Any]]:
    """Rules for the cluster config's ``[policy]`` (default deny): metrics to all, the model
    and the scores to the label holder only; with ``secureboost``, also SecureBoost's protocol
    disclosures (node row sets to the providers, split sums to the label holder)."""
    rules = [*POLICY_RULES, {"effect": "allow", "tag": "model.*", "to": [label_holder]},
             {"effect": "allow", "tag": "scores", "to": [label_holder]}]  # fmt: skip
    if secureboost:
        rules.append({"effect": "allow", "tag": risk_trees.INSTANCE_SPACES})
        rules.append({"effect": "allow", "tag": risk_trees.SPLIT_SUMS, "to": [label_holder]})
    return rules


def _labels(df: Any, label: str, party: str, path: str, positive: str | None) -> np.ndarray:
    """0/1 labels; the positive class is ``positive``, else 1 for 0/1 labels, else ``bad``."""
    if label not in df.columns:
        raise DataError(f"party {party!r}: {path} has no label column {label!r}")
    col = df[label]
    if col.isna().any():
        raise DataError(
            f"party {party!r}: {path}: {int(col.isna().sum())} rows have no label {label!r}; "
            "drop them or fill them in"
        )
    values = sorted(map(str, col.unique()))
    if len(values) != 2:
        raise DataError(f"party {party!r}: label {label!r} in {path} is not binary: {values[:10]}")
    pos = positive
    if pos is not None and pos not in values:
        raise DataError(
            f"party {party!r}: --positive {pos!r} is not a value of {label!r} in {path}; "
            f"it has {values}"
        )
    if pos is None:
        pos = "1" if values in (["0", "1"], ["0.0", "1.0"]) else "bad" if "bad" in values else None
    if pos not in values:
        raise DataError(
            f"party {party!r}: say which value of {label!r} is the positive class "
            f"(--positive); it has {values}"
        )
    out: np.ndarray = (col.astype(str) == pos).to_numpy(dtype=np.float64)
    return out


def _check_unique_ids(ids: Any, party: str, path: str, id_col: str) -> None:
    """Each customer once per file: PSI aligns rows one to one."""
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)[:5].tolist()
        raise DataError(
            f"party {party!r}: {path} has {int(dup.sum())} duplicate {id_col!r} value(s), e.g. "
            f"{ids.iloc[rows].tolist()} (lines {[r + 2 for r in rows]} of the file); keep one "
            "row per customer and re-run"
        )


def _check_numeric_or_categorical(df: Any, cols: Sequence[str], party: str, path: str) -> None:
    for c in cols:
        if df[c].isna().all():
            raise DataError(f"party {party!r}: column {c!r} in {path} is empty")


def risk_job(
    ctx: Context,
    *,
    bank: str,
    providers: list[str],
    csv: str,
    id_col: str,
    label: str,
    model: str = "lr",
    protocol: str = "semi2k",
    dealer: str | None = None,
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 0.2,
    l2: float = 1e-3,
    test_fraction: float = 0.3,
    positive: str | None = None,
    engine: str = "mpc",
    sim_root: bytes | None = None,
    sb_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SPMD job (see module docstring). Every data party passes its own ``csv``.

    ``model`` is ``lr`` (secure logistic regression), ``secureboost`` (vertical boosted trees,
    :mod:`veil.apps.risk_trees`; ``sb_params`` override its hyper-parameters) or ``both``.
    """
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}: use {', '.join(MODELS)}")
    want_lr, want_sb = model in ("lr", "both"), model in ("secureboost", "both")
    me = ctx.party
    data_parties = [bank, *providers]
    sbp: dict[str, Any] = {}
    if want_sb:
        sbp = risk_trees.boost_params(sb_params, ctx.seed)
        if me == bank:
            risk_trees.require_xgboost()
        risk_trees.check_disclosures(ctx, bank, providers)  # before any data is touched
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    df = None
    psi_key = ctx.next_key("psi")  # every party draws it, so later keys agree (SPMD)
    if me in data_parties:
        df = read_party_csv(csv, me, id_col)
        ids = df[id_col].astype(str).tolist()
        _check_unique_ids(df[id_col].astype(str).str.strip(), me, csv, id_col)
        rows = intersect_ids(ctx.link, psi_key, me, data_parties, ids, PsiOptions(strip=True))
        # Every party holds the same ids for these rows: sorting by id gives a common order that
        # does not depend on the run's PSI salt, so splits are reproducible.
        rows = rows[np.argsort(np.array([ids[i].strip() for i in rows]), kind="stable")]
        df = df.iloc[rows].reset_index(drop=True)
    n = ctx.reveal(ctx.parties(bank)[0](lambda: len(df) if df is not None else 0)(),
                   tag="psi.size")  # fmt: skip
    if n < 10:
        raise DataError(f"the parties share only {n} customers; nothing to learn from")
    seconds["psi"] = time.perf_counter() - t

    t = time.perf_counter()
    train, test = split_rows(int(n), test_fraction, ctx.seed)
    block = names = None
    y = None
    if df is not None:
        feats = [c for c in df.columns if c not in (id_col, label)]
        _check_numeric_or_categorical(df, feats, me, csv)
        try:
            block, names = encode_block(df, feats, train)
        except DataError as exc:
            raise DataError(f"party {me!r}: {csv}: {exc}") from None
        if me == bank:
            y = _labels(df, label, me, csv, positive)
    vdf = VDataFrame.from_local(ctx, data_parties, block, names, int(n))
    bank_p = ctx.parties(bank)[0]
    y_all = bank_p(lambda: y)()
    seconds["preprocessing"] = time.perf_counter() - t
    linear = None
    if want_lr:
        lr_opts = {"protocol": protocol, "dealer": dealer, "epochs": epochs,
                   "batch_size": batch_size, "lr": lr, "l2": l2, "engine": engine,
                   "sim_root": sim_root}  # fmt: skip
        linear = _train_lr(ctx, vdf, bank, data_parties, block, y, y_all, train, test, lr_opts,
                           seconds)  # fmt: skip
    trees: tuple[Any, int] | None = None
    if want_sb:
        trees = risk_trees.train_secureboost(ctx, bank, providers, block, y, train, test, sbp,
                                             seconds)  # fmt: skip
    return _evaluate(ctx, vdf, bank, y_all, linear, trees, train, test, l2, sbp, seconds,
                     int(n), df, id_col)  # fmt: skip


def _train_lr(
    ctx: Context, vdf: VDataFrame, bank: str, data_parties: list[str], block: Any, y: Any,
    y_all: Any, train: np.ndarray, test: np.ndarray, o: dict[str, Any],
    seconds: dict[str, float],
) -> tuple[Any, Any, Any]:  # fmt: skip
    """Secure logistic regression (MPC or TEE): (test scores, weights, intercept) at the bank,
    ``None`` elsewhere. Adds its standardisation to ``preprocessing``, then ``training`` and
    ``prediction`` to ``seconds``."""
    bank_p = ctx.parties(bank)[0]
    t = time.perf_counter()
    if o["engine"] == "tee":
        if o["sim_root"] is None:
            raise ConfigError("the TEE engine needs the deployment's simulation root (sim_root)")
        from veil.apps.risk_tee import train_in_tee

        coef, scores = train_in_tee(
            ctx, bank=bank, owners=data_parties, block=block, y=y, train=train, test=test,
            sim_root=o["sim_root"], epochs=o["epochs"], batch_size=o["batch_size"], lr=o["lr"],
            l2=o["l2"],
        )  # fmt: skip
        seconds["training"] = time.perf_counter() - t
        weights, intercept = (None, None) if coef is None else (coef[:-1], coef[-1])
        return scores, weights, intercept
    elif o["engine"] != "mpc":
        raise ConfigError(f"unknown engine {o['engine']!r}: use mpc or tee")
    if o["protocol"] == "aby3":
        if len(data_parties) != 3:
            raise ConfigError("aby3 needs exactly three computing parties (bank + 2 providers)")
        mpc = ctx.mpc("aby3", parties=ctx.parties(*data_parties))
    elif o["protocol"] == "semi2k":
        if o["dealer"] is None:
            raise ConfigError("semi2k needs a dealer party (a separate party of the cluster)")
        dealer_p = ctx.parties(o["dealer"])[0]
        mpc = ctx.mpc("semi2k", parties=ctx.parties(*data_parties), dealer=dealer_p)
    else:
        raise ConfigError(f"unknown MPC protocol {o['protocol']!r}: use semi2k or aby3")
    X_train = vdf.rows(train).to(mpc)
    X_test = vdf.rows(test).to(mpc)
    y_train = bank_p(lambda v: v[train])(y_all).to(mpc)
    X_train, others = secure_standardize(X_train, {"test": X_test})
    seconds["preprocessing"] += time.perf_counter() - t

    t = time.perf_counter()
    model = SSLogisticRegression(mpc, epochs=o["epochs"], batch_size=o["batch_size"],
                                 lr=o["lr"], l2=o["l2"], shuffle=True, seed=ctx.seed)  # fmt: skip
    model = model.fit(X_train, y_train)
    seconds["training"] = time.perf_counter() - t

    t = time.perf_counter()
    scores = ctx.reveal(model.predict_proba(others["test"]), to=bank_p, tag="scores")
    weights = ctx.reveal(model.coef_, to=bank_p, tag="model.weights")
    intercept = ctx.reveal(model.intercept_, to=bank_p, tag="model.intercept")
    seconds["prediction"] = time.perf_counter() - t
    return scores, weights, intercept


def _evaluate(
    ctx: Context, vdf: VDataFrame, bank: str, y_all: Any, linear: tuple[Any, Any, Any] | None,
    trees: tuple[Any, int] | None, train: np.ndarray, test: np.ndarray, l2: float,
    sbp: dict[str, Any], seconds: dict[str, float], n: int, df: Any, id_col: str,
) -> dict[str, Any]:  # fmt: skip
    """The bank computes AUC/KS of each joint model and of its own baseline; all get the
    metrics."""
    t = time.perf_counter()
    bank_p = ctx.parties(bank)[0]

    def evaluate(v: np.ndarray, s: np.ndarray) -> dict[str, float]:
        return {"auc": auc(v[test], s), "ks": ks(v[test], s)}

    models: dict[str, Any] = {}
    out: dict[str, Any] = {}
    if linear is not None:
        scores, weights, intercept = linear
        joint = ctx.reveal(bank_p(evaluate)(y_all, bank_p(lambda: scores)()), tag="metrics.joint")
        models["bank_only"] = ctx.reveal(
            bank_p(_bank_only)(vdf.blocks[bank], y_all, train, test, l2), tag="metrics.bank_only"
        )
        models["joint_secure"] = joint
        if ctx.party == bank:
            out["model"] = {"coef": weights, "intercept": intercept, "test_scores": scores}
    if trees is not None:
        sb_scores, n_trees = trees
        models["bank_only_xgboost"] = ctx.reveal(
            bank_p(risk_trees.bank_only_xgboost)(vdf.blocks[bank], y_all, train, test, sbp),
            tag="metrics.bank_only_xgboost",
        )
        models["joint_secureboost"] = ctx.reveal(
            bank_p(evaluate)(y_all, bank_p(lambda: sb_scores)()), tag="metrics.joint_secureboost"
        )
        out["secureboost"] = {"params": sbp, "n_trees": n_trees}
        if ctx.party == bank:
            out["secureboost"]["test_scores"] = sb_scores
    seconds["evaluation"] = time.perf_counter() - t
    out |= {
        "n_intersection": n, "n_train": len(train), "n_test": len(test), "models": models,
        "features": vdf.feature_names, "seconds": seconds,
    }  # fmt: skip
    if ctx.party == bank:
        out["aligned_ids"] = df[id_col].astype(str).tolist() if df is not None else []
    return out


def _bank_only(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
               l2: float) -> dict[str, float]:  # fmt: skip
    """The bank's own model on its own features (plaintext, at the bank)."""
    from sklearn.linear_model import LogisticRegression

    mu, sd = X[train].mean(0), X[train].std(0)
    sd[sd == 0] = 1.0
    Z = (X - mu) / sd
    clf = LogisticRegression(C=1.0 / (l2 * len(train)), max_iter=5000).fit(Z[train], y[train])
    s = clf.predict_proba(Z[test])[:, 1]
    return {"auc": auc(y[test], s), "ks": ks(y[test], s)}
