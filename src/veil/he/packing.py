"""Packing several signed integers into one HE plaintext, with headroom and overflow checks.

Layout: ``n_slots`` slots of ``slot_bits`` bits each; values ``v_0..v_{s-1}`` become the
plaintext ``P = sum_j v_j * 2**(j*slot_bits)`` (a signed integer; negative slots borrow from the
slot above, which the balanced-digit decoder undoes exactly). Adding packed plaintexts adds slot
by slot and multiplying by a plaintext scalar scales every slot, so one ciphertext operation works
on ``n_slots`` values at once.

Headroom: a slot decodes exactly while ``|slot| <= capacity = 2**(slot_bits-1-guard_bits) - 1``.
Given the public bound ``B`` of the encrypted values and the largest number ``K`` of terms any
slot will sum, :meth:`SlotLayout.for_sums` picks ``slot_bits = bits(B*K) + 1 + guard_bits``
(``+1`` for the sign). :class:`veil.he.vector.CiphertextArray` tracks a public bound on
``|slot|`` through every operation and raises *before* an operation that could exceed the
capacity. The ``guard_bits`` above the capacity are the carry detector: a decoded slot with
``|value| > capacity`` (an operation that bypassed the bound, or a peer that lied about it)
raises :class:`~veil.errors.ProtocolError` on decryption instead of returning a wrong sum.
Overflows larger than ``2**guard_bits`` times the capacity can wrap undetected; the bound
tracking is what prevents them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import ConfigError, DataError, ProtocolError

DEFAULT_GUARD_BITS = 8


@dataclass(frozen=True)
class SlotLayout:
    """``n_slots`` signed slots of ``slot_bits`` bits, ``guard_bits`` of them carry guard.

    Attributes
    ----------
    n_slots:
        Values per ciphertext (>= 1).
    slot_bits:
        Width of each slot.
    guard_bits:
        Bits above the capacity reserved to detect overflow on decryption.
    """

    n_slots: int
    slot_bits: int
    guard_bits: int = DEFAULT_GUARD_BITS

    def __post_init__(self) -> None:
        if self.n_slots < 1 or self.guard_bits < 0 or self.slot_bits < self.guard_bits + 2:
            raise ConfigError(
                f"invalid slot layout: {self.n_slots} slots of {self.slot_bits} bits with "
                f"{self.guard_bits} guard bits (need n_slots >= 1, slot_bits >= guard_bits + 2)"
            )

    @property
    def capacity(self) -> int:
        """Largest ``|slot value|`` that decodes exactly with the guard bits intact."""
        return (1 << (self.slot_bits - 1 - self.guard_bits)) - 1

    @property
    def total_bits(self) -> int:
        """Plaintext bits the layout occupies (``n_slots * slot_bits``)."""
        return self.n_slots * self.slot_bits

    def check_fits(self, plaintext_bits: int) -> None:
        """Raise :class:`ConfigError` unless the packed plaintext fits ``plaintext_bits``."""
        if self.total_bits > plaintext_bits:
            raise ConfigError(
                f"{self.n_slots} slots of {self.slot_bits} bits need {self.total_bits} "
                f"plaintext bits; the key offers {plaintext_bits}: use at most "
                f"{plaintext_bits // self.slot_bits} slots"
            )

    @staticmethod
    def slot_bits_for(value_bound: int, max_terms: int, guard_bits: int) -> int:
        """Slot width so that ``max_terms`` values of ``|v| <= value_bound`` sum exactly."""
        if value_bound < 0 or max_terms < 1:
            raise ConfigError("value_bound must be >= 0 and max_terms >= 1")
        return max(1, (int(value_bound) * int(max_terms)).bit_length()) + 1 + guard_bits

    @classmethod
    def max_slots(
        cls,
        plaintext_bits: int,
        value_bound: int,
        max_terms: int,
        guard_bits: int = DEFAULT_GUARD_BITS,
    ) -> int:
        """How many slots of the width :meth:`for_sums` would choose fit ``plaintext_bits``."""
        return plaintext_bits // cls.slot_bits_for(value_bound, max_terms, guard_bits)

    @classmethod
    def for_sums(
        cls,
        plaintext_bits: int,
        n_slots: int,
        value_bound: int,
        max_terms: int,
        guard_bits: int = DEFAULT_GUARD_BITS,
    ) -> SlotLayout:
        """Layout of ``n_slots`` slots holding sums of up to ``max_terms`` values bounded by
        ``value_bound`` in magnitude; raises :class:`ConfigError` if it does not fit."""
        layout = cls(n_slots, cls.slot_bits_for(value_bound, max_terms, guard_bits), guard_bits)
        layout.check_fits(plaintext_bits)
        return layout

    def pack(self, values: np.ndarray) -> np.ndarray:
        """Pack ``values`` of shape ``(..., n_slots)`` into plaintext integers ``(...)``.

        Raises :class:`DataError` if a value exceeds the slot capacity.
        """
        v = np.asarray(values)
        if v.ndim == 0 or v.shape[-1] != self.n_slots:
            raise DataError(
                f"packing needs a last axis of {self.n_slots} values, got shape {v.shape}"
            )
        cap = self.capacity
        if v.size:
            lo, hi = (
                (int(v.min()), int(v.max())) if v.dtype != object else (min(v.flat), max(v.flat))
            )
            if hi > cap or -lo > cap:
                raise DataError(
                    f"a value of magnitude {max(hi, -lo)} exceeds the slot capacity {cap} "
                    f"({self.slot_bits}-bit slots, {self.guard_bits} guard bits)"
                )
        w = self.slot_bits
        flat = v.reshape(-1, self.n_slots)
        # Horner over the slots on object arrays (Python ints, element-wise in numpy's loop)
        out = flat[:, -1].astype(object)
        for j in range(self.n_slots - 2, -1, -1):
            out = (out << w) + flat[:, j].astype(object)
        return np.asarray(out, dtype=object).reshape(v.shape[:-1])

    def unpack(self, packed: np.ndarray, *, bound: int | None = None) -> np.ndarray:
        """Inverse of :meth:`pack`: plaintexts ``(...)`` to slot values ``(..., n_slots)``.

        Raises :class:`ProtocolError` when a slot overflowed (decoded ``|value|`` above the
        capacity, or above ``bound`` when given, or a carry out of the top slot).
        """
        p = np.asarray(packed, dtype=object)
        w = self.slot_bits
        mask, half, full = (1 << w) - 1, 1 << (w - 1), 1 << w
        lim = self.capacity if bound is None else min(self.capacity, int(bound))
        flat = p.reshape(-1)
        out = np.empty((flat.shape[0], self.n_slots), dtype=object)
        for i, x in enumerate(flat.tolist()):
            x = int(x)
            for j in range(self.n_slots):
                d = x & mask
                if d >= half:
                    d -= full
                if d > lim or -d > lim:
                    raise ProtocolError(_overflow(i, j, d, lim, self))
                out[i, j] = d
                x = (x - d) >> w
            if x != 0:
                raise ProtocolError(
                    f"packed plaintext {i} carries out of its top slot: the slot sums "
                    f"overflowed the {self.total_bits}-bit layout"
                )
        return out.reshape((*p.shape, self.n_slots))


def _overflow(i: int, j: int, d: Any, lim: int, layout: SlotLayout) -> str:
    return (
        f"slot overflow in packed plaintext {i}, slot {j}: decoded magnitude {abs(int(d))} "
        f"exceeds the bound {lim} of {layout.slot_bits}-bit slots; the sums were larger than "
        "the layout allows (use wider slots: larger max_terms in SlotLayout.for_sums)"
    )
