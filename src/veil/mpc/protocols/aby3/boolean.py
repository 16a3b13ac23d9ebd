"""aby3 boolean kernels.

Comparisons in aby3 run the packed carry tree of
:mod:`veil.mpc.protocols.semi2k.boolean` between parties 0 and 1 on XOR shares, with party 2 as
the helper that supplies the AND triples (PRG-compressed: one correction array per gate). Party
2 never receives a message that depends on the data, and each of parties 0 and 1 sees only
values masked by triples it does not know, so privacy holds against any single corrupted party
— the honest-majority guarantee of aby3 itself.
"""

from __future__ import annotations

from veil.mpc.protocols.semi2k.boolean import and_gate, carry_out

__all__ = ["and_gate", "carry_out"]
