"""Fixed-base modular exponentiation with precomputed byte-window tables.

For a base ``b`` used in every encryption (Paillier's ``h_s``, Okamoto–Uchiyama's ``G`` and
``H``) we precompute ``T[i][d] = b^(d * 2^(w*i)) mod m`` for every ``w``-bit window position
``i`` of the largest exponent and every digit ``d``. Then ``b^e`` is the product of one table
entry per non-zero digit of ``e``: ``ceil(bits(e) / w)`` modular multiplications and no
squarings, against ``~1.2 * bits(e)`` for square-and-multiply (Brickell–Gordon–McCurley–Wilson,
"Fast exponentiation with precomputation", EUROCRYPT '92, in its simplest fixed-window form).

Memory: ``ceil(max_bits / w) * 2^w`` residues. With the default ``w = 8`` and Paillier-2048's
1024-bit exponents that is 128 x 256 x 512 bytes = 16.8 MB, built in about 0.1 s. Measured on
this machine, larger windows trade memory for little: table entries stop fitting in cache, so
``w = 12`` (11x the memory) saves only ~20 % of the time.

The tables hold only public values (powers of a public base), so they may be shared freely.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import gmpy2
import numpy as np

from veil.errors import ProtocolError

DEFAULT_WINDOW_BITS = 8
MAX_WINDOW_BITS = 16
#: Exponents per pass of :meth:`FixedBaseTable.pow_many` (measured best on this machine).
BATCH = 1024


class FixedBaseTable:
    """Powers of one public base modulo ``modulus`` for exponents below ``2**max_bits``.

    Parameters
    ----------
    base:
        The fixed base (reduced modulo ``modulus``).
    modulus:
        The modulus (odd, > 1).
    max_bits:
        Largest exponent bit length the table serves; larger exponents fall back to
        :func:`gmpy2.powmod` (correct, just slower).
    window_bits:
        Bits per window ``w``: ``ceil(max_bits / w)`` multiplications per power, ``2**w``
        residues per window row. Rows are built on first use, so a table sized for the whole
        plaintext space costs memory only for the exponent sizes actually used.
    """

    __slots__ = ("_lock", "_rows", "base", "max_bits", "modulus", "window_bits")

    def __init__(
        self, base: int, modulus: int, max_bits: int, window_bits: int = DEFAULT_WINDOW_BITS
    ) -> None:
        if max_bits < 1:
            raise ProtocolError(f"fixed-base table needs max_bits >= 1, got {max_bits}")
        if not 1 <= window_bits <= MAX_WINDOW_BITS:
            raise ProtocolError(f"window_bits must be in [1, {MAX_WINDOW_BITS}]")
        m = gmpy2.mpz(modulus)
        if m <= 1:
            raise ProtocolError("fixed-base table modulus must be > 1")
        self.modulus: Any = m
        self.base: Any = gmpy2.mpz(base) % m
        self.max_bits = int(max_bits)
        self.window_bits = int(window_bits)
        self._rows: list[list[Any]] = []
        self._lock = threading.Lock()  # rows grow lazily; parties may share a table in threads

    @property
    def n_windows(self) -> int:
        """Number of windows (``ceil(max_bits / window_bits)``)."""
        return -(-self.max_bits // self.window_bits)

    def build(self, windows: int | None = None) -> FixedBaseTable:
        """Precompute the first ``windows`` rows (all by default); returns ``self``."""
        want = self.n_windows if windows is None else min(int(windows), self.n_windows)
        m, radix, rows = self.modulus, 1 << self.window_bits, self._rows
        with self._lock:
            while len(rows) < want:
                cur = self.base if not rows else rows[-1][-1] * rows[-1][1] % m
                row = [gmpy2.mpz(1), cur]
                for _d in range(2, radix):
                    row.append(row[-1] * cur % m)
                rows.append(row)
        return self

    def pow(self, exponent: int) -> Any:
        """``base ** exponent mod modulus`` for ``exponent >= 0`` (an ``mpz``)."""
        e = int(exponent)
        if e < 0:
            raise ProtocolError("fixed-base exponent must be non-negative")
        nbits = e.bit_length()
        if nbits > self.max_bits:
            return gmpy2.powmod(self.base, e, self.modulus)
        w = self.window_bits
        k = -(-nbits // w)
        if k > len(self._rows):
            self.build(k)
        m, rows = self.modulus, self._rows
        acc: Any = None
        if w == 8:
            digits: Any = e.to_bytes(k, "little")
        else:
            mask = (1 << w) - 1
            digits = [(e >> (w * i)) & mask for i in range(k)]
        for i, d in enumerate(digits):
            if d:
                acc = rows[i][d] if acc is None else acc * rows[i][d] % m
        return gmpy2.mpz(1) if acc is None else acc

    def pow_many(self, exponents: Sequence[int]) -> list[Any]:
        """``[base ** e mod modulus for e in exponents]``, window row by window row.

        Same results as :meth:`pow`; processing a batch one table row at a time keeps that row
        in cache, which measured 15-20 % faster than one exponent at a time.
        """
        es = [int(e) for e in exponents]
        if not es:
            return []
        if min(es) < 0:
            raise ProtocolError("fixed-base exponent must be non-negative")
        top = max(e.bit_length() for e in es)
        if top > self.max_bits:
            return [self.pow(e) for e in es]
        out: list[Any] = []
        for s in range(0, len(es), BATCH):
            out.extend(self._pow_batch(es[s : s + BATCH], top))
        return out

    def _pow_batch(self, es: list[int], top: int) -> list[Any]:
        w = self.window_bits
        k = max(1, -(-top // w))
        self.build(k)
        nb = (k * w + 7) // 8
        raw = np.frombuffer(b"".join(e.to_bytes(nb, "little") for e in es), np.uint8)
        raw = raw.reshape(len(es), nb)
        if w == 8:
            digits = raw.astype(np.int64)
        else:
            bits = np.unpackbits(raw, axis=1, bitorder="little")[:, : k * w]
            digits = bits.reshape(len(es), k, w).astype(np.int64) @ (
                np.int64(1) << np.arange(w, dtype=np.int64)
            )
        m = self.modulus
        accs: list[Any] = [None] * len(es)
        for i in range(k):
            row = self._rows[i]
            accs = [
                (row[d] if a is None else a * row[d] % m) if d else a
                for a, d in zip(accs, digits[:, i].tolist(), strict=True)
            ]
        one = gmpy2.mpz(1)
        return [one if a is None else a for a in accs]
