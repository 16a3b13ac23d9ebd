"""Shared helpers of the secure-aggregation tests: seeded randomness, inputs, the plaintext oracle."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pytest

from veil.fl.secagg import SecAggConfig


def seeded(seed: int) -> Callable[[int], bytes]:
    """A deterministic ``randbytes`` (tests only: real rounds use ``os.urandom``)."""
    return random.Random(seed).randbytes


def make_vectors(n: int, dim: int, seed: int = 0, scale: float = 0.05) -> dict[str, np.ndarray]:
    """``n`` clients ``c0..`` with Gaussian vectors well inside the default clip bound."""
    rng = np.random.default_rng(seed)
    return {f"c{i}": rng.normal(size=dim) * scale / np.sqrt(dim) for i in range(n)}


def exact_sum(
    vectors: Mapping[str, np.ndarray],
    survivors: Iterable[str],
    config: SecAggConfig,
    weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Plaintext oracle: decode(sum of encodings) of the survivors' clipped (weighted) vectors."""
    fp = config.fixed_point
    acc: Any = None
    for c in survivors:
        v = np.asarray(vectors[c], dtype=np.float64)
        norm = float(np.linalg.norm(v))
        if norm > config.clip:
            v = v * (config.clip / norm)
        if weights is not None:
            v = v * weights[c]
        e = fp.encode(v)
        acc = e if acc is None else acc + e
    return fp.decode(acc)


@pytest.fixture
def rand() -> Callable[[int], bytes]:
    return seeded(1234)
