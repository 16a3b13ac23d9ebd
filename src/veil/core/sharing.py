"""Additive, XOR and replicated secret sharing over Z_2^64 (pure functions, party-free).

* Additive N-out-of-N: ``x = x_0 + ... + x_{N-1} mod 2^64``; any N-1 shares are uniform.
* XOR (boolean) N-out-of-N: ``x = x_0 ^ ... ^ x_{N-1}``.
* Replicated 2-out-of-3 (ABY3): ``x = x_0 + x_1 + x_2``; party ``i`` holds ``(x_i, x_{i+1})``,
  so any single party's view is uniform and any two parties can reconstruct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from veil.core.prg import Prg
from veil.core.ring import Ring
from veil.errors import ConfigError


def additive_share(x: Ring, n: int, prg: Prg) -> list[Ring]:
    """Split ``x`` into ``n`` additive shares (the first ``n - 1`` drawn from ``prg``)."""
    if n < 1:
        raise ConfigError(f"need at least one share, got n={n}")
    x = np.asarray(x, dtype=np.uint64)
    shares = [prg.random_u64(x.shape) for _ in range(n - 1)]
    last = x.copy()
    for s in shares:
        last -= s
    return [*shares, last]


def additive_reconstruct(shares: Sequence[Ring]) -> Ring:
    """Sum of additive shares mod 2^64."""
    if not shares:
        raise ConfigError("cannot reconstruct from zero shares")
    out = np.array(shares[0], dtype=np.uint64, copy=True)
    for s in shares[1:]:
        out += s
    return out


def xor_share(x: np.ndarray[Any, Any], n: int, prg: Prg) -> list[np.ndarray[Any, Any]]:
    """Split unsigned words ``x`` into ``n`` XOR shares."""
    if n < 1:
        raise ConfigError(f"need at least one share, got n={n}")
    shares = [prg.random_words(x.shape, x.dtype) for _ in range(n - 1)]
    last = np.array(x, copy=True)
    for s in shares:
        last ^= s
    return [*shares, last]


def xor_reconstruct(shares: Sequence[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """XOR of boolean shares."""
    if not shares:
        raise ConfigError("cannot reconstruct from zero shares")
    out = np.array(shares[0], copy=True)
    for s in shares[1:]:
        out ^= s
    return out


def replicated_share(x: Ring, prg: Prg) -> list[tuple[Ring, Ring]]:
    """2-out-of-3 replicated shares of ``x``.

    Element ``i`` of the result is party ``i``'s pair ``(x_i, x_{i+1})``.
    """
    x0, x1, x2 = additive_share(x, 3, prg)
    return [(x0, x1), (x1, x2), (x2, x0)]


def replicated_reconstruct(pairs: Sequence[tuple[Ring, Ring]]) -> Ring:
    """Reconstruct from all three pairs, checking that they are consistent."""
    if len(pairs) != 3:
        raise ConfigError(f"replicated sharing has 3 parties, got {len(pairs)} pairs")
    for i in range(3):
        if not np.array_equal(pairs[i][1], pairs[(i + 1) % 3][0]):
            raise ConfigError(f"replicated shares of parties {i} and {(i + 1) % 3} disagree")
    return additive_reconstruct([p[0] for p in pairs])


__all__ = [
    "additive_reconstruct",
    "additive_share",
    "replicated_reconstruct",
    "replicated_share",
    "xor_reconstruct",
    "xor_share",
]
