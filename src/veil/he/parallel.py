"""Process-pool parallelism for batch HE work (gmpy2 holds the GIL, so threads cannot help).

:class:`Workers` owns a :class:`~concurrent.futures.ProcessPoolExecutor` (``spawn`` start method
by default: safe next to gRPC threads). The task functions below are what runs in the workers.
Everything crossing the process boundary is bytes or numpy integer arrays: public keys as
:func:`~veil.he.codec.encode_public_key` blobs, ciphertexts as fixed-width big-endian words.
The only pickled objects are those numpy arrays and small tuples of ints inside our own pool;
nothing a peer sent is ever unpickled. Each worker memoizes the encryptor (fixed-base tables) of
the keys it has seen (:func:`veil.he.engine.encryptor`); pass ``keys=`` to build them when the
pool starts, outside any timed section.

``Workers(1)`` runs every task in the calling process (no pool), the default for small inputs
and the test oracle of the parallel path. With ``spawn``, a script that creates a pool must guard
its entry point with ``if __name__ == "__main__":`` (workers re-import the main module). Memory:
each worker holds the tables of its keys (OU-2048 ~26 MB public plus ~82 MB for the key owner's
bulk noise table; Paillier-2048 ~19 MB public plus ~127 MB for the key owner's CRT tables).
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import gmpy2
import numpy as np

from veil.errors import ConfigError
from veil.he.codec import decode_public_key, encode_public_key, ints_from_bytes, ints_to_bytes
from veil.he.engine import decryptor, encryptor, owner_encryptor
from veil.he.keys import PrivateKey, PublicKey
from veil.he.packing import SlotLayout

T = TypeVar("T")

#: Below this many operations a call runs in-process even when a pool exists.
MIN_PARALLEL = 64


class Workers:
    """A pool of ``processes`` worker processes for HE batches (context manager).

    Parameters
    ----------
    processes:
        Number of worker processes (default: all cores). ``1`` runs everything in-process.
    keys:
        Public keys whose tables each worker builds at start-up.
    owner_keys:
        Private keys of this party whose owner-side (CRT) tables each worker builds at start-up
        (they travel to our own worker processes only, as integers through the pool's pipe).
    start_method:
        ``multiprocessing`` start method (``"spawn"`` default, ``"forkserver"``, ``"fork"``).
    """

    def __init__(
        self,
        processes: int | None = None,
        *,
        keys: Sequence[PublicKey] = (),
        owner_keys: Sequence[PrivateKey] = (),
        start_method: str = "spawn",
    ) -> None:
        self.processes = int(processes or os.cpu_count() or 1)
        if self.processes < 1:
            raise ConfigError(f"Workers needs at least one process, got {processes}")
        self._pool: ProcessPoolExecutor | None = None
        if self.processes > 1:
            blobs = tuple(encode_public_key(k) for k in keys)
            owners = tuple((encode_public_key(k.public), (k.p, k.q, k.t)) for k in owner_keys)
            self._pool = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=mp.get_context(start_method),
                initializer=_init_worker,
                initargs=(blobs, owners),
            )
            # Start every worker now (and build its tables), not inside the first timed call.
            list(self._pool.map(_ping, [0.02] * self.processes))

    @property
    def parallel(self) -> bool:
        """Whether tasks run in worker processes."""
        return self._pool is not None

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any]) -> list[T]:
        """``[fn(*args) for args in zip(*iterables)]``, in the pool when there is one."""
        if self._pool is None:
            return [fn(*args) for args in zip(*iterables, strict=True)]
        return list(self._pool.map(fn, *iterables))

    def chunks(self, n: int, per_process: int = 4) -> list[tuple[int, int]]:
        """Split ``range(n)`` into contiguous ``(start, stop)`` chunks for this pool."""
        parts = 1 if self._pool is None or n < MIN_PARALLEL else self.processes * per_process
        parts = max(1, min(parts, n))
        bounds = np.linspace(0, n, parts + 1).astype(np.int64)
        return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]

    def cpu_seconds(self) -> float:
        """CPU time used so far by this process plus the live workers (Linux ``/proc``; the
        workers count as 0 elsewhere). Benchmarks report it beside wall time on shared hosts."""
        total = time.process_time()
        procs = getattr(self._pool, "_processes", None) or {}
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        for pid in list(procs):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                continue
        return total

    def close(self) -> None:
        """Shut the pool down (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _init_worker(
    key_blobs: tuple[bytes, ...], owners: tuple[tuple[bytes, tuple[int, int, int]], ...]
) -> None:
    for blob in key_blobs:
        encryptor(_public_key(blob))
    for blob, secret in owners:
        owner_encryptor(PrivateKey(_public_key(blob), *secret))


def _ping(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@functools.lru_cache(maxsize=8)
def _public_key(blob: bytes) -> PublicKey:
    return decode_public_key(blob)


def encrypt_chunk(
    pk_blob: bytes,
    secret: tuple[int, int, int] | None,
    values: np.ndarray,
    layout: tuple[int, int, int] | None,
) -> bytes:
    """Encrypt encoded ``values`` (``(rows,)``, or ``(rows, n_slots)`` packed with ``layout``)
    under the key in ``pk_blob``; return fixed-width ciphertext bytes. With the key owner's
    ``secret`` ``(p, q, t)`` the faster owner path is used (same ciphertext distribution)."""
    pk = _public_key(pk_blob)
    enc = encryptor(pk) if secret is None else owner_encryptor(PrivateKey(pk, *secret))
    plain = SlotLayout(*layout).pack(values) if layout is not None else values
    return ints_to_bytes(enc.encrypt_many(plain.reshape(-1).tolist()), pk.ct_bytes)


def mul_chunk(pk_blob: bytes, ct_blob: bytes, scalars: np.ndarray) -> bytes:
    """``Enc(x_i)^(k_i)`` for fixed-width ciphertexts and signed integer ``scalars``."""
    pk = _public_key(pk_blob)
    enc = encryptor(pk)
    cts = ints_from_bytes(ct_blob, pk.ct_bytes, len(scalars))
    return ints_to_bytes(
        (enc.mul_plain(c, int(k)) for c, k in zip(cts, scalars.tolist(), strict=True)),
        pk.ct_bytes,
    )


def decrypt_chunk(pk_blob: bytes, secret: tuple[int, int, int], ct_blob: bytes) -> list[int]:
    """Decrypt fixed-width ciphertexts with the private key ``(p, q, t)`` of ``pk_blob``."""
    pk = _public_key(pk_blob)
    dec = decryptor(PrivateKey(pk, *secret))
    return [dec.decrypt(c) for c in ints_from_bytes(ct_blob, pk.ct_bytes)]


def bucket_chunk(
    pk_blob: bytes,
    ct_blob: bytes,
    trailing: int,
    bins: np.ndarray,
    n_bins: int,
    noise: bool,
) -> bytes:
    """Partial bucket sums of one row range: ``(features, n_bins, trailing)`` ciphertexts.

    ``ct_blob`` holds ``rows * trailing`` ciphertexts (row-major); ``bins`` is ``(rows,
    features)``. Empty buckets are the word ``0`` (never a valid ciphertext). With ``noise``,
    every bucket is multiplied by a fresh encryption of zero, so the combined sums are
    re-randomized (one chunk of a call sets it).

    Two features with ``n_bins`` bins each are summed together over their ``n_bins^2`` joint
    cells when the chunk has enough rows (one multiplication per row instead of two, plus
    ``2*n_bins^2`` to marginalize): the products, hence the ciphertexts, are identical.
    """
    pk = _public_key(pk_blob)
    enc = encryptor(pk)
    m = enc.modulus
    rows, features = bins.shape
    cts = ints_from_bytes(ct_blob, pk.ct_bytes, rows * trailing)
    out: list[Any] = [None] * (features * n_bins * trailing)
    pair = rows > 2 * n_bins * n_bins
    f = 0
    while f < features:
        if pair and f + 1 < features:
            cells = bins[:, f].astype(np.int64) * n_bins + bins[:, f + 1]
            acc = _accumulate(cts, cells, n_bins * n_bins, trailing, m)
            for k in range(n_bins * n_bins):
                b1, b2 = divmod(k, n_bins)
                for t in range(trailing):
                    c = acc[k * trailing + t]
                    if c is not None:
                        _mul_into(out, (f * n_bins + b1) * trailing + t, c, m)
                        _mul_into(out, ((f + 1) * n_bins + b2) * trailing + t, c, m)
            f += 2
        else:
            acc = _accumulate(cts, bins[:, f].astype(np.int64), n_bins, trailing, m)
            out[f * n_bins * trailing : (f + 1) * n_bins * trailing] = acc
            f += 1
    if noise:
        out = [enc.noise() if c is None else c * enc.noise() % m for c in out]
    return ints_to_bytes((0 if c is None else c for c in out), pk.ct_bytes)


def _accumulate(
    cts: list[Any], cells: np.ndarray, n_cells: int, trailing: int, m: Any
) -> list[Any]:
    acc: list[Any] = [None] * (n_cells * trailing)
    if trailing == 1:
        idx = cells.tolist()
    else:
        idx = (cells[:, None] * trailing + np.arange(trailing)).reshape(-1).tolist()
    for c, k in zip(cts, idx, strict=True):
        a = acc[k]
        acc[k] = c if a is None else a * c % m
    return acc


def _mul_into(out: list[Any], k: int, c: Any, m: Any) -> None:
    a = out[k]
    out[k] = c if a is None else a * c % m


def combine_partials(parts: Sequence[bytes], width: int, count: int, modulus: int) -> list[Any]:
    """Multiply partial bucket sums position-wise (``0`` = empty); empty overall -> ``1``."""
    m = gmpy2.mpz(modulus)
    acc: list[Any] = [None] * count
    for blob in parts:
        for k, c in enumerate(ints_from_bytes(blob, width, count)):
            if c:
                a = acc[k]
                acc[k] = c if a is None else a * c % m
    return [gmpy2.mpz(1) if c is None else c for c in acc]
