"""aby3 conversions: replicated → two-party additive, MSB extraction, and back.

``x = x_0 + x_1 + x_2``: party 0 knows ``x_0 + x_1`` and party 1 knows ``x_2``, a two-party
additive sharing with no communication. The MSB of that sharing is extracted by the semi2k
masked-opening circuit with party 2 as its helper (eight rounds), and the arithmetic result is
turned back into a replicated sharing (one round): nine rounds in all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from veil.mpc.protocols.aby3.arithmetic import from_two_party
from veil.mpc.protocols.base import Shape, Shares
from veil.mpc.protocols.semi2k import conversion as semi2k_conversion

if TYPE_CHECKING:
    from veil.mpc.protocols.aby3.protocol import Aby3


def to_two_party(eng: Aby3, x: Shares) -> Shares:
    """Additive shares between parties 0 (``x_0 + x_1``) and 1 (``x_2``); ``()`` elsewhere."""
    if eng.rank == 0:
        return (x[0] + x[1],)
    if eng.rank == 1:
        return (x[1],)
    return ()


def msb(eng: Aby3, x: Shares, shape: Shape) -> Shares:
    """Replicated arithmetic shares of ``msb(x)`` (0/1). Nine rounds."""
    key = eng.comm.key("msb")
    bit = semi2k_conversion.msb(eng.sub, to_two_party(eng, x), shape)
    return from_two_party(eng, key, bit[0] if bit else None, shape)


def a2b(eng: Aby3, x: Shares, shape: Shape) -> Shares:
    """Replicated XOR shares ``(b_i, b_{i+1})`` of the bits of ``x``. Eight rounds."""
    key = eng.comm.key("a2b")
    words = semi2k_conversion.a2b(eng.sub, to_two_party(eng, x), shape)
    return from_two_party(eng, key, words[0] if words else None, shape, xor=True)


def b2a(eng: Aby3, b: Shares, shape: Shape) -> Shares:
    """Replicated arithmetic shares of replicated XOR-shared words. Nine rounds."""
    key = eng.comm.key("b2a")
    if eng.rank == 0:
        two: Shares = (b[0] ^ b[1],)
    elif eng.rank == 1:
        two = (b[1],)
    else:
        two = ()
    out = semi2k_conversion.b2a(eng.sub, two, shape)
    return from_two_party(eng, key, out[0] if out else None, shape)


__all__ = ["a2b", "b2a", "msb", "to_two_party"]
