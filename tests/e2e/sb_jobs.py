"""SecureBoost and HE-device jobs the e2e tests run as separate processes."""

import numpy as np

from veil.ml.metrics import auc
from veil.ml.secureboost import SecureBoost

COLS = {"bank": slice(0, 3), "ext1": slice(3, 5), "ext2": slice(5, 6)}


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    z = X[:, 0] - X[:, 3] + X[:, 4] * X[:, 5]
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float64)
    return X, y


def secureboost_job(ctx):
    X, y = data(1500, 3)
    Xt, yt = data(1000, 4)
    c = COLS[ctx.party]
    sb = SecureBoost(ctx, "bank", ["ext1", "ext2"], n_estimators=4, max_depth=3, max_bin=16,
                     key_bits=1024, insecure=True)  # fmt: skip
    sb.fit(X[:, c], y if ctx.party == "bank" else None)
    s = sb.predict_proba(Xt[:, c])
    return {"auc": None if s is None else auc(yt, s), "n_trees": sb.n_trees_}


def he_device_job(ctx):
    bank, ext1, ext2 = ctx.parties("bank", "ext1", "ext2")
    heu = ctx.he("ou", key_owner=bank, evaluators=(ext1, ext2), key_bits=1024, insecure=True)
    a = ext1(lambda: np.array([1.25, -2.5]))().to(heu)
    b = ext2(lambda: np.array([0.75, 0.5]))().to(heu)
    return ctx.reveal((a + b) * np.array([2, 3]), to=bank, tag="he.sum")
