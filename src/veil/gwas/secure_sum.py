"""Sums-only aggregation among the sites of a federated GWAS: peer-to-peer pairwise masking.

Every pooled decision of :func:`veil.gwas.session.run_site` (A1, QC, each Newton step) is taken
identically at every site, so *every site* needs each sum; there is no aggregator party.
:class:`SecureSum` is the ``aggregate(key, array) -> sum over sites`` of a site in a running job.

Protocol (N sites, in the order given, the same at every site)
--------------------------------------------------------------
*Set-up, once per job.* Each site draws an X25519 key pair and sends its public key to every
other site over the job's links (mutual TLS: the channel authenticates the sender). Sites ``i``
and ``j`` derive one pairwise seed ``s_ij = HKDF-SHA256(X25519(sk_i, pk_j), job, i, j)``
(:func:`veil.fl.secagg.masks.agree`).

*Each aggregate* with key ``K`` (the k-th of the job): site ``i`` encodes its float64 array
``x_i`` into ring words ``enc(x_i)`` (below) and sends to every other site

    y_i = enc(x_i) + Σ_{j>i} PRG(s_ij, K, k) − Σ_{j<i} PRG(s_ij, K, k)   (mod 2^64)

where ``PRG`` is the AES-256-CTR keystream of the seed (:func:`veil.fl.secagg.masks.expand_mask`)
in a counter domain bound to ``(job, k, K)``, so no mask is ever reused. Every site adds its own
``y_i`` and the ``N − 1`` it received: the masks cancel and ``Σ enc(x_i)`` remains, which it
decodes. Cost per aggregate of ``n`` values: one message of ``8·L·n`` bytes (``L`` limbs per
value, below: 16 bytes per value for up to 15 sites, 24 beyond; plus a frame header) to each of
the ``N − 1`` peers; one round.

Encoding (exact sums with headroom)
-----------------------------------
A 64-bit fixed point has not enough range × precision for ``X'X``, ``y'y`` and Hessians over
10^5 subjects. Each value ``v`` becomes the integer ``a = rint(v · 2^56)`` (|v| < 2^62, so
|a| < 2^118: 62 integer bits and 56 fraction bits, 118 bits of range × precision plus sign and
headroom) written in 120-bit two's complement as ``L`` limbs of ``b`` bits (``L · b = 120``),
each in its own ``uint64`` ring word: the lower limbs unsigned in ``[0, 2^b)``, the top limb
signed in ``[−2^(118 − (L−1)·b), 2^(118 − (L−1)·b))``. The layout is fixed by the number of
sites ``N`` (:func:`layout_for`, the same at every site):

* ``NARROW``, two 60-bit limbs (16 bytes per value), for ``N ≤ 15``. The sum of the ``lo``
  limbs is at most ``N·(2^60 − 1)``; decoding adds ``2^59`` to it (balanced carry, below), and
  ``N·(2^60 − 1) + 2^59 < 2^64`` holds exactly for ``N ≤ 15`` (at ``N = 16`` it wraps). The
  ``hi`` limbs lie in ``[−2^58, 2^58)``: their sum plus the carry (≤ N) stays below 2^63 in
  magnitude for ``N ≤ 31``. So for ``N ≤ 15`` no limb sum wraps and the ring sum of each limb
  is the integer sum. ``tests/unit/gwas/test_secure_sum.py`` sums 15 encodings at the extremes
  exactly and shows 16 failing.
* ``WIDE``, three 40-bit limbs (24 bytes per value), for ``16 ≤ N ≤ 2^23`` (``lo``/``mid`` sums
  ``< 2^23·2^40 + 2^39 + carry``, ``hi`` in ``[−2^38, 2^38)``: far from 2^63).

Both keep the same 120-bit integer, hence the same range and precision. The split is done on
``|a|`` with float arithmetic on powers of two (exact: the limbs are bit fields of its
mantissa), then cast to integers, where the sign is applied (two's complement with carries).
Decoding carries each limb into the next with balanced remainders in ``[−2^(b−1), 2^(b−1))``
(no cancellation) and evaluates ``(Σtop·2^((L−1)·b) + … + Σlo) · 2^-56`` in float64: integers
(counts) are exact, every sum is within a few float64 ulps of the exact sum of the quantised
values (quantum 2^-56 ≈ 1.4e-17 per site and value). A NaN or infinite value, or one with
|v| ≥ 2^62, raises :class:`~veil.errors.DataError` at the site holding it, naming the site and
the aggregate, before anything is sent; the job's link abort then stops the other sites at once.

Counts (exact integers, packed)
-------------------------------
Non-negative integer statistics (genotype counts, per-variant numbers of subjects) whose *sums*
are all at most a public bound ``B`` (the pooled number of subjects, itself a secure sum taken
first) skip the fixed point: with ``b = bit_length(B)`` bits per count, ``64 // b`` counts share
one ring word as bit fields (1,000 subjects: 10 bits, 6 counts per word; 10^5: 17 bits, 3). Every
field of every site is in ``[0, B]`` (checked before sending, else ``DataError``) and the field
sums are at most ``B < 2^b``, so no field carries into the next and no word wraps: the ring sum
of the packed words is the packing of the sums. Masking is the same (uniform words mod 2^64),
so the same threat model holds; only the sums are revealed (:meth:`SecureSum.counts`).

Threat model and what is revealed
---------------------------------
* Semi-honest sites (they follow the protocol). Every site learns the sums — and nothing else
  about another site's arrays: a coalition of up to ``N − 2`` sites sees masked vectors that
  are uniformly random given the sum and its own inputs (at least two honest sites share a
  pairwise mask unknown to the coalition).
* **Two sites**: the sum minus one's own arrays *is* the other site's arrays. :class:`SecureSum`
  refuses ``N = 2`` with a :class:`~veil.errors.ConfigError` unless ``allow_two_sites=True``
  (CLI ``--allow-two-sites``).
* The transport (and anyone on the network, on top of TLS) sees only masked words.
* No dropout tolerance: a site that fails aborts the study (its peers get a
  :class:`~veil.errors.PeerError` at once); results always equal the pooled analysis.
* Every aggregate is opened through ``ctx.reveal`` (kind ``"secure-sum"``, tags ``gwas.*``):
  each site's reveal policy decides and its audit ledger records it.
* Not covered: malicious sites (a site may send arbitrary words and bias the sum); what the
  sums themselves disclose (see :mod:`veil.gwas.session` and ``docs/gwas.md``).

Everything received is validated (dtype, shape, byte size) and a bad message raises
:class:`~veil.errors.ProtocolError` naming the sender; arrays travel as wire frames, never
pickled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from veil.core.wire import encode_value
from veil.errors import ConfigError, DataError, ProtocolError
from veil.fl.secagg import masks
from veil.runtime.context import Context

F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]

#: fractional bits of the fixed-point encoding
SCALE_BITS = 56
#: largest magnitude a value may have (exclusive): |rint(v * 2^56)| < 2^118
MAX_ABS = 2.0**62
#: the kind recorded in the ledger for these reveals
REVEAL_KIND = "secure-sum"

_SCALE = 2.0**SCALE_BITS


@dataclass(frozen=True)
class Layout:
    """How a value's 120-bit two's-complement integer is cut into ring words (see module).

    Attributes
    ----------
    limb_bits:
        Bits per limb ``b``; the lower limbs are unsigned in ``[0, 2^b)``, the top one signed.
    n_limbs:
        Number of limbs ``L`` (``L · b = 120``).
    max_sites:
        Most sites whose limb sums cannot wrap (derived in the module docstring).
    """

    limb_bits: int
    n_limbs: int
    max_sites: int

    @property
    def words_per_value(self) -> int:
        """Ring words (8 bytes each) sent per value."""
        return self.n_limbs


#: two 60-bit limbs (16 bytes per value): up to 15 sites
NARROW = Layout(limb_bits=60, n_limbs=2, max_sites=15)
#: three 40-bit limbs (24 bytes per value): up to 2^23 sites
WIDE = Layout(limb_bits=40, n_limbs=3, max_sites=2**23)
#: most sites that can be summed at all
MAX_SITES = WIDE.max_sites


def layout_for(n_sites: int) -> Layout:
    """The most compact layout whose sums over ``n_sites`` sites cannot wrap."""
    if n_sites < 1:
        raise ConfigError(f"secure summation needs at least one site, got {n_sites}")
    for layout in (NARROW, WIDE):
        if n_sites <= layout.max_sites:
            return layout
    raise ConfigError(f"at most {MAX_SITES} sites can be summed without overflow")


def encode(values: npt.ArrayLike, layout: Layout = WIDE, *, where: str = "value") -> U64:
    """Fixed-point limbs of ``values``: ``(L, n)`` uint64 rows, lowest limb first (see module).

    Raises
    ------
    DataError
        A value is NaN or infinite, or |v| >= 2^62 (``where`` names whose and which).
    """
    v = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(v)
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where} holds {int(bad.sum())} NaN/infinite value(s) (first at index {first}); "
            "nothing was sent"
        )
    big = np.abs(v) >= MAX_ABS
    if np.any(big):
        first = int(np.flatnonzero(big)[0])
        raise DataError(
            f"{where} holds {int(big.sum())} value(s) of magnitude >= 2^62 (first at index "
            f"{first}: {v[first]:g}), beyond the secure sum's range; nothing was sent"
        )
    b, n_limbs = layout.limb_bits, layout.n_limbs
    a = v * _SCALE  # exact scaling by a power of two, then rounding to an integer
    np.rint(a, out=a)
    neg = a < 0
    # split |a| into b-bit limbs with float steps on powers of two (each exact: the limbs are
    # bit fields of |a|'s 53-bit mantissa), then apply the sign in integer arithmetic
    np.abs(a, out=a)
    out = np.empty((n_limbs, v.size), dtype=np.uint64)
    limbs = [out[k].view(np.int64) for k in range(n_limbs)]
    for k in range(n_limbs - 1, 0, -1):
        step = 2.0 ** (k * b)
        digit = np.floor(a / step)
        a -= digit * step
        limbs[k][:] = digit
    limbs[0][:] = a
    for limb in limbs:
        np.negative(limb, out=limb, where=neg)
    shift = np.int64(b)
    carry = np.empty_like(limbs[0])
    for k in range(n_limbs - 1):  # arithmetic shift: floor division by 2^b
        np.right_shift(limbs[k], shift, out=carry)
        limbs[k] -= carry << shift
        limbs[k + 1] += carry
    return out


def decode(limb_sums: U64, layout: Layout = WIDE) -> F64:
    """Float64 values of ``(L, n)`` limb sums (mod 2^64) of at most ``layout.max_sites``
    encodings."""
    n_limbs, b = layout.n_limbs, layout.limb_bits
    if limb_sums.ndim != 2 or limb_sums.shape[0] != n_limbs or limb_sums.dtype != np.uint64:
        raise ProtocolError(f"limb sums must be ({n_limbs}, n) uint64, got {limb_sums.shape}")
    shift = np.uint64(b)
    half = np.uint64(1 << (b - 1))
    # balanced carries: remainders in [-2^(b-1), 2^(b-1)) so the float evaluation cannot cancel
    rest: list[npt.NDArray[np.int64]] = []
    limb = limb_sums[0]
    for k in range(n_limbs - 1):
        c = (limb + half) >> shift
        rest.append((limb - (c << shift)).view(np.int64))
        limb = limb_sums[k + 1] + c
    top = limb.view(np.int64)
    low = rest[0].astype(np.float64)
    for k in range(1, n_limbs - 1):
        low = rest[k].astype(np.float64) * 2.0 ** (k * b) + low
    total = top.astype(np.float64) * 2.0 ** ((n_limbs - 1) * b) + low
    out: F64 = total / _SCALE
    return out


def count_bits(bound: int) -> int:
    """Bits per packed count when every sum is at most ``bound`` (see *Counts*, module)."""
    if not isinstance(bound, int | np.integer) or bound < 0 or int(bound).bit_length() > 63:
        raise ConfigError(f"a count bound must be an integer in [0, 2^63), got {bound!r}")
    return max(1, int(bound).bit_length())


def pack_counts(values: npt.ArrayLike, bound: int, *, where: str = "counts") -> U64:
    """Non-negative integer counts packed ``64 // b`` to a ring word, ``b`` bits each, where
    ``b = bound.bit_length()`` and ``bound`` bounds every *sum over the sites* (see module).

    Raises
    ------
    DataError
        A value is not an integer in ``[0, bound]`` (``where`` names whose and which).
    """
    v = np.asarray(values)
    flat = v.reshape(-1)
    if flat.dtype.kind == "f":
        ok = np.isfinite(flat) & (flat == np.rint(flat))
    elif flat.dtype.kind in "iu":
        ok = np.ones(flat.shape, dtype=np.bool_)
    else:
        raise DataError(f"{where}: counts must be integers, got dtype {flat.dtype}")
    ok &= (flat >= 0) & (flat <= bound)
    if not np.all(ok):
        first = int(np.flatnonzero(~ok)[0])
        raise DataError(
            f"{where} holds {int((~ok).sum())} value(s) that are not integer counts in "
            f"[0, {bound}] (first at index {first}: {flat[first]!r}); nothing was sent"
        )
    bits = count_bits(bound)
    per = 64 // bits
    words = -(-flat.size // per)
    padded = np.zeros(words * per, dtype=np.uint64)
    padded[: flat.size] = flat
    fields = padded.reshape(words, per)
    out = fields[:, 0].copy()
    for k in range(1, per):
        out |= fields[:, k] << np.uint64(k * bits)
    return out


def unpack_counts(words: U64, size: int, bound: int) -> npt.NDArray[np.int64]:
    """The ``size`` counts of packed words (or of their ring sum, see :func:`pack_counts`)."""
    bits = count_bits(bound)
    per = 64 // bits
    if words.ndim != 1 or words.dtype != np.uint64 or words.size != -(-size // per):
        raise ProtocolError(
            f"packed counts must be ({-(-size // per)},) uint64 for {size} counts, got "
            f"{words.shape} {words.dtype}"
        )
    mask = np.uint64((1 << bits) - 1)
    fields = np.empty((words.size, per), dtype=np.uint64)
    for k in range(per):
        np.bitwise_and(words >> np.uint64(k * bits), mask, out=fields[:, k])
    return fields.reshape(-1)[:size].astype(np.int64)


def quantise(values: npt.ArrayLike) -> F64:
    """What :func:`encode` keeps of each value: ``rint(v · 2^56) · 2^-56`` (for tests/docs)."""
    out: F64 = np.rint(np.asarray(values, dtype=np.float64) * _SCALE) / _SCALE
    return out


def tag_of(key: str) -> str:
    """The reveal tag of an aggregate key: ``gwas/logistic/3`` -> ``gwas.logistic.iter3``."""
    parts = [p for p in key.split("/") if p]
    if not parts or parts[0] != "gwas":
        parts.insert(0, "gwas")
    named = [f"iter{p}" if p.isdigit() else re.sub(r"[^A-Za-z0-9_-]", "_", p) for p in parts]
    return ".".join(named)


class SecureSum:
    """One site's sums-only channel: ``secure(key, array)`` returns the sum over all sites.

    Create it at every site in the same program order (SPMD); the constructor runs the key
    set-up with the other sites. See the module docstring for protocol and threat model.

    Parameters
    ----------
    ctx:
        The site's job context (its party must be one of ``sites``).
    sites:
        The sites taking part, in the same order everywhere (this order fixes mask signs).
    allow_two_sites:
        Accept ``N = 2``, where each site learns the other's arrays from the sum.
    timeout:
        Longest wait for a peer's message (the link's default when ``None``).

    Raises
    ------
    ConfigError
        Fewer than two sites, duplicates, this party not a site, a site not in the cluster,
        more than 2^23 sites, or two sites without ``allow_two_sites``.
    """

    def __init__(
        self,
        ctx: Context,
        sites: Sequence[str],
        *,
        allow_two_sites: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.sites = check_sites(sites, allow_two_sites=allow_two_sites)
        unknown = [s for s in self.sites if s not in ctx.cluster]
        if unknown:
            raise ConfigError(f"sites {unknown} are not parties of the cluster {list(ctx.cluster)}")
        if ctx.party not in self.sites:
            raise ConfigError(f"party {ctx.party!r} is not one of the sites {list(self.sites)}")
        self.ctx = ctx
        self.me = ctx.party
        self.timeout = timeout
        self.peers = tuple(s for s in self.sites if s != self.me)
        self._index = {s: i for i, s in enumerate(self.sites)}
        #: the limb layout, fixed by the number of sites (the same at every site)
        self.layout = layout_for(len(self.sites))
        self._count = 0
        self._session = ctx.next_key(f"{ctx.job_id}.gwas.secure-sum")
        self._seeds = self._agree_seeds()
        #: values summed so far (over all aggregates) and aggregates run
        self.values_summed = 0
        self.aggregates = 0

    def _agree_seeds(self) -> dict[str, bytes]:
        sk = masks.new_private_key()
        mine = masks.public_bytes(sk)
        key = f"{self._session}/keys"
        for peer in self.peers:
            self.ctx.link.send_bytes(peer, key, mine)
        seeds: dict[str, bytes] = {}
        for peer in self.peers:
            pk = self.ctx.link.recv_bytes(peer, key, timeout=self.timeout)
            if len(pk) != masks.KEY_BYTES:
                raise ProtocolError(
                    f"site {peer!r} sent a public key of {len(pk)} bytes, expected "
                    f"{masks.KEY_BYTES}"
                )
            lo, hi = sorted((self.me, peer), key=self._index.__getitem__)
            info = encode_value(["veil-gwas/v1/pair", self._session, lo, hi])
            seeds[peer] = masks.agree(sk, pk, info, peer=peer)
        return seeds

    def __call__(self, key: str, values: F64) -> F64:
        """The sum of ``values`` over all sites (see :meth:`aggregate`)."""
        return self.aggregate(key, values)

    def aggregate(self, key: str, values: F64) -> F64:
        """Reveal the sum over all sites of ``values`` (same key and shape at every site) to
        every site, through ``ctx.reveal`` (tag :func:`tag_of` ``key``, kind ``secure-sum``)."""
        arr = np.ascontiguousarray(values, dtype=np.float64)
        value = MaskedSum(self, key, arr)
        out = self.ctx.reveal(value, to=self.ctx.parties(*self.sites), tag=tag_of(key))
        if not isinstance(out, np.ndarray):
            raise ProtocolError(f"secure sum {key!r} returned no array at {self.me!r}")
        return out

    def counts(self, key: str, values: npt.NDArray[np.int64], bound: int) -> npt.NDArray[np.int64]:
        """Reveal the sum over all sites of non-negative integer ``values`` whose sums are all
        at most ``bound`` (public, the same at every site: e.g. the pooled number of subjects),
        packed several to a ring word (:func:`pack_counts`); exact."""
        arr = np.ascontiguousarray(values)
        value = MaskedSum(self, key, arr, bound=int(bound))
        out = self.ctx.reveal(value, to=self.ctx.parties(*self.sites), tag=tag_of(key))
        if not isinstance(out, np.ndarray):
            raise ProtocolError(f"secure sum {key!r} returned no array at {self.me!r}")
        return out

    def exchange(self, key: str, values: npt.NDArray[Any], bound: int | None = None) -> Any:
        """Run one masked exchange (called by :meth:`MaskedSum.reveal_to`); returns the sum.

        ``bound`` None: float64 values in fixed-point limbs; else integer counts packed with
        that bound on their sums."""
        self._count += 1
        n = int(values.size)
        where = f"site {self.me!r}: aggregate {key!r}"
        if bound is None:
            y = encode(values, self.layout, where=where).reshape(-1)
        else:
            y = pack_counts(values, bound, where=where)
        domain = encode_value(["veil-gwas/v1/mask", self._session, self._count, key])
        for peer, seed in self._seeds.items():
            mask = masks.expand_mask(seed, y.size, np.dtype(np.uint64), domain)
            if self._index[peer] > self._index[self.me]:
                y += mask
            else:
                y -= mask
        msg = f"{self._session}/{self._count}"
        for peer in self.peers:
            self.ctx.link.send_array(peer, msg, y)
        # y may still be on its way out: never modify it; the first received vector gives a
        # fresh buffer for the total (no copy of y)
        total: U64 | None = None
        for peer in self.peers:
            got = self.ctx.link.recv_array(peer, msg, timeout=self.timeout)
            check_masked(got, y.size, peer=peer, key=key)
            if total is None:
                total = got + y
            else:
                total += got
        if total is None:  # pragma: no cover - check_sites guarantees a peer
            raise ProtocolError("a secure sum needs at least one other site")
        self.values_summed += n
        self.aggregates += 1
        if bound is not None:
            return unpack_counts(total, n, bound).reshape(values.shape)
        return decode(total.reshape(self.layout.n_limbs, n), self.layout).reshape(values.shape)


def check_masked(got: Any, size: int, *, peer: str, key: str) -> None:
    """Refuse a masked vector that is not ``(size,)`` uint64 (ProtocolError naming ``peer``)."""
    if not isinstance(got, np.ndarray):
        raise ProtocolError(f"site {peer!r} sent no array for aggregate {key!r}")
    if got.dtype != np.uint64 or got.shape != (size,) or got.nbytes != 8 * size:
        raise ProtocolError(
            f"site {peer!r} sent a masked vector of shape {got.shape}, dtype {got.dtype} "
            f"({got.nbytes} bytes) for aggregate {key!r}; expected ({size},) uint64 "
            f"({8 * size} bytes): the sites disagree on the aggregate (different inputs or "
            "options?)"
        )


def check_sites(sites: Sequence[str], *, allow_two_sites: bool) -> tuple[str, ...]:
    """Validate a site list for secure summation (see :class:`SecureSum`)."""
    names = tuple(sites)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"secure summation needs at least two distinct sites, got {list(names)}")
    if len(names) > MAX_SITES:
        raise ConfigError(f"at most {MAX_SITES} sites can be summed without overflow")
    if len(names) == 2 and not allow_two_sites:
        raise ConfigError(
            f"only two sites ({names[0]}, {names[1]}): each would learn the other's statistics "
            "exactly (the sum minus its own); add a third site, or accept this with "
            "--allow-two-sites (allow_two_sites=True)"
        )
    return names


class MaskedSum:
    """A site's contribution to one aggregate, opened with ``ctx.reveal`` (device-like value).

    ``reveal_to(all sites)`` runs the masked exchange and returns the sum at every site.
    """

    reveal_kind = REVEAL_KIND

    def __init__(
        self, owner: SecureSum, key: str, values: npt.NDArray[Any], *, bound: int | None = None
    ) -> None:
        self._owner = owner
        self.key = key
        self._values = values
        self._bound = bound

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self._values.shape)

    @property
    def dtype(self) -> str:
        return "float64" if self._bound is None else "int64"

    def reveal_to(self, recipients: tuple[str, ...]) -> Any:
        """Run the exchange; every site (all must be recipients) gets the sum."""
        if set(recipients) != set(self._owner.sites):
            raise ProtocolError(
                f"a secure sum is revealed to all sites {list(self._owner.sites)}, "
                f"not {list(recipients)}"
            )
        return self._owner.exchange(self.key, self._values, self._bound)


__all__ = [
    "MAX_ABS",
    "MAX_SITES",
    "NARROW",
    "REVEAL_KIND",
    "WIDE",
    "Layout",
    "MaskedSum",
    "SecureSum",
    "check_sites",
    "count_bits",
    "decode",
    "encode",
    "layout_for",
    "pack_counts",
    "quantise",
    "tag_of",
    "unpack_counts",
]
