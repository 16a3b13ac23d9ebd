"""Joint prediction: every party evaluates only its own splits; the label holder adds leaves.

Protocol (per batch of aligned rows, all trees at once):

1. Each feature holder bins its own rows, and for every tree computes the ``(rows, leaves)``
   matrix of leaves each row can still reach given *its own* splits (other parties' nodes let
   both children through, :func:`~veil.ml.secureboost.tree.reachable_leaves`). It sends the bits
   (``np.packbits``) to the label holder.
2. The label holder computes its own matrix, ANDs all of them — exactly one leaf per row and
   tree remains — and sums the leaf weights to the margin.

Threat model: semi-honest. The label holder learns, per row and tree, the set of leaves
consistent with each feature holder's splits (so the outcome of each of that party's splits on
the row's path and on other branches), never a threshold or feature. Feature holders learn
nothing new (they receive nothing). Scores stay at the label holder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veil.errors import ProtocolError
from veil.ml.secureboost.binning import apply_cuts
from veil.ml.secureboost.tree import reachable_leaves
from veil.transport.base import Link

Array = np.ndarray[Any, Any]


@dataclass
class LocalSplits:
    """What one party keeps of the model: its own splits and every tree's topology.

    ``features[s]``/``thresholds[s]`` are the rule of split id ``s`` (bin ``<= bins[s]`` goes
    left, i.e. ``x < thresholds[s]``); ``nodes[t]`` maps a node of tree ``t`` to the split id this
    party owns there; ``lefts[t]``/``rights[t]`` are tree ``t``'s children arrays.
    """

    party: str
    cuts: list[Array]
    features: list[int] = field(default_factory=list)
    bins: list[int] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    nodes: list[dict[int, int]] = field(default_factory=list)
    lefts: list[Array] = field(default_factory=list)
    rights: list[Array] = field(default_factory=list)

    def add_split(self, feature: int, bin_: int) -> int:
        """Record the rule "bin <= bin_ of ``feature`` goes left"; return its opaque id."""
        self.features.append(int(feature))
        self.bins.append(int(bin_))
        c = self.cuts[feature]
        self.thresholds.append(float(c[bin_]) if bin_ < len(c) else float("inf"))
        return len(self.features) - 1

    @property
    def n_trees(self) -> int:
        """Trees whose topology is known."""
        return len(self.lefts)

    def truncate(self, n_trees: int) -> None:
        """Keep the first ``n_trees`` trees (early stopping)."""
        del self.nodes[n_trees:], self.lefts[n_trees:], self.rights[n_trees:]

    def reach(self, bins: Array, trees: range) -> Array:
        """``(rows, Σ leaves)`` reachable-leaf booleans of ``trees`` from this party's splits."""
        mats = []
        for t in trees:
            dec = {
                node: bins[:, self.features[s]] <= self.bins[s] for node, s in self.nodes[t].items()
            }
            mats.append(reachable_leaves(self.lefts[t], self.rights[t], dec, bins.shape[0]))
        if not mats:
            return np.zeros((bins.shape[0], 0), dtype=bool)
        return np.concatenate(mats, axis=1)

    def binned(self, X: Array | None, n_rows: int) -> Array:
        """Bin this party's block (an empty block when it holds no features)."""
        if X is None or not self.cuts:
            return np.zeros((n_rows, 0), dtype=np.int32)
        return apply_cuts(X, self.cuts, party=self.party)


def send_reach(link: Link, key: str, label_holder: str, splits: LocalSplits, bins: Array,
               trees: range) -> None:  # fmt: skip
    """Feature holder's side: send the packed reachable-leaf bits of ``trees``."""
    reach = splits.reach(bins, trees)
    link.send_array(label_holder, key, np.packbits(reach, axis=1))


def joint_leaves(
    link: Link,
    key: str,
    feature_holders: list[str],
    own: LocalSplits,
    bins: Array,
    trees: range,
) -> Array:
    """Label holder's side: the ``(rows, Σ leaves)`` one-hot leaf matrix of ``trees``."""
    reach = own.reach(bins, trees)
    rows, width = reach.shape
    for fh in feature_holders:
        packed = link.recv_array(fh, key)
        if packed.dtype != np.uint8 or packed.shape != (rows, (width + 7) // 8):
            raise ProtocolError(
                f"{fh!r} sent leaf bits of shape {packed.shape}, "
                f"expected {(rows, (width + 7) // 8)}"
            )
        reach &= np.unpackbits(packed, axis=1, count=width).astype(bool)
    return reach


def margin_from_leaves(reach: Array, leaf_values: Array, n_leaves: list[int]) -> Array:
    """Sum of the leaf weights selected in ``reach`` (checks exactly one leaf per tree)."""
    counts = np.add.reduceat(reach.astype(np.int64), np.r_[0, np.cumsum(n_leaves)[:-1]], axis=1)
    if len(n_leaves) and not (counts == 1).all():
        raise ProtocolError(
            "joint prediction did not single out one leaf per row and tree: the parties' "
            "models disagree (were they fitted in the same job, on the same rows?)"
        )
    out: Array = reach.astype(np.float64) @ leaf_values
    return out
