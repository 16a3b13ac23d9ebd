"""Runner of ``veil risk`` / ``veil demo risk``: the job, the plaintext checks, the report.

The pooled-plaintext models are **checks** computed in this process from all files (possible
only because every file is on this machine): the same aligned rows (the bank's order from PSI),
the same encoding and split; for the logistic regression, standardisation and sklearn's
``LogisticRegression`` with the same L2 penalty; for SecureBoost, xgboost ``hist`` with the same
hyper-parameters (:func:`veil.apps.risk_trees.xgb_params`). They never run in a deployment.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from veil.apps import risk_report, risk_trees
from veil.apps.risk import MODELS, _labels, policy_rules, risk_job
from veil.data.tables import read_party_csv
from veil.data.vertical import encode_block, split_rows
from veil.errors import ConfigError
from veil.ml.metrics import auc, ks, roc_curve
from veil.runtime.ledger import merge_ledgers
from veil.runtime.policy import RevealPolicy
from veil.runtime.simulate import simulate_detailed

DEALER = "dealer"


@dataclass(frozen=True)
class RiskOptions:
    """Options every party of the job agrees on.

    ``model``: ``lr`` (secure logistic regression), ``secureboost`` or ``both``;
    ``sb_params``: SecureBoost hyper-parameters over :data:`veil.apps.risk_trees.SB_DEFAULTS`.
    """

    id_col: str
    label: str
    positive: str | None = None
    model: Literal["lr", "secureboost", "both"] = "lr"
    protocol: Literal["semi2k", "aby3"] = "semi2k"
    epochs: int = 20
    batch_size: int = 256
    lr: float = 0.2
    l2: float = 1e-3
    test_fraction: float = 0.3
    engine: Literal["mpc", "tee"] = "mpc"
    sb_params: dict[str, Any] = field(default_factory=dict)

    @property
    def linear(self) -> bool:
        """Whether the job trains the logistic regression."""
        return self.model in ("lr", "both")

    @property
    def trees(self) -> bool:
        """Whether the job trains SecureBoost."""
        return self.model in ("secureboost", "both")


def pooled_check(
    files: Mapping[str, Path],
    bank: str,
    aligned_ids: list[str],
    opts: RiskOptions,
    seed: int,
    sb_params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The plaintext twins on the pooled aligned rows, same split (a check, see module doc):
    ``lr`` (sklearn, same penalty) when ``opts.linear``, ``xgboost`` (with ``sb_params``) when
    ``opts.trees``; each ``{"auc", "ks", "scores"}``, and ``y_test``."""
    blocks, y = [], None
    n = len(aligned_ids)
    train, test = split_rows(n, opts.test_fraction, seed)
    for party, path in files.items():
        df = read_party_csv(str(path), party, opts.id_col)
        df = df.assign(**{opts.id_col: df[opts.id_col].astype(str).str.strip()})
        df = df.set_index(opts.id_col).loc[aligned_ids].reset_index()
        feats = [c for c in df.columns if c not in (opts.id_col, opts.label)]
        blocks.append(encode_block(df, feats, train)[0])
        if party == bank:
            y = _labels(df, opts.label, party, str(path), opts.positive)
    assert y is not None
    X = np.concatenate(blocks, axis=1)
    out: dict[str, Any] = {"y_test": y[test]}
    if opts.linear:
        from sklearn.linear_model import LogisticRegression

        mu, sd = X[train].mean(0), X[train].std(0)
        sd[sd == 0] = 1.0
        Z = (X - mu) / sd
        clf = LogisticRegression(C=1.0 / (opts.l2 * len(train)), max_iter=10_000, tol=1e-8)
        s = clf.fit(Z[train], y[train]).predict_proba(Z[test])[:, 1]
        out["lr"] = {"auc": auc(y[test], s), "ks": ks(y[test], s), "scores": s}
    if opts.trees:
        s = risk_trees.fit_xgboost(X, y, train, test, sb_params or {})
        out["xgboost"] = {"auc": auc(y[test], s), "ks": ks(y[test], s), "scores": s}
    return out


def run(
    bank_file: Path,
    providers: Mapping[str, Path],
    opts: RiskOptions,
    out: Path,
    *,
    bank: str = "bank",
    transport: Literal["memory", "grpc"] = "grpc",
    seed: int = 0,
    console: Any = None,
) -> dict[str, Any]:
    """Run the joint job over the files, the checks, and write ``out/report.{json,html}``."""
    from rich.console import Console

    console = console or Console(stderr=True)
    if len(providers) < 1:
        raise ConfigError("give at least one provider: --provider NAME=FILE")
    if bank in providers:
        raise ConfigError(f"--provider {bank}=...: {bank!r} is the bank; name the provider "
                          "differently")  # fmt: skip
    files = {bank: bank_file, **providers}
    if opts.model not in MODELS:
        raise ConfigError(f"--model must be one of {', '.join(MODELS)}, got {opts.model!r}")
    sb_params: dict[str, Any] = {}
    if opts.trees:
        sb_params = risk_trees.boost_params(opts.sb_params, seed)  # fail fast on bad values
        risk_trees.require_xgboost()
    for party, path in files.items():
        read_party_csv(str(path), party, opts.id_col)  # fail fast, naming party and file
    use_dealer = opts.linear and opts.engine == "mpc" and opts.protocol == "semi2k"
    parties = list(files) + ([DEALER] if use_dealer else [])
    if DEALER in files:
        raise ConfigError(f"{DEALER!r} is the name of the semi2k dealer; rename that party")
    common = {k: v for k, v in asdict(opts).items()}
    common |= {"bank": bank, "providers": list(providers),
               "dealer": DEALER if use_dealer else None}  # fmt: skip
    if opts.linear and opts.engine == "tee":
        from veil.tee.sim import SimRoot

        # A development root for this run's simulated enclave, pinned by every owner.
        common["sim_root"] = SimRoot.generate().private_bytes()
    params = {p: common | {"csv": str(files.get(p, ""))} for p in parties}
    policy = RevealPolicy.from_mapping(
        {"default": "deny", "rule": policy_rules(bank, secureboost=opts.trees)},
        source="risk job policy",
    )
    how = "processes, gRPC + mutual TLS" if transport == "grpc" else "threads, in memory"
    steps = ["PSI", "preprocessing"]
    if opts.linear:
        engine = opts.protocol if opts.engine == "mpc" else "simulated TEE hosted by the bank"
        steps.append(f"training logistic regression ({engine})")
    if opts.trees:
        steps.append(f"training SecureBoost ({sb_params['n_estimators']} trees of depth "
                     f"{sb_params['max_depth']}, HE {sb_params['heu_scheme'].upper()}-"
                     f"{sb_params['key_bits']})")  # fmt: skip
    console.print(f"[bold]joint model[/]: {', '.join(parties)} ({how}) — "
                  f"{', '.join(steps)}, evaluation")  # fmt: skip
    t = time.perf_counter()
    res = simulate_detailed(risk_job, parties, transport=transport, params=params,
                            per_party_params=True, policy=policy, seed=seed)  # fmt: skip
    total = time.perf_counter() - t
    mine = res.results[bank]
    for stage, secs in mine["seconds"].items():
        console.print(f"  {stage:<24} {secs:6.2f} s")
    console.print("[bold]check[/]: pooled plaintext models on this machine (demo only)")
    pooled = pooled_check(files, bank, mine["aligned_ids"], opts, seed, sb_params)
    y_test = pooled["y_test"]
    models: dict[str, Any] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    scores: dict[str, np.ndarray] = {}
    for joint, pool, key, test_scores in (
        ("joint_secure", "pooled_plaintext", "lr", (mine.get("model") or {}).get("test_scores")),
        ("joint_secureboost", "pooled_plaintext_xgboost", "xgboost",
         (mine.get("secureboost") or {}).get("test_scores")),
    ):  # fmt: skip
        if key not in pooled:
            continue
        base = "bank_only" if key == "lr" else "bank_only_xgboost"
        models[base] = mine["models"][base]
        models[joint] = mine["models"][joint]
        models[pool] = {"auc": pooled[key]["auc"], "ks": pooled[key]["ks"]}
        scores[joint] = np.asarray(test_scores)
        curves[joint] = roc_curve(y_test, scores[joint])
        curves[pool] = roc_curve(y_test, pooled[key]["scores"])
    report = {
        "job": "risk", "transport": transport, "model": opts.model, "protocol": opts.protocol,
        "engine": opts.engine, "parties": parties, "n_intersection": mine["n_intersection"],
        "n_train": mine["n_train"], "n_test": mine["n_test"], "models": models,
        "bytes_sent": {p: s["bytes_sent"] for p, s in res.stats.items()},
        "messages": {p: s["messages_sent"] for p, s in res.stats.items()},
        "seconds": {**mine["seconds"], "total_job": total},
        "features": mine["features"], "options": asdict(opts),
        "policy": policy.to_mapping(), "ledger": merge_ledgers(res.ledgers.values()),
    }  # fmt: skip
    if opts.trees:
        report["secureboost"] = {"params": sb_params, "n_trees": mine["secureboost"]["n_trees"]}
    risk_report.write(out, report, curves, y_test, scores)
    risk_report.print_summary(console, report)
    console.print(f"report: {out / 'report.html'} (report.json beside it)")
    return report
