"""SecureBoost training, the feature holder's side (the protocol and what it leaks:
:mod:`veil.ml.secureboost.protocol`).

A feature holder bins its own columns, receives the label holder's encrypted gradients, and
answers its requests: encrypted, shuffled cumulative histograms of the requested nodes, and the
left/right partition of the rows of a node whose split it owns. Its thresholds never leave it.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np

import veil.he as he
from veil.errors import DataError, ProtocolError
from veil.ml.secureboost.binning import apply_cuts, fit_cuts, n_bins
from veil.ml.secureboost.params import BoostParams
from veil.ml.secureboost.predict import LocalSplits, send_reach
from veil.ml.secureboost.protocol import Array, colsample, party_rng, recv_value, send_value
from veil.ml.secureboost.tree import candidate_index
from veil.transport.base import Link


def train_feature_holder(
    link: Link,
    prefix: str,
    label_holder: str,
    X: Array,
    params: BoostParams,
    *,
    X_eval: Array | None = None,
) -> LocalSplits:
    """Feature holder's side of training: answer the label holder's requests until it stops.
    Returns this party's splits and the tree topologies (for :mod:`.predict`)."""
    me, lh, p = link.party, label_holder, params
    Xm = np.asarray(X, dtype=np.float64)
    cuts = fit_cuts(Xm, p.max_bin, party=me)
    bins = apply_cuts(Xm, cuts, party=me)
    nb = n_bins(cuts)
    splits = LocalSplits(me, cuts)
    val_bins = splits.binned(X_eval, 0 if X_eval is None else len(X_eval))
    pk = he.decode_public_key(link.recv_bytes(lh, f"{prefix}.pk"))
    ct: he.CiphertextArray | None = None
    sample = np.zeros(0, dtype=np.int64)
    feats = cand_f = cand_k = perm = np.zeros(0, dtype=np.int64)
    node_split: dict[int, int] = {}
    tree_no = 0
    with he.Workers(p.workers, keys=(pk,)) as workers:
        while True:
            cmd = recv_value(link, lh, f"{prefix}.cmd")
            op = cmd.get("op") if isinstance(cmd, dict) else None
            if op == "grad":
                if int(cmd["n"]) != len(bins):
                    raise DataError(
                        f"{me!r} passed {len(bins)} training rows but the label holder {lh!r} has "
                        f"{int(cmd['n'])}: every party must pass its block of the same aligned rows"
                    )
                sample = np.asarray(cmd["rows"], dtype=np.int64)
                if sample.ndim != 1 or (
                    len(sample) and (sample.min() < 0 or sample.max() >= len(bins))
                ):
                    raise ProtocolError(f"{lh!r} sent sampled rows outside [0, {len(bins)})")
                ct = he.loads(link.recv_bytes(lh, f"{prefix}.ct"), pk, sender=lh)
                if ct.shape != (len(sample),):
                    raise ProtocolError(
                        f"{lh!r} sent {ct.shape} ciphertexts for {len(sample)} rows"
                    )
                feats = colsample(len(nb), p.colsample_bytree, party_rng(p, me, tree_no))
                feats = feats[nb[feats] > 1]
                cand_f, cand_k = candidate_index(nb[feats])
                perm = np.array(_secret_permutation(len(cand_f)), dtype=np.int64)
                node_split = {}
            elif op == "hist":
                if ct is None:
                    raise ProtocolError(f"{lh!r} asked for histograms before sending gradients")
                _send_hist(link, prefix, lh, ct, bins[sample], cmd, feats, nb, cand_f, cand_k,
                           perm, workers)  # fmt: skip
            elif op == "split":
                reply = []
                for ask in cmd["items"]:
                    j = int(ask["cand"])
                    if not 0 <= j < len(perm):
                        raise ProtocolError(f"{lh!r} chose candidate {j} of {len(perm)}")
                    f, k = int(feats[cand_f[perm[j]]]), int(cand_k[perm[j]])
                    sid = splits.add_split(f, k)
                    node_split[int(ask["node"])] = sid
                    rows = np.asarray(ask["rows"], dtype=np.int64)
                    if len(rows) and (rows.min() < 0 or rows.max() >= len(bins)):
                        raise ProtocolError(f"{lh!r} sent node rows outside [0, {len(bins)})")
                    reply.append((sid, np.packbits(bins[rows, f] <= k)))
                send_value(link, lh, f"{prefix}.splitted", reply)
            elif op == "tree":
                splits.nodes.append(node_split)
                splits.lefts.append(np.asarray(cmd["left"], dtype=np.int64))
                splits.rights.append(np.asarray(cmd["right"], dtype=np.int64))
                tree_no += 1
                ct = None
            elif op == "eval":
                send_reach(link, f"{prefix}.eval", lh, splits, val_bins,
                           range(tree_no - 1, tree_no))  # fmt: skip
            elif op == "stop":
                splits.truncate(int(cmd["n_trees"]))
                return splits
            else:
                raise ProtocolError(f"unexpected SecureBoost message {op!r} from {lh!r}")


def _secret_permutation(n: int) -> list[int]:
    """A uniformly random permutation from the OS CSPRNG (hides candidate order)."""
    out = list(range(n))
    for i in range(n - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        out[i], out[j] = out[j], out[i]
    return out


def _send_hist(link: Link, prefix: str, lh: str, ct: he.CiphertextArray, bins: Array,
               cmd: dict[str, Any], feats: Array, nb: Array, cand_f: Array, cand_k: Array,
               perm: Array, workers: he.Workers) -> None:  # fmt: skip
    """Encrypted, shuffled cumulative candidate sums of the requested nodes."""
    slot = np.asarray(cmd["slot"], dtype=np.int64)
    k = int(cmd["k"])
    if slot.shape != (len(bins),) or k < 1 or slot.max(initial=-1) >= k:
        raise ProtocolError(f"{lh!r} sent a malformed histogram request")
    sel = np.flatnonzero(slot >= 0)
    C = len(cand_f)
    if C == 0 or len(sel) == 0:
        empty = np.empty((k, C), dtype=object)
        out = he.CiphertextArray(ct.pk, empty, layout=ct.layout, bound=ct.bound)
        link.send_bytes(lh, f"{prefix}.hist", he.dumps(out))
        return
    width = int(nb[feats].max())
    # Width buckets per node, all nodes in one pool call: a node's rows stay together (or in
    # large pieces), so nodes keep veil.he's two-features-at-once path (about half the
    # multiplications of one sum over k * width buckets) and the workers share the nodes.
    hist = he.bucket_sum_groups(ct, bins[:, feats], slot, k, width, workers=workers)
    cols = [hist[:, :, 0]]
    for b in range(1, width - 1):
        cols.append(cols[-1] + hist[:, :, b])
    cum = np.stack([c.data for c in cols], axis=2)  # (F, k, width-1) left sums
    bound = max(c.bound for c in cols)
    data = cum[cand_f, :, cand_k].T[:, perm]  # (k, C) in shuffled order
    out = he.CiphertextArray(ct.pk, np.ascontiguousarray(data), layout=ct.layout, bound=bound)
    link.send_bytes(lh, f"{prefix}.hist", he.dumps(out))


__all__ = ["train_feature_holder"]
