"""ref arithmetic: exact ring operations on the plaintext (the oracle of the conformance suite)."""

from __future__ import annotations

from veil.core.ring import arshift
from veil.core.ringmatmul import ring_matmul
from veil.mpc.protocols.base import Shares


def mul(x: Shares, y: Shares) -> Shares:
    """Ring product."""
    return (x[0] * y[0],) if x else ()


def matmul(x: Shares, y: Shares) -> Shares:
    """Ring matrix product."""
    return (ring_matmul(x[0], y[0]),) if x else ()


def trunc(x: Shares, bits: int) -> Shares:
    """Exact floor division by ``2^bits`` (what the secure protocols approximate within 1 ulp)."""
    return (arshift(x[0], bits),) if x else ()


__all__ = ["matmul", "mul", "trunc"]
