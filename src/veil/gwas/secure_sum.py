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
decodes. Cost per aggregate of ``n`` values: one message of ``24·n`` bytes (plus a frame header)
to each of the ``N − 1`` peers; one round.

Encoding (exact sums with headroom)
-----------------------------------
A 64-bit fixed point has not enough range × precision for ``X'X``, ``y'y`` and Hessians over
10^5 subjects. Each value ``v`` becomes the integer ``a = rint(v · 2^56)`` (|v| < 2^62, so
|a| < 2^118) written in 120-bit two's complement as three 40-bit limbs: ``lo`` and ``mid``
unsigned in ``[0, 2^40)``, ``hi`` signed in ``[−2^38, 2^38)``, each in its own ``uint64`` ring
word. Over at most 2^23 sites the limb sums stay below 2^63 in magnitude, so they never wrap
and the ring sum of each limb is the integer sum. The split is done on ``|a|`` with float
arithmetic on powers of two (exact: the limbs are bit fields of its mantissa), then cast to
integers, where the sign is applied (two's complement with carries). Decoding carries ``lo``
into ``mid`` and ``mid`` into
``hi`` with balanced remainders in ``[−2^39, 2^39)`` (no cancellation) and evaluates
``(Σhi·2^80 + Σmid·2^40 + Σlo) · 2^-56`` in float64: integers (counts) are exact, every sum is
within a few float64 ulps of the exact sum of the quantised values (quantum 2^-56 ≈ 1.4e-17 per
site and value). A NaN or infinite value, or one with |v| ≥ 2^62, raises
:class:`~veil.errors.DataError` at the site holding it, naming the site and the aggregate,
before anything is sent; the job's link abort then stops the other sites at once.

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
#: bits per limb; three limbs hold a 120-bit two's-complement integer
LIMB_BITS = 40
N_LIMBS = 3
#: largest magnitude a value may have (exclusive)
MAX_ABS = 2.0**62
#: most sites whose limb sums cannot wrap a 64-bit word
MAX_SITES = 2**23
#: the kind recorded in the ledger for these reveals
REVEAL_KIND = "secure-sum"

_SCALE = 2.0**SCALE_BITS
_LIMB = 2.0**LIMB_BITS
_HI = 2.0 ** (2 * LIMB_BITS)
_HALF = np.uint64(1 << (LIMB_BITS - 1))
_SHIFT = np.uint64(LIMB_BITS)
_SHIFT_I = np.int64(LIMB_BITS)


def encode(values: npt.ArrayLike, *, where: str = "value") -> U64:
    """Fixed-point limbs of ``values``: ``(3, n)`` uint64 rows ``lo, mid, hi`` (see module).

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
    a = v * _SCALE  # exact scaling by a power of two, then rounding to an integer
    np.rint(a, out=a)
    neg = a < 0
    # split |a| into 40-bit limbs with float steps on powers of two (each exact: the limbs are
    # bit fields of |a|'s 53-bit mantissa), then apply the sign in integer arithmetic
    np.abs(a, out=a)
    top = np.floor(a / _HI)
    a -= top * _HI
    mid = np.floor(a / _LIMB)
    a -= mid * _LIMB
    out = np.empty((N_LIMBS, v.size), dtype=np.uint64)
    lo_i, mid_i, hi_i = (out[k].view(np.int64) for k in range(N_LIMBS))
    lo_i[:] = a
    mid_i[:] = mid
    hi_i[:] = top
    for limb in (lo_i, mid_i, hi_i):
        np.negative(limb, out=limb, where=neg)
    carry = lo_i >> _SHIFT_I  # arithmetic shift: floor division by 2^40
    lo_i -= carry << _SHIFT_I
    mid_i += carry
    np.right_shift(mid_i, _SHIFT_I, out=carry)
    mid_i -= carry << _SHIFT_I
    hi_i += carry
    return out


def decode(limb_sums: U64) -> F64:
    """Float64 values of ``(3, n)`` limb sums (mod 2^64) of at most 2^23 encodings."""
    if limb_sums.ndim != 2 or limb_sums.shape[0] != N_LIMBS or limb_sums.dtype != np.uint64:
        raise ProtocolError(f"limb sums must be (3, n) uint64, got {limb_sums.shape}")
    lo, mid = limb_sums[0], limb_sums[1]
    hi = limb_sums[2].view(np.int64)
    # balanced carries: remainders in [-2^39, 2^39) so the float evaluation cannot cancel
    c0 = (lo + _HALF) >> _SHIFT
    r0 = (lo - (c0 << _SHIFT)).view(np.int64)
    mid = mid + c0
    c1 = (mid + _HALF) >> _SHIFT
    r1 = (mid - (c1 << _SHIFT)).view(np.int64)
    top = hi + c1.view(np.int64)
    total = top.astype(np.float64) * _HI + (r1.astype(np.float64) * _LIMB + r0.astype(np.float64))
    out: F64 = total / _SCALE
    return out


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

    def exchange(self, key: str, values: F64) -> F64:
        """Run one masked exchange (called by :meth:`MaskedSum.reveal_to`); returns the sum."""
        self._count += 1
        n = int(values.size)
        y = encode(values, where=f"site {self.me!r}: aggregate {key!r}").reshape(-1)
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
        total = y.copy()  # y may still be on its way out: never modify it
        for peer in self.peers:
            got = self.ctx.link.recv_array(peer, msg, timeout=self.timeout)
            check_masked(got, y.size, peer=peer, key=key)
            total += got
        self.values_summed += n
        self.aggregates += 1
        return decode(total.reshape(N_LIMBS, n)).reshape(values.shape)


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

    def __init__(self, owner: SecureSum, key: str, values: F64) -> None:
        self._owner = owner
        self.key = key
        self._values = values

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self._values.shape)

    @property
    def dtype(self) -> str:
        return "float64"

    def reveal_to(self, recipients: tuple[str, ...]) -> F64:
        """Run the exchange; every site (all must be recipients) gets the sum."""
        if set(recipients) != set(self._owner.sites):
            raise ProtocolError(
                f"a secure sum is revealed to all sites {list(self._owner.sites)}, "
                f"not {list(recipients)}"
            )
        return self._owner.exchange(self.key, self._values)


__all__ = [
    "MAX_ABS",
    "MAX_SITES",
    "REVEAL_KIND",
    "MaskedSum",
    "SecureSum",
    "check_sites",
    "decode",
    "encode",
    "quantise",
    "tag_of",
]
