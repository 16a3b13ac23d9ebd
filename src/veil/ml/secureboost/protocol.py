"""SecureBoost training over a :class:`~veil.transport.base.Link`: label holder and feature
holders (vertical: aligned rows, columns split by party). The label holder's side is here, the
feature holders' in :mod:`veil.ml.secureboost.feature_holder`.

Per tree (Cheng et al., *SecureBoost*, 2019, with xgboost's ``hist`` rules):

1. The label holder computes the gradients ``g`` and hessians ``h`` of its sampled rows
   (logistic: ``p - y`` and ``p(1-p)``; squared error: ``margin - y`` and ``1``, on the
   standardised target, see below), rounds them to fixed point (``2**-frac_bits``), packs
   ``(g, h)`` of a row into one ciphertext (:class:`veil.he.SlotLayout`, with headroom for every
   sum below, sized per tree from the largest ``|g|``) and sends the ciphertexts and the sampled
   row ids to every feature holder.
2. Level by level, it asks each feature holder for the node histograms it needs: for a pair of
   sibling nodes only the smaller child (the other is the parent minus it, in plaintext after
   decryption). The request lists, for each sampled row, which requested node it belongs to.
3. The feature holder sums the ciphertexts per (node, feature, bin)
   (:func:`veil.he.bucket_sum_groups`, all nodes of a level in one pool call, re-randomized),
   turns them into cumulative left sums of every split candidate
   (homomorphic additions), shuffles the candidates with a secret per-tree permutation and
   sends them back.
4. The label holder decrypts the candidate sums, computes the gains of its own candidates in
   plaintext and of everyone's, and picks the best split of each node. For a feature holder's
   split it sends the node's rows and the chosen (shuffled) candidate index; the owner maps it
   to its feature and bin, stores the rule under an opaque split id and returns the left/right
   partition of the node's rows. The model at the label holder stores only (owner, split id).
5. Leaf weights ``-G/(H+λ)·η`` are computed by the label holder in plaintext.

Threat model: semi-honest parties, no collusion between the label holder and a feature holder.
NOT provably secure — it leaks, by design:

* to every feature holder: the sampled rows of each tree, and the instance space (row set) of
  every node whose histogram is requested — with the parent's row set, hence of every node of
  every tree; the number of trees and the tree topology (children and which party owns each
  split); the public key; not the labels, gradients, gains, leaf weights, other parties'
  features, thresholds or split choices (beyond what the row sets imply);
* to the owner of a split: the node's full row set and that its split was chosen;
* to the label holder: for every node and every feature-holder candidate split, the sums of g
  and of h of the rows left of the candidate (so per-bin sums, up to the per-tree shuffle of
  candidates), the left/right partition of every split, each feature holder's number of
  candidates per tree; never the features, feature ids or thresholds of other parties.

Regression (``objective="reg:squarederror"``): the label holder trains on the standardised
target ``(y - mean) / sd`` (its own training mean and sd; ``gamma`` divided by ``sd**2``) and
multiplies the leaf weights by ``sd`` at the end. Gains scale by ``sd**2`` and leaf weights by
``sd``, so the trees are those of the raw target; only the fixed-point precision becomes
independent of the target's unit (a standardised value is at most ``sqrt(n)`` in magnitude).
The hessians are the constant 1: their encrypted sums are node and bin *counts*. That changes
nothing for the feature holders (they receive the same ciphertexts and already know every
node's row set, hence its counts); the label holder learns the counts of rows left of each
candidate split — as it does with the logistic hessian sums, which are weighted counts.

Sums are exact: the fixed-point values are integers and the packing layout has headroom for
``rows × max_bin`` values per slot (checked by :mod:`veil.he`, which raises instead of
overflowing); gradients too large for the key's plaintext space raise :class:`ConfigError`
before anything is encrypted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import veil.he as he
from veil.core import wire
from veil.errors import ConfigError, DataError, ProtocolError
from veil.ml.secureboost.binning import apply_cuts, fit_cuts, n_bins
from veil.ml.secureboost.objective import Target
from veil.ml.secureboost.params import BoostParams
from veil.ml.secureboost.predict import LocalSplits, joint_leaves, margin_from_leaves
from veil.ml.secureboost.tree import (
    Tree,
    best_candidate,
    candidate_index,
    candidates_from_hist,
    leaf_weight,
    logistic_grad_hess,
    squared_error_grad_hess,
)
from veil.transport.base import Link

Array = np.ndarray[Any, Any]


@dataclass
class LabelHolderModel:
    """The label holder's model: trees with leaf values, its own splits, the base margin."""

    trees: list[Tree]
    splits: LocalSplits
    base_margin: float
    best_iteration: int
    evals_result: list[float] = field(default_factory=list)
    #: Label holder's wall seconds per phase: ``encrypt`` (g, h), ``wait`` (feature holders'
    #: histograms, including transfer), ``decrypt``, ``split`` (gains and partitions).
    seconds: dict[str, float] = field(default_factory=dict)

    def margin(self, reach: Array) -> Array:
        """Margins (logistic) or predictions (regression) from the one-hot leaf matrix of
        every kept tree (:func:`~veil.ml.secureboost.predict.joint_leaves`)."""
        values = np.array([t.value[i] for t in self.trees for i in t.leaves])
        n_leaves = [len(t.leaves) for t in self.trees]
        out: Array = self.base_margin + margin_from_leaves(reach, values, n_leaves)
        return out

    def predict_own(self, X: Array | None, n_rows: int | None = None) -> Array:
        """Margins/predictions of a model whose splits are all this party's (trained without
        feature holders, e.g. :func:`train_plaintext`); raises otherwise."""
        if any(o not in ("", self.splits.party) for t in self.trees for o in t.owner):
            raise ProtocolError("the model has other parties' splits: use the joint prediction")
        rows = len(X) if X is not None else n_rows
        if rows is None:
            raise DataError("pass the feature block or n_rows")
        bins = self.splits.binned(None if X is None else np.asarray(X), rows)
        return self.margin(self.splits.reach(bins, range(len(self.trees))))


def send_value(link: Link, to: str, key: str, value: Any) -> None:
    """Send a plain value (wire codec, never pickle)."""
    link.send_bytes(to, key, wire.encode_value(value))


def recv_value(link: Link, frm: str, key: str) -> Any:
    """Receive a plain value sent by :func:`send_value`."""
    return wire.decode_value(link.recv_bytes(frm, key))


def _narrow(a: Array, hi: int) -> Array:
    """``a`` (integers in ``[-1, hi]``) in the narrowest signed dtype that holds them: row ids
    and node slots travel in 1-4 bytes instead of 8 (the receiver widens them again)."""
    for dt in (np.int8, np.int16, np.int32):
        if hi <= np.iinfo(dt).max:
            return np.asarray(a).astype(dt, copy=False)
    return np.asarray(a, dtype=np.int64)


def colsample(n_features: int, rate: float, rng: np.random.Generator) -> Array:
    """The sorted feature ids a tree uses (``colsample_bytree``; at least one)."""
    if n_features == 0:
        return np.zeros(0, dtype=np.int64)
    k = max(1, round(rate * n_features))
    return np.sort(rng.choice(n_features, size=k, replace=False)).astype(np.int64)


def party_rng(params: BoostParams, party: str, tree: int) -> np.random.Generator:
    """A party's sampling generator for one tree (public seed: sampling is not secret)."""
    return np.random.default_rng([params.seed, tree, int.from_bytes(party.encode()[:8], "little")])


# ---------------------------------------------------------------------------- label holder
@dataclass
class _Node:
    rows: Array  # all training rows in the node
    srows: Array  # positions (in the tree's sample) of its sampled rows
    depth: int
    parent: int = -1
    cands: dict[str, Array] = field(default_factory=dict)  # party -> (C, 2) int64 left sums


class _LabelHolder:
    def __init__(self, link: Link | None, me: str, prefix: str, fhs: list[str], X: Array | None,
                 y: Array, params: BoostParams,
                 keys: tuple[he.PublicKey, he.PrivateKey] | None,
                 workers: he.Workers | None) -> None:  # fmt: skip
        if fhs and (link is None or keys is None or workers is None):
            raise ProtocolError("a label holder with feature holders needs a link and HE keys")
        self._link, self.key, self.fhs, self.p, self._workers = link, prefix, fhs, params, workers
        self.me = me
        self.y = np.asarray(y, dtype=np.float64).reshape(-1)
        self.n = len(self.y)
        Xm = np.zeros((self.n, 0)) if X is None else np.asarray(X, dtype=np.float64)
        if Xm.shape[0] != self.n:
            raise DataError(f"{self.me!r}: {Xm.shape[0]} feature rows but {self.n} labels")
        cuts = fit_cuts(Xm, params.max_bin, party=self.me) if Xm.shape[1] else []
        self.bins = apply_cuts(Xm, cuts, party=self.me) if cuts else np.zeros((self.n, 0), np.int32)
        self.nb = n_bins(cuts)
        self.splits = LocalSplits(self.me, cuts)
        self.scale = 1 << params.frac_bits
        self._keys = keys
        self.seconds: dict[str, float] = {}

    # Only reached with feature holders (checked in __init__).
    @property
    def link(self) -> Link:
        assert self._link is not None
        return self._link

    @property
    def workers(self) -> he.Workers:
        assert self._workers is not None
        return self._workers

    @property
    def pk(self) -> he.PublicKey:
        assert self._keys is not None
        return self._keys[0]

    @property
    def sk(self) -> he.PrivateKey:
        assert self._keys is not None
        return self._keys[1]

    def send_all(self, value: Any) -> None:
        for fh in self.fhs:
            send_value(self.link, fh, f"{self.key}.cmd", value)

    def tree(self, t: int, margin: Array) -> Tree:
        p = self.p
        rng = party_rng(p, self.me, t)
        if p.regression:
            g, h = squared_error_grad_hess(self.y, margin)
        else:
            g, h = logistic_grad_hess(self.y, margin)
        if p.subsample < 1:
            m = max(2, round(p.subsample * self.n))
            sample = np.sort(rng.choice(self.n, size=m, replace=False))
        else:
            sample = np.arange(self.n)
        m = len(sample)
        # the feature holders take part in this tree (not in the first with first_tree_local)
        self.active = [] if (t == 0 and p.first_tree_local) else self.fhs
        pos = np.full(self.n, -1, dtype=np.int64)
        pos[sample] = np.arange(m)
        self.splits_nodes: dict[int, int] = {}
        self.gs, self.hs = g[sample], h[sample]
        bound = self._quantize(m)
        t0 = time.perf_counter()
        if self.active:
            layout = self._layout(bound, m)
            ct = he.encrypt(self.sk, np.stack([self.gq, self.hq], axis=1), layout=layout,
                            value_bound=bound, workers=self.workers)  # fmt: skip
            blob = he.dumps(ct)
            for fh in self.active:
                grad = {"op": "grad", "rows": _narrow(sample, self.n), "n": self.n}
                send_value(self.link, fh, f"{self.key}.cmd", grad)
                self.link.send_bytes(fh, f"{self.key}.ct", blob)
        self._tick("encrypt", t0)
        self.feats = colsample(len(self.nb), p.colsample_bytree, rng)
        self.cand_f, self.cand_k = candidate_index(self.nb[self.feats])
        self.cand_f = self.feats[self.cand_f] if len(self.cand_f) else self.cand_f
        tree = Tree()
        nodes = {tree.add_node(): _Node(np.arange(self.n), np.arange(m), 0)}
        open_ids = [0] if self._can_split(nodes[0]) else []
        while open_ids:
            self._histograms(nodes, open_ids)
            nxt: list[int] = []
            t0 = time.perf_counter()
            chosen = self._choose(nodes, open_ids)
            parts = self._partition(nodes, chosen, tree)
            self._tick("split", t0)
            for nid, (left_mask, owner, sid) in parts.items():
                node = nodes[nid]
                tree.owner[nid], tree.split_id[nid] = owner, sid
                for side, mask in ((0, left_mask), (1, ~left_mask)):
                    cid = tree.add_node()
                    (tree.left if side == 0 else tree.right)[nid] = cid
                    rows = node.rows[mask]
                    srows = pos[rows]
                    child = _Node(rows, srows[srows >= 0], node.depth + 1, parent=nid)
                    nodes[cid] = child
                    if self._can_split(child):
                        nxt.append(cid)
            open_ids = nxt
        for leaf in tree.leaves:
            node = nodes[leaf]
            G, H = float(self.gs[node.srows].sum()), float(self.hs[node.srows].sum())
            tree.value[leaf] = p.learning_rate * leaf_weight(G, H, p.reg_lambda)
            margin[node.rows] += tree.value[leaf]
        return tree

    def _quantize(self, m: int) -> int:
        """Fixed-point ``gq``, ``hq`` of the tree's sample; returns the public bound on their
        magnitude (at least ``2**frac_bits``: the logistic bound, so binary layouts are fixed).
        Raises :class:`DataError` if ``m`` such values could not be summed exactly in float64
        (the label holder's own histograms) or int64."""
        top = float(max(np.abs(self.gs).max(initial=0.0), np.abs(self.hs).max(initial=0.0)))
        if not np.isfinite(top) or top * self.scale * max(m, 1) >= 2.0**52:
            raise DataError(
                f"{self.me!r}: gradients up to {top:.3g} over {m} rows do not fit "
                f"{self.p.frac_bits} fractional bits in exact sums; lower frac_bits"
            )
        self.gq = np.rint(self.gs * self.scale).astype(np.int64)
        self.hq = np.rint(self.hs * self.scale).astype(np.int64)
        top_q = max(int(np.abs(self.gq).max(initial=0)), int(np.abs(self.hq).max(initial=0)))
        return max(self.scale, top_q)

    def _layout(self, bound: int, m: int) -> he.SlotLayout:
        try:
            return he.SlotLayout.for_sums(self.pk.plaintext_bits, 2, bound, m * self.p.max_bin)
        except ConfigError as exc:
            raise ConfigError(
                f"{self.me!r}: gradients up to {bound / self.scale:.3g} summed over {m} rows x "
                f"{self.p.max_bin} bins do not fit the {self.p.scheme} key's plaintext space "
                f"({exc}); lower frac_bits or max_bin, or use a larger key_bits"
            ) from None

    def _tick(self, phase: str, start: float) -> float:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - start
        return now

    def _can_split(self, node: _Node) -> bool:
        p = self.p
        heavy = float(self.hq[node.srows].sum()) / self.scale >= 2 * p.min_child_weight
        return node.depth < p.max_depth and len(node.srows) >= 2 and heavy

    def _histograms(self, nodes: dict[int, _Node], open_ids: list[int]) -> None:
        """Fill ``cands`` of every open node: own in plaintext, feature holders' decrypted."""
        compute: list[int] = []
        derive: list[tuple[int, int]] = []  # (node, computed sibling)
        seen: set[int] = set()
        for nid in open_ids:
            if nid in seen:
                continue
            par = nodes[nid].parent
            sib = [s for s in open_ids if s != nid and nodes[s].parent == par and par >= 0]
            if sib:
                a, b = nid, sib[0]
                small, big = (a, b) if len(nodes[a].srows) <= len(nodes[b].srows) else (b, a)
                compute.append(small)
                derive.append((big, small))
                seen.update((a, b))
            else:
                compute.append(nid)
                seen.add(nid)
        if self.active:  # ask first: own histograms are computed while the others work
            slot = np.full(len(self.gq), -1, dtype=np.int32)
            for j, nid in enumerate(compute):
                slot[nodes[nid].srows] = j
            self.send_all({"op": "hist", "slot": _narrow(slot, len(compute)), "k": len(compute)})
        for nid in open_ids:
            nodes[nid].cands[self.me] = self._own_cands(nodes[nid].srows)
        if not self.active:
            return
        for fh in self.active:
            t0 = time.perf_counter()
            ct = he.loads(self.link.recv_bytes(fh, f"{self.key}.hist"), self.pk, sender=fh)
            t0 = self._tick("wait", t0)
            if ct.shape[:1] != (len(compute),):
                raise ProtocolError(
                    f"{fh!r} sent {ct.shape} candidate sums for {len(compute)} nodes"
                )
            sums = he.decrypt_ints(self.sk, ct, workers=self.workers).astype(np.int64)
            self._tick("decrypt", t0)
            for j, nid in enumerate(compute):
                nodes[nid].cands[fh] = sums[j]
        for big, small in derive:
            parent = nodes[nodes[big].parent]
            for fh in self.active:
                nodes[big].cands[fh] = parent.cands[fh] - nodes[small].cands[fh]
        for nid in open_ids:  # parents' sums are no longer needed
            if nodes[nid].parent >= 0:
                nodes[nodes[nid].parent].cands = {}

    def _own_cands(self, srows: Array) -> Array:
        if len(self.feats) == 0:
            return np.zeros((0, 2), dtype=np.int64)
        width = int(self.nb[self.feats].max())
        hist = np.zeros((len(self.feats), width, 2), dtype=np.int64)
        b = self.bins[srows]
        for j, f in enumerate(self.feats):
            hist[j, :, 0] = np.bincount(b[:, f], weights=self.gq[srows], minlength=width)
            hist[j, :, 1] = np.bincount(b[:, f], weights=self.hq[srows], minlength=width)
        left, _, _ = candidates_from_hist(hist, self.nb[self.feats])
        return np.asarray(left, dtype=np.int64)

    def _choose(self, nodes: dict[int, _Node], open_ids: list[int]) -> dict[int, tuple[str, int]]:
        out: dict[int, tuple[str, int]] = {}
        s = float(self.scale)
        for nid in open_ids:
            node = nodes[nid]
            G, H = float(self.gq[node.srows].sum()) / s, float(self.hq[node.srows].sum()) / s
            best: tuple[float, str, int] | None = None
            for party in (self.me, *self.active):
                c = node.cands[party]
                r = best_candidate(c[:, 0] / s, c[:, 1] / s, G, H, self.p.tree)
                if r is not None and (best is None or r[1] > best[0]):
                    best = (r[1], party, r[0])
            if best is not None:
                out[nid] = (best[1], best[2])
        return out

    def _partition(self, nodes: dict[int, _Node], chosen: dict[int, tuple[str, int]],
                   tree: Tree) -> dict[int, tuple[Array, str, int]]:  # fmt: skip
        out: dict[int, tuple[Array, str, int]] = {}
        asks: dict[str, list[dict[str, Any]]] = {fh: [] for fh in self.fhs}
        for nid, (party, c) in chosen.items():
            rows = nodes[nid].rows
            if party == self.me:
                f, k = int(self.cand_f[c]), int(self.cand_k[c])
                sid = self.splits.add_split(f, k)
                self.splits_nodes[nid] = sid
                out[nid] = (self.bins[rows, f] <= k, self.me, sid)
            else:
                asks[party].append({"node": nid, "cand": c, "rows": _narrow(rows, self.n)})
        for fh in self.fhs:
            if asks[fh]:
                send_value(self.link, fh, f"{self.key}.cmd", {"op": "split", "items": asks[fh]})
        for fh in self.fhs:
            if not asks[fh]:
                continue
            reply = recv_value(self.link, fh, f"{self.key}.splitted")
            if not isinstance(reply, list) or len(reply) != len(asks[fh]):
                raise ProtocolError(f"{fh!r} answered {len(reply)} of {len(asks[fh])} splits")
            for ask, (sid, packed) in zip(asks[fh], reply, strict=True):
                n_rows, bits = len(ask["rows"]), np.asarray(packed)
                if bits.dtype != np.uint8 or bits.shape != ((n_rows + 7) // 8,):
                    raise ProtocolError(f"{fh!r} sent a malformed partition of node {ask['node']}")
                mask = np.unpackbits(bits, count=n_rows).astype(bool)
                if not mask.any() or mask.all():
                    raise ProtocolError(f"{fh!r} returned an empty side for node {ask['node']}")
                out[int(ask["node"])] = (mask, fh, int(sid))
        return out


def train_label_holder(
    link: Link,
    prefix: str,
    feature_holders: list[str],
    X: Array | None,
    y: Array,
    params: BoostParams,
    *,
    eval_set: tuple[Array | None, Array] | None = None,
) -> LabelHolderModel:
    """Label holder's side of training (see module docstring). ``X`` is its own feature block
    (or ``None``), ``y`` the 0/1 labels (or real targets for ``reg:squarederror``) of the
    aligned rows; ``eval_set`` its validation block and labels for early stopping (the feature
    holders pass theirs). Without feature holders nothing is sent and no key is made."""
    target = Target.fit(y, params, link.party)
    p = target.params
    fhs = list(feature_holders)
    if not fhs:
        lh = _LabelHolder(None, link.party, prefix, [], X, target.y, p, None, None)
        return _boost(lh, target, eval_set)
    keys = he.keygen(p.scheme, p.key_bits, insecure=p.insecure)
    # The public key first: the feature holders build their worker pools (fixed-base tables)
    # while this party builds its own.
    for fh in fhs:
        link.send_bytes(fh, f"{prefix}.pk", he.encode_public_key(keys[0]))
    with he.Workers(p.workers, keys=(keys[0],), owner_keys=(keys[1],)) as workers:
        lh = _LabelHolder(link, link.party, prefix, fhs, X, target.y, p, keys, workers)
        return _boost(lh, target, eval_set)


def train_plaintext(
    party: str,
    X: Array,
    y: Array,
    params: BoostParams,
    *,
    eval_set: tuple[Array, Array] | None = None,
) -> LabelHolderModel:
    """The same trainer on one party's plaintext (no peers, no HE, no messages): the
    plaintext twin of vertical SecureBoost, e.g. the label holder's own-features-only
    baseline. Predict with :meth:`LabelHolderModel.predict_own`."""
    target = Target.fit(y, params, party)
    lh = _LabelHolder(None, party, "local", [], np.asarray(X), target.y, target.params,
                      None, None)  # fmt: skip
    return _boost(lh, target, eval_set)


def _boost(
    lh: _LabelHolder, target: Target, eval_set: tuple[Array | None, Array] | None
) -> LabelHolderModel:
    p, prefix = lh.p, lh.key
    margin = np.full(lh.n, target.base)
    val_bins = val_margin = yv = None
    if eval_set is not None:
        yv = np.asarray(eval_set[1], dtype=np.float64).reshape(-1)
        val_bins = lh.splits.binned(eval_set[0], len(yv))
        val_margin = np.full(len(yv), target.base)
    trees: list[Tree] = []
    losses: list[float] = []
    best = 0
    for t in range(p.n_estimators):
        tree = lh.tree(t, margin)
        trees.append(tree)
        topo = tree.topology()
        lh.splits.nodes.append(dict(lh.splits_nodes))
        lh.splits.lefts.append(topo["left"])
        lh.splits.rights.append(topo["right"])
        lh.send_all({"op": "tree", **topo})
        if val_bins is not None and val_margin is not None and yv is not None:
            if lh.fhs:
                lh.send_all({"op": "eval"})
                reach = joint_leaves(lh.link, f"{prefix}.eval", lh.fhs, lh.splits, val_bins,
                                     range(t, t + 1))  # fmt: skip
            else:
                reach = lh.splits.reach(val_bins, range(t, t + 1))
            leaves = tree.leaves
            val_margin += margin_from_leaves(reach, np.array([tree.value[i] for i in leaves]),
                                             [len(leaves)])  # fmt: skip
            losses.append(target.loss(yv, val_margin))
            if losses[-1] < losses[best]:
                best = t
            if p.early_stopping_rounds is not None and t - best >= p.early_stopping_rounds:
                break
        else:
            best = t
    n_keep = best + 1 if p.early_stopping_rounds is not None else len(trees)
    lh.send_all({"op": "stop", "n_trees": n_keep})
    lh.splits.truncate(n_keep)
    kept = trees[:n_keep]
    base = target.finish(kept)
    return LabelHolderModel(kept, lh.splits, base, n_keep - 1, losses, lh.seconds)
