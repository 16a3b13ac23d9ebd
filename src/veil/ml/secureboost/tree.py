"""Party-free tree math of gradient boosting: candidates, gains, leaf weights, tree layout.

Everything here is plain numpy on plaintext numbers; the protocol (:mod:`.protocol`) feeds it
the decrypted sums. Conventions follow xgboost (``objective="binary:logistic"`` or
``"reg:squarederror"``, ``tree_method="hist"``):

* split gain ``GL²/(HL+λ) + GR²/(HR+λ) − G²/(H+λ)``; a node splits only when the best gain is
  larger than ``gamma`` (xgboost's ``min_split_loss``) and both children have hessian sums of at
  least ``min_child_weight``;
* leaf weight ``−G/(H+λ)``, scaled by the learning rate.

A split candidate of a feature with ``B`` bins is "bin <= k goes left" for ``k < B - 1``; its
left sums are the cumulative sums of the per-bin histogram.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veil.errors import ConfigError

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class TreeParams:
    """Per-tree regularisation (xgboost names and defaults)."""

    max_depth: int = 6
    reg_lambda: float = 1.0
    gamma: float = 0.0
    min_child_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.max_depth < 1:
            raise ConfigError(f"max_depth must be >= 1, got {self.max_depth}")
        if self.reg_lambda < 0 or self.gamma < 0 or self.min_child_weight < 0:
            raise ConfigError("reg_lambda, gamma and min_child_weight must be >= 0")


def candidates_from_hist(hist: Array, bins_per_feature: Array) -> tuple[Array, Array, Array]:
    """Cumulative left sums of every candidate split from per-bin sums.

    Parameters
    ----------
    hist:
        ``(features, max_bins, k)`` per-bin sums (``k`` = 2 for g and h).
    bins_per_feature:
        Number of real bins of each feature.

    Returns
    -------
    (left_sums, feature, bin)
        ``left_sums`` of shape ``(candidates, k)``, candidates ordered by (feature, bin);
        ``feature`` and ``bin`` give each candidate's rule "bin <= bin goes left".
    """
    cum = np.cumsum(hist, axis=1)
    feats, ks = candidate_index(bins_per_feature)
    return cum[feats, ks], feats, ks


def candidate_index(bins_per_feature: Array) -> tuple[Array, Array]:
    """(feature, bin) of every candidate, ordered by feature then bin."""
    nb = np.asarray(bins_per_feature, dtype=np.int64)
    feats = np.repeat(np.arange(len(nb)), np.maximum(nb - 1, 0))
    ks = np.concatenate([np.arange(max(b - 1, 0)) for b in nb]) if len(nb) else np.zeros(0)
    return feats.astype(np.int64), ks.astype(np.int64)


def split_gains(GL: Array, HL: Array, G: float, H: float, params: TreeParams) -> Array:
    """Gain of every candidate (``-inf`` where a child is lighter than ``min_child_weight``)."""
    GL = np.asarray(GL, dtype=np.float64)
    HL = np.asarray(HL, dtype=np.float64)
    GR, HR = G - GL, H - HL
    lam = params.reg_lambda
    gain = GL**2 / (HL + lam) + GR**2 / (HR + lam) - G**2 / (H + lam)
    ok = (params.min_child_weight <= HL) & (params.min_child_weight <= HR)
    return np.where(ok, gain, -np.inf)


def best_candidate(
    GL: Array, HL: Array, G: float, H: float, params: TreeParams
) -> tuple[int, float] | None:
    """Index and gain of the best candidate, or ``None`` if no candidate beats ``gamma``
    (ties go to the lowest index)."""
    if len(GL) == 0:
        return None
    gains = split_gains(GL, HL, G, H, params)
    i = int(np.argmax(gains))
    g = float(gains[i])
    if not np.isfinite(g) or g <= params.gamma or g <= 1e-12:
        return None
    return i, g


def leaf_weight(G: float, H: float, reg_lambda: float) -> float:
    """Optimal leaf weight ``-G / (H + lambda)`` (before the learning rate)."""
    return float(-G / (H + reg_lambda))


def logistic_grad_hess(y: Array, margin: Array) -> tuple[Array, Array]:
    """Gradient and hessian of the logistic loss at ``margin``: ``p - y`` and ``p (1 - p)``."""
    p = sigmoid(margin)
    return p - y, p * (1.0 - p)


def squared_error_grad_hess(y: Array, margin: Array) -> tuple[Array, Array]:
    """Gradient and hessian of ``(margin - y)**2 / 2``: ``margin - y`` and ``1``."""
    g: Array = np.asarray(margin, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return g, np.ones_like(g)


def sigmoid(x: Array) -> Array:
    """Numerically stable logistic function."""
    out: Array = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))
    return out


@dataclass
class Tree:
    """One tree as the label holder stores it: topology, split owners, opaque split ids.

    Node 0 is the root. ``owner[i]`` is the party holding the split of node ``i`` (``""`` for a
    leaf), ``split_id[i]`` the owner's opaque id of that split (its feature and threshold stay
    with the owner), ``left``/``right`` the children (``-1`` for a leaf) and ``value`` the leaf
    weight (learning rate applied; 0 for inner nodes).
    """

    owner: list[str] = field(default_factory=list)
    split_id: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def add_node(self) -> int:
        """Append a leaf; return its id."""
        self.owner.append("")
        self.split_id.append(-1)
        self.left.append(-1)
        self.right.append(-1)
        self.value.append(0.0)
        return len(self.owner) - 1

    @property
    def leaves(self) -> list[int]:
        """Leaf ids in node order."""
        return [i for i, left in enumerate(self.left) if left < 0]

    def topology(self) -> dict[str, Any]:
        """What the other parties learn of the tree: children and split owners (no leaf
        values, no other party's split ids)."""
        return {
            "left": np.array(self.left, dtype=np.int64),
            "right": np.array(self.right, dtype=np.int64),
            "owner": list(self.owner),
        }


def reachable_leaves(left: Array, right: Array, decisions: dict[int, Array], n_rows: int) -> Array:
    """``(rows, leaves)`` booleans: leaves a row can reach given the known ``decisions``.

    ``decisions[node]`` is the go-left boolean of every row at the nodes this party owns;
    at other inner nodes both children stay reachable. ANDing every party's matrix leaves
    exactly one leaf per row.
    """
    n_nodes = len(left)
    reach: list[Array | None] = [None] * n_nodes
    reach[0] = np.ones(n_rows, dtype=bool)
    for i in range(n_nodes):  # parents precede children (nodes are created top-down)
        r = reach[i]
        if r is None or left[i] < 0:
            continue
        d = decisions.get(i)
        if d is None:
            reach[int(left[i])], reach[int(right[i])] = r, r
        else:
            reach[int(left[i])], reach[int(right[i])] = r & d, r & ~d
    leaves = [i for i in range(n_nodes) if left[i] < 0]
    out = np.zeros((n_rows, len(leaves)), dtype=bool)
    for j, leaf in enumerate(leaves):
        r = reach[leaf]
        if r is not None:
            out[:, j] = r
    return out
