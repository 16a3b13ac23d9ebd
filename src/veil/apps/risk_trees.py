"""The tree model of the credit-risk job: SecureBoost (joint) and its xgboost baselines.

The joint model is :class:`veil.ml.secureboost.SecureBoost` — the bank is the label holder and
the HE key owner, the providers are feature holders — on the same PSI-aligned, owner-encoded
blocks and the same train/test split as the logistic regression. Trees need no
standardisation; missing values are what :func:`veil.data.vertical.encode_block` makes of them
(numeric: the owner's training-row mean; categorical: one-hot, missing/unseen = all zeros),
because SecureBoost's binning (:mod:`veil.ml.secureboost.binning`) accepts only finite values.

Its baselines use xgboost (``tree_method="hist"``) with the same hyper-parameters
(:func:`xgb_params`): **bank-only** (at the bank, on its own block, in every run) and
**pooled plaintext** (the demo's check, :mod:`veil.apps.risk_run`).

What SecureBoost discloses beyond the logistic regression (``docs/secureboost.md``) travels
inside its protocol, not through ``ctx.reveal``; :func:`check_disclosures` asks each party's
reveal policy for it first (tags :data:`INSTANCE_SPACES` and :data:`SPLIT_SUMS`) and writes it
to the audit ledger, so an institution whose policy does not allow it stops the job before any
gradient is sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from veil.errors import ConfigError, RevealDenied
from veil.ml.secureboost import BoostParams, SecureBoost
from veil.runtime.context import Context

Array = np.ndarray[Any, Any]

#: Hyper-parameters of the job's SecureBoost (and of its xgboost baselines) unless overridden:
#: shallow trees suit a few thousand training rows (credit_data: 1,887 after PSI and split).
SB_DEFAULTS: dict[str, Any] = {
    "n_estimators": 20,
    "max_depth": 3,
    "learning_rate": 0.3,
    "max_bin": 32,
    "reg_lambda": 1.0,
    "min_child_weight": 1.0,
    "key_bits": 2048,
}
#: SecureBoost parameters xgboost shares (same names and meaning), passed to the baselines.
XGB_SHARED = ("n_estimators", "max_depth", "learning_rate", "reg_lambda", "gamma",
              "min_child_weight", "subsample", "colsample_bytree", "max_bin")  # fmt: skip
#: Policy tag: row sets of every tree node (and the topology, split owners) to the providers.
INSTANCE_SPACES = "secureboost.instance_spaces"
#: Policy tag: per-candidate gradient/hessian sums and split partitions to the label holder.
SPLIT_SUMS = "secureboost.split_sums"
_DISCLOSURES = {
    INSTANCE_SPACES: "the row set of every tree node, each tree's topology and split owners",
    SPLIT_SUMS: "sums of gradients and hessians left of every provider split candidate, the "
    "row partition of every provider split, the leaves each party's splits allow at prediction",
}


def _check_type(key: str, value: Any) -> None:
    """A parameter of the wrong kind (``max_depth=abc``) named, not a comparison error later."""
    kinds = {f.name: str(f.type) for f in dataclasses.fields(BoostParams)} | {"heu_scheme": "str"}
    kind = kinds[key]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": number,
        "str": isinstance(value, str),
    }[kind.split(" ")[0]] or (value is None and "None" in kind)
    if not ok:
        want = {"bool": "true or false", "int": "an integer", "float": "a number"}
        raise ConfigError(
            f"SecureBoost parameter {key} must be {want.get(kind.split(' ')[0], 'text')}, "
            f"got {value!r}"
        )


def boost_params(overrides: Mapping[str, Any] | None, seed: int) -> dict[str, Any]:
    """The job's SecureBoost parameters: :data:`SB_DEFAULTS`, the job seed, ``overrides``.

    ``heu_scheme`` (or ``scheme``) chooses the HE scheme (``ou`` or ``paillier``). Unknown names
    and ``early_stopping_rounds`` (the job keeps no validation set) raise :class:`ConfigError`.
    """
    params: dict[str, Any] = {**SB_DEFAULTS, "seed": seed, "heu_scheme": "ou"}
    for key, value in (overrides or {}).items():
        params["heu_scheme" if key == "scheme" else key] = value
    valid = {f.name for f in dataclasses.fields(BoostParams)} - {"scheme"} | {"heu_scheme"}
    unknown = sorted(set(params) - valid)
    if unknown:
        usable = sorted(valid - {"early_stopping_rounds"})
        raise ConfigError(f"unknown SecureBoost parameters {unknown}; valid: {usable}")
    for key, value in (overrides or {}).items():
        _check_type("heu_scheme" if key == "scheme" else key, value)
    if params.get("early_stopping_rounds") is not None:
        raise ConfigError(
            "early_stopping_rounds needs a validation set, which the risk job does not keep; "
            "choose n_estimators instead"
        )
    if params.get("objective", "binary:logistic") != "binary:logistic":
        raise ConfigError("the risk job's label is binary: objective must be binary:logistic")
    sb = {k: v for k, v in params.items() if k != "heu_scheme"}
    try:
        BoostParams(scheme=str(params["heu_scheme"]), **sb)  # validates values up front
    except TypeError as exc:
        raise ConfigError(f"bad SecureBoost parameters: {exc}") from None
    if params["heu_scheme"] not in ("ou", "paillier"):
        raise ConfigError(f"heu_scheme must be ou or paillier, got {params['heu_scheme']!r}")
    return params


def xgb_params(params: Mapping[str, Any], y_train: Array) -> dict[str, Any]:
    """xgboost ``XGBClassifier`` arguments equal to the SecureBoost ``params``: ``hist``, the
    shared knobs, the same base score (the training label mean unless set), one thread."""
    out: dict[str, Any] = {k: params[k] for k in XGB_SHARED if params.get(k) is not None}
    base = params.get("base_score")
    out["base_score"] = float(np.mean(y_train)) if base is None else float(base)
    return out | {"tree_method": "hist", "objective": "binary:logistic", "n_jobs": 1,
                  "random_state": int(params.get("seed", 0))}  # fmt: skip


def require_xgboost() -> None:
    """Raise an actionable :class:`ConfigError` when xgboost (the tree baselines) is missing."""
    try:
        import xgboost  # noqa: F401
    except ImportError:
        raise ConfigError(
            "the tree model's baselines need xgboost: pip install xgboost-cpu (or use --model lr)"
        ) from None


def fit_xgboost(X: Array, y: Array, train: Array, test: Array, params: Mapping[str, Any]) -> Array:
    """Test-row probabilities of xgboost fitted on the training rows (plaintext)."""
    import xgboost as xgb

    clf = xgb.XGBClassifier(**xgb_params(params, y[train]))
    out: Array = clf.fit(X[train], y[train]).predict_proba(X[test])[:, 1]
    return out


def check_disclosures(ctx: Context, bank: str, providers: Sequence[str]) -> None:
    """Ask this party's reveal policy for SecureBoost's by-design disclosures and ledger them
    (event ``disclosure``); raise :class:`RevealDenied` (ledgered as ``disclosure_denied``)
    if it refuses. Every party of the job calls it before training."""
    pairs = ((INSTANCE_SPACES, bank, list(providers)), (SPLIT_SUMS, ",".join(providers), [bank]))
    for tag, source, to in pairs:
        decision = ctx.policy.check(tag, to, "he")
        fields = {"job": ctx.job_id, "tag": tag, "from": source, "to": to,
                  "protocol": "secureboost", "what": _DISCLOSURES[tag],
                  "policy": decision.reason}  # fmt: skip
        if not decision.allowed:
            ctx.ledger.append("disclosure_denied", **fields)
            raise RevealDenied(
                f"SecureBoost discloses {_DISCLOSURES[tag]} to {to} (tag {tag!r}); "
                f"{ctx.party!r}'s reveal policy refuses it ({decision.reason}). Allow the tag "
                "in the policy, or train the logistic regression only (--model lr)"
            )
        ctx.ledger.append("disclosure", **fields)


def train_secureboost(
    ctx: Context,
    bank: str,
    providers: Sequence[str],
    block: Array | None,
    y: Array | None,
    train: Array,
    test: Array,
    params: Mapping[str, Any],
    seconds: dict[str, float],
) -> tuple[Array | None, int]:
    """Fit on the training rows, score the test rows (collective; every party calls it).

    Returns the test scores (at the bank, ``None`` elsewhere) and the number of trees; adds
    ``secureboost_training`` and ``secureboost_prediction`` to ``seconds``.
    """
    import time

    t = time.perf_counter()
    kw = {k: v for k, v in params.items() if k != "heu_scheme"}
    sb = SecureBoost(ctx, bank, list(providers), heu_scheme=str(params["heu_scheme"]), **kw)
    mine = block is not None and ctx.party in (bank, *providers)
    sb.fit(block[train] if mine and block is not None else None,
           y[train] if ctx.party == bank and y is not None else None)  # fmt: skip
    seconds["secureboost_training"] = time.perf_counter() - t
    t = time.perf_counter()
    scores = sb.predict_proba(block[test] if mine and block is not None else None)
    seconds["secureboost_prediction"] = time.perf_counter() - t
    return scores, sb.n_trees_


def bank_only_xgboost(X: Array, y: Array, train: Array, test: Array,
                      params: Mapping[str, Any]) -> dict[str, float]:  # fmt: skip
    """The bank's own tree model on its own features (xgboost, plaintext, at the bank)."""
    from veil.ml.metrics import auc, ks

    s = fit_xgboost(X, y, train, test, params)
    return {"auc": auc(y[test], s), "ks": ks(y[test], s)}
