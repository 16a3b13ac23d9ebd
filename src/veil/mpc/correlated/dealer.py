"""PRG-compressed correlated randomness from a trusted dealer (helper) party.

Threat model
------------
The dealer is *trusted*: semi-honest and never colluding with any computing party. It learns
nothing about the inputs (it receives no message that depends on them) but it knows every
mask, so a dealer that colludes with one party breaks privacy. In ``semi2k`` the dealer is an
explicit separate party of the cluster; ``aby3`` reuses this code with its third party as the
helper of a two-party sub-computation between the other two (secure under honest majority,
which aby3 assumes anyway).

Compression
-----------
At setup the dealer sends party ``i`` a 16-byte AES seed ``s_i``. Every correlated value is then
drawn from the parties' PRG streams, and only party 0's share of the *derived* components is sent
(``c_0 = a·b − Σ_{i>0} c_i`` for a triple): never one array per party. Both sides must
request the same sizes in the same order (SPMD program order).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from veil.core.prg import SEED_BYTES, Prg, new_seed
from veil.core.ringmatmul import ring_matmul
from veil.errors import ConfigError
from veil.mpc.comm import Comm

Shape = tuple[int, ...]
Arr = np.ndarray[Any, Any]

_LOW63 = np.uint64((1 << 63) - 1)


class DealerSource:
    """One party's end of a dealer: the dealer itself, or a computing party.

    Parameters
    ----------
    comm:
        Messaging of the device.
    parties:
        The computing parties, in share order (party 0 receives the corrections).
    dealer:
        The dealer's name (not in ``parties``).
    key:
        Message key of the seed distribution (every participant must pass the same one).
    """

    def __init__(self, comm: Comm, parties: Sequence[str], dealer: str, key: str) -> None:
        if dealer in parties:
            raise ConfigError(f"the dealer {dealer!r} must not be one of the computing parties")
        self.comm = comm
        self.parties = tuple(parties)
        self.dealer = dealer
        self.is_dealer = comm.party == dealer
        self.rank = self.parties.index(comm.party) if comm.party in self.parties else None
        self._prgs: list[Prg] = []
        self._own = Prg(new_seed())
        if self.is_dealer:
            for p in self.parties:
                seed = new_seed()
                comm.send(p, key, np.frombuffer(seed, dtype=np.uint8))
                self._prgs.append(Prg(seed))
        elif self.rank is not None:
            seed_arr = comm.recv(dealer, key, (SEED_BYTES,), np.uint8)
            self._prgs.append(Prg(seed_arr.tobytes()))

    # ------------------------------------------------------------ helpers
    @property
    def idle(self) -> bool:
        """True at parties that are neither the dealer nor a computing party."""
        return not self.is_dealer and self.rank is None

    def _draw(self, shape: Shape, dtype: Any = np.uint64) -> list[Arr]:
        """Dealer: one draw from every party's stream. Party: one draw from its own stream."""
        return [g.random_words(shape, dtype) for g in self._prgs]

    def _correct(self, key: str, total: Arr, rest: list[Arr], *, xor: bool = False) -> None:
        """Dealer: send party 0 its share ``total − Σ rest`` (or XOR); ``total`` is consumed."""
        c0 = total
        for s in rest:
            if xor:
                c0 ^= s
            else:
                c0 -= s
        self.comm.send(self.parties[0], key, c0)

    @staticmethod
    def _sum(parts: list[Arr]) -> Arr:
        """Sum of freshly drawn arrays (accumulates into the first one)."""
        out = parts[0]
        for p in parts[1:]:
            out += p
        return out

    @staticmethod
    def _xor(parts: list[Arr]) -> Arr:
        """XOR of freshly drawn arrays (accumulates into the first one)."""
        out = parts[0]
        for p in parts[1:]:
            out ^= p
        return out

    def _derived(self, key: str, shape: Shape, dtype: Any = np.uint64) -> Arr | None:
        """Party: its share of a derived component (received at party 0, drawn elsewhere)."""
        if self.rank == 0:
            return self.comm.recv(self.dealer, key, shape, dtype)
        return self._prgs[0].random_words(shape, dtype)

    # ------------------------------------------------------ correlations
    def beaver(self, key: str, sa: Shape, sb: Shape, sc: Shape, matmul: bool) -> tuple[Arr, ...]:
        """Shares of ``(a, b, c)`` with ``c = a·b`` (elementwise) or ``a @ b`` (``matmul``)."""
        if self.idle:
            return ()
        if self.is_dealer:
            a_parts, b_parts = self._draw(sa), self._draw(sb)
            c_rest = [g.random_words(sc, np.uint64) for g in self._prgs[1:]]
            a, b = self._sum(a_parts), self._sum(b_parts)
            c = ring_matmul(a, b) if matmul else a * b
            self._correct(key, c, c_rest)
            return ()
        a_i = self._prgs[0].random_u64(sa)
        b_i = self._prgs[0].random_u64(sb)
        c_i = self._derived(key, sc)
        assert c_i is not None
        return a_i, b_i, c_i

    def and_triple(self, key: str, shape: Shape, dtype: Any) -> tuple[Arr, ...]:
        """XOR shares of ``(a, b, c)`` with ``c = a & b`` on words of ``dtype``."""
        if self.idle:
            return ()
        if self.is_dealer:
            a_parts, b_parts = self._draw(shape, dtype), self._draw(shape, dtype)
            c_rest = [g.random_words(shape, dtype) for g in self._prgs[1:]]
            self._correct(key, self._xor(a_parts) & self._xor(b_parts), c_rest, xor=True)
            return ()
        a_i = self._prgs[0].random_words(shape, dtype)
        b_i = self._prgs[0].random_words(shape, dtype)
        c_i = self._derived(key, shape, dtype)
        assert c_i is not None
        return a_i, b_i, c_i

    def and_triple_shared(self, key: str, n: int, dtype: Any) -> tuple[Arr, ...]:
        """XOR shares of ``(a, b, c)`` with ``a`` of ``n`` words, ``b`` and ``c`` of ``2n`` and
        ``c = [a & b[:n], a & b[n:]]`` (an AND gate whose first operand is used twice)."""
        if self.idle:
            return ()
        if self.is_dealer:
            a = self._xor(self._draw((n,), dtype))
            b = self._xor(self._draw((2 * n,), dtype))
            b[:n] &= a
            b[n:] &= a
            self._correct(
                key, b, [g.random_words((2 * n,), dtype) for g in self._prgs[1:]], xor=True
            )
            return ()
        a_i = self._prgs[0].random_words((n,), dtype)
        b_i = self._prgs[0].random_words((2 * n,), dtype)
        c_i = self._derived(key, (2 * n,), dtype)
        assert c_i is not None
        return a_i, b_i, c_i

    def _pair_parts(self, r: Arr, bits: int, out: Arr) -> None:
        """Write ``(r mod 2^63) >> bits`` and ``msb(r)`` (flattened) into the halves of ``out``."""
        n = r.size
        flat = r.reshape(-1)
        np.bitwise_and(flat, _LOW63, out=out[:n])
        out[:n] >>= np.uint64(bits)
        np.right_shift(flat, np.uint64(63), out=out[n:])

    def trunc_pair(
        self, key: str, shape: Shape, bits: int, *, private_r: bool = False
    ) -> tuple[Arr, ...]:
        """Shares of ``(r, (r mod 2^63) >> bits, msb(r))`` for uniform ``r``.

        Parties get ``(r_i, rt_i, m_i)``; the dealer gets ``(r,)``. With ``private_r`` the dealer
        draws ``r`` from its own generator and parties get only ``(rt_i, m_i)`` (aby3's helper
        adds ``r`` to its own message, so nobody else needs shares of it).
        """
        if self.idle:
            return ()
        n = math.prod(shape)
        if self.is_dealer:
            r = self._own.random_u64(shape) if private_r else self._sum(self._draw(shape))
            both = np.empty(2 * n, dtype=np.uint64)
            self._pair_parts(r, bits, both)
            self._correct(key, both, [g.random_u64(2 * n) for g in self._prgs[1:]])
            return (r,)
        r_i = () if private_r else (self._prgs[0].random_u64(shape),)
        mine = self._derived(key, (2 * n,))
        assert mine is not None
        return (*r_i, mine[:n].reshape(shape), mine[n:].reshape(shape))

    def private_random(self, shape: Shape) -> Arr:
        """Dealer: uniform ring elements from its private generator (no party can derive them)."""
        return self._own.random_u64(shape)

    def send_trunc_pair(self, key: str, r: Arr, bits: int) -> None:
        """Dealer: the correlations of ``trunc_pair(..., private_r=True)`` for a given ``r``
        (lets the caller send its ``r``-masked message first)."""
        n = r.size
        both = np.empty(2 * n, dtype=np.uint64)
        self._pair_parts(r, bits, both)
        self._correct(key, both, [g.random_u64(2 * n) for g in self._prgs[1:]])

    def beaver_trunc(
        self, key: str, sa: Shape, sb: Shape, sc: Shape, matmul: bool, bits: int
    ) -> tuple[Arr, ...]:
        """A Beaver triple whose product is pre-masked: parties get ``(a_i, b_i, c_i)`` with
        ``Σ c_i = a·b + r`` (or ``a @ b + r``) for a uniform ``r`` only the dealer knows.

        After the Beaver round the parties hold shares of ``x·y + r`` directly and open it for
        the truncation; the matching pair comes from :meth:`mask_pair` (sent by the dealer right
        after ``c_0``, so party 0 can start its Beaver round before the pair is ready).
        """
        if self.idle:
            return ()
        if self.is_dealer:
            a, b = self._sum(self._draw(sa)), self._sum(self._draw(sb))
            self._send_masked_product(key, ring_matmul(a, b) if matmul else a * b, bits)
            return ()
        a_i = self._prgs[0].random_u64(sa)
        b_i = self._prgs[0].random_u64(sb)
        c_i = self._derived(key + "/c", sc)
        assert c_i is not None
        return a_i, b_i, c_i

    def _send_masked_product(self, key: str, c: Arr, bits: int) -> None:
        """Dealer: send party 0 its shares of ``c + r`` and of the truncation pair of ``r``."""
        sc = c.shape
        r = self._own.random_u64(sc)
        c += r
        self._correct(key + "/c", c, [g.random_u64(sc) for g in self._prgs[1:]])
        n = r.size
        both = np.empty(2 * n, dtype=np.uint64)
        self._pair_parts(r, bits, both)
        self._correct(key + "/p", both, [g.random_u64(2 * n) for g in self._prgs[1:]])

    def fixed_mask(self, shape: Shape) -> tuple[Arr, ...]:
        """A uniform mask ``A`` meant to be reused: the dealer gets ``(A,)``, party ``i`` its
        share ``(A_i,)`` (drawn from its stream; nothing is sent)."""
        if self.idle:
            return ()
        if self.is_dealer:
            return (self._sum(self._draw(shape)),)
        return (self._prgs[0].random_u64(shape),)

    def beaver_trunc_fixed(
        self, key: str, a: Arr | None, sb: Shape, sc: Shape, bits: int
    ) -> tuple[Arr, ...]:
        """:meth:`beaver_trunc` for a matrix product whose left mask is a reused ``A``
        (:meth:`fixed_mask`, here already sliced/transposed: ``a`` at the dealer, ``None``
        at parties): fresh ``b`` and ``r``, ``Σ c_i = a @ b + r``. Parties get ``(b_i, c_i)``;
        the pair follows with :meth:`mask_pair` (same ``key``)."""
        if self.idle:
            return ()
        if self.is_dealer:
            if a is None:
                raise ConfigError("the dealer needs its mask A for a fixed-operand triple")
            b = self._sum(self._draw(sb))
            self._send_masked_product(key, ring_matmul(a, b), bits)
            return ()
        b_i = self._prgs[0].random_u64(sb)
        c_i = self._derived(key + "/c", sc)
        assert c_i is not None
        return b_i, c_i

    def mask_pair(self, key: str, sc: Shape) -> tuple[Arr, ...]:
        """Party: shares ``(rt_i, m_i)`` of ``((r mod 2^63) >> bits, msb(r))`` for the ``r`` of
        the preceding :meth:`beaver_trunc` with the same ``key``."""
        if self.idle or self.is_dealer:
            return ()
        n = math.prod(sc)
        both = self._derived(key + "/p", (2 * n,))
        assert both is not None
        return both[:n].reshape(sc), both[n:].reshape(sc)

    def masked_bits(
        self, key: str, shape: Shape, layout: Callable[[Arr], Arr] | None = None
    ) -> tuple[Arr, ...]:
        """Arithmetic shares of a uniform ``r`` and XOR shares of ``layout(r)`` (its bits,
        possibly permuted by the public bit permutation ``layout``)."""
        if self.idle:
            return ()
        if self.is_dealer:
            r = self._sum(self._draw(shape))
            rest = [g.random_u64(shape) for g in self._prgs[1:]]
            self._correct(key, layout(r) if layout is not None else r, rest, xor=True)
            return ()
        r_i = self._prgs[0].random_u64(shape)
        rb_i = self._derived(key, shape)
        assert rb_i is not None
        return r_i, rb_i

    def bit_pair(self, key: str, shape: Shape) -> tuple[Arr, ...]:
        """XOR shares (uint8 0/1) and arithmetic shares of one uniform random bit per element."""
        if self.idle:
            return ()
        if self.is_dealer:
            bparts = [p & np.uint8(1) for p in self._draw(shape, np.uint8)]
            bit = self._xor(bparts).astype(np.uint64)
            rest = [g.random_u64(shape) for g in self._prgs[1:]]
            self._correct(key, bit, rest)
            return ()
        b_i = self._prgs[0].random_words(shape, np.uint8) & np.uint8(1)
        a_i = self._derived(key, shape)
        assert a_i is not None
        return b_i, a_i


def finish_trunc_pair(c: Arr, rt: Arr, m: Arr, bits: int, *, leader: bool) -> Arr:
    """A party's share of ``x >> bits`` from the opened ``c = x + r + 2^62`` and its shares
    ``(rt, m)`` of a truncation pair (:meth:`DealerSource.trunc_pair`, ``mask_pair``).

    ``k = m·(1 − 2·msb(c))`` (``+ msb(c)`` at the leader) is a share of ``msb(r) xor msb(c)``;
    the share is ``k·2^(63−bits) − rt``, and the leader adds the public part
    ``((c mod 2^63) >> bits) − 2^(62−bits)``. ``c`` is consumed (modified in place).
    """
    msb_c = c >> np.uint64(63)
    k = np.left_shift(msb_c, np.uint64(1))
    np.subtract(np.uint64(1), k, out=k)
    k *= m
    if leader:
        k += msb_c
    k <<= np.uint64(63 - bits)
    k -= rt
    if leader:
        c &= _LOW63
        c >>= np.uint64(bits)
        c -= np.uint64(1 << (62 - bits))
        k += c
    out: Arr = k
    return out


__all__ = ["DealerSource", "finish_trunc_pair"]
