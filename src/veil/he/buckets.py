"""Bucket sums of ciphertext rows (encrypted histograms), split over worker processes.

``bucket_sum`` sums rows into bins per feature; ``bucket_sum_groups`` does the same for several
row groups (e.g. every node of a tree level) in one pool call. Both re-randomize their outputs by
default so the key owner cannot link a sum to the encryptions it made (threat model and bounds:
:mod:`veil.he.vector`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from veil.errors import DataError
from veil.he.codec import encode_public_key, ints_to_bytes
from veil.he.parallel import Workers, bucket_chunk, combine_partials
from veil.he.vector import CiphertextArray, objects


def bucket_sum(
    ct: CiphertextArray,
    bin_index: Any,
    n_bins: int,
    *,
    workers: Workers | None = None,
    rerandomize: bool = True,
) -> CiphertextArray:
    """Sum rows of ``ct`` into buckets: ``out[f, b] = sum of ct[i] with bin_index[i, f] == b``.

    Parameters
    ----------
    ct:
        Ciphertexts of shape ``(rows, *trailing)``.
    bin_index:
        Integers in ``[0, n_bins)`` of shape ``(rows,)`` or ``(rows, features)``.
    n_bins:
        Number of buckets.
    workers:
        A :class:`Workers` pool (rows are split between processes).
    rerandomize:
        Multiply each result by a fresh encryption of zero (default) so the key owner cannot
        link a sum to its own encryptions; empty buckets then look like any other.

    Returns
    -------
    CiphertextArray
        Shape ``(features, n_bins, *trailing)``, or ``(n_bins, *trailing)`` for 1-d
        ``bin_index``. Its bound is ``rows`` times the input bound (public), never a count.
    """
    idx = np.asarray(bin_index)
    if idx.dtype.kind not in "iu":
        raise DataError(f"bin_index must be integers, got {idx.dtype}")
    one_d = idx.ndim == 1
    idx2 = idx.reshape(-1, 1) if one_d else idx
    if idx2.ndim != 2 or ct.data.ndim < 1 or idx2.shape[0] != ct.shape[0]:
        raise DataError(
            f"bin_index of shape {idx.shape} does not match {ct.shape[0] if ct.shape else 0} rows"
        )
    _check_range(idx2, n_bins)
    rows = ct.shape[0]
    bound = ct._grown(ct.bound * max(rows, 1), "bucket sum")
    w = workers or Workers(1)
    spans = w.chunks(rows, per_process=2)
    parts = _pool_sums(
        ct, idx2, n_bins, [slice(a, b) for a, b in spans],
        [rerandomize and i == 0 for i in range(len(spans))], w,
    )  # fmt: skip
    features = idx2.shape[1]
    count = features * n_bins * _trailing(ct)
    sums = combine_partials(parts, ct.pk.ct_bytes, count, ct.pk.ct_modulus)
    data = objects(sums)
    shape = (n_bins, *ct.shape[1:]) if one_d else (features, n_bins, *ct.shape[1:])
    return ct._like(data.reshape(shape), bound)


#: A grouped bucket-sum task gets at least this many rows times ``n_bins**2`` when it can (so
#: :func:`~veil.he.parallel.bucket_chunk` takes its two-features-at-once path, which pays
#: from about ``4 * n_bins**2`` rows: ``rows`` multiplications saved per feature pair against
#: ``2 * n_bins**2`` to marginalize).
PAIR_ROWS_PER_CELL = 4


def bucket_sum_groups(
    ct: CiphertextArray,
    bin_index: Any,
    group: Any,
    n_groups: int,
    n_bins: int,
    *,
    workers: Workers | None = None,
    rerandomize: bool = True,
) -> CiphertextArray:
    """Bucket sums of several row groups at once:
    ``out[f, j, b] = sum of ct[i] with group[i] == j and bin_index[i, f] == b``.

    The same sums as one :func:`bucket_sum` per group (rows with ``group < 0`` are skipped),
    in one pool call: every group is cut into row ranges of about ``rows / (2 * processes)``
    rows but at least ``PAIR_ROWS_PER_CELL * n_bins**2`` (small groups stay whole, so they keep
    the two-features path and the workers share the groups instead of splitting each), largest
    tasks first. With ``rerandomize`` every group's sums are multiplied by fresh encryptions
    of zero (as :func:`bucket_sum`).

    Returns
    -------
    CiphertextArray
        Shape ``(features, n_groups, n_bins, *trailing)``; bound: the input bound times the
        largest group's row count (public: the groups' sizes are known to both sides).
    """
    idx = np.asarray(bin_index)
    grp = np.asarray(group)
    if idx.dtype.kind not in "iu" or grp.dtype.kind not in "iu":
        raise DataError(f"bin_index and group must be integers, got {idx.dtype}, {grp.dtype}")
    rows = ct.shape[0] if ct.data.ndim else 0
    if idx.ndim != 2 or idx.shape[0] != rows or grp.shape != (rows,):
        raise DataError(
            f"bin_index {idx.shape} and group {grp.shape} do not match {rows} ciphertext rows"
        )
    _check_range(idx, n_bins)
    if n_groups < 1 or (grp.size and int(grp.max()) >= n_groups):
        raise DataError(f"group values must lie in [-1, {n_groups})")
    grp = grp.astype(np.int64)
    sizes = np.bincount(grp[grp >= 0], minlength=n_groups)
    bound = ct._grown(ct.bound * max(int(sizes.max()), 1), "bucket sum")
    pk = ct.pk
    w = workers or Workers(1)
    order = np.argsort(grp, kind="stable")
    starts = np.searchsorted(grp[order], np.arange(n_groups))
    target = max(-(-int(sizes.sum()) // (2 * w.processes)), PAIR_ROWS_PER_CELL * n_bins**2)
    tasks: list[tuple[int, np.ndarray, bool]] = []  # (group, rows, first of its group)
    for j in range(n_groups):
        mine = order[starts[j] : starts[j] + sizes[j]]
        parts = max(1, round(len(mine) / target)) if w.parallel else 1
        for i, piece in enumerate(np.array_split(mine, parts)):
            tasks.append((j, piece, rerandomize and i == 0))
    tasks.sort(key=lambda task: -len(task[1]))
    parts_out = _pool_sums(
        ct, idx, n_bins, [r for _, r, _ in tasks], [noise for _, _, noise in tasks], w
    )
    features = idx.shape[1]
    count = features * n_bins * _trailing(ct)
    by_group: list[list[bytes]] = [[] for _ in range(n_groups)]
    for (j, _, _), part in zip(tasks, parts_out, strict=True):
        by_group[j].append(part)
    sums = [objects(combine_partials(p, pk.ct_bytes, count, pk.ct_modulus)) for p in by_group]
    data = np.stack([s.reshape(features, n_bins, *ct.shape[1:]) for s in sums], axis=1)
    return ct._like(data, bound)


def _check_range(idx: np.ndarray, n_bins: int) -> None:
    if n_bins < 1 or (idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n_bins)):
        raise DataError(f"bin_index values must lie in [0, {n_bins})")


def _trailing(ct: CiphertextArray) -> int:
    """Ciphertexts per row (the product of the trailing dimensions)."""
    return int(np.prod(ct.shape[1:], dtype=np.int64)) if ct.data.ndim > 1 else 1


def _pool_sums(
    ct: CiphertextArray,
    idx: np.ndarray,
    n_bins: int,
    row_sets: Sequence[slice | np.ndarray],
    noise: Sequence[bool],
    w: Workers,
) -> list[bytes]:
    """One :func:`~veil.he.parallel.bucket_chunk` task per row set (public key, rows'
    ciphertexts and bins, whether to add a fresh encryption of zero); the partial sums."""
    pk, trailing = ct.pk, _trailing(ct)
    flat = ct.data.reshape(ct.shape[0], trailing)
    n = len(row_sets)
    parts: list[bytes] = w.map(
        bucket_chunk,
        [encode_public_key(pk)] * n,
        [ints_to_bytes(flat[r].reshape(-1).tolist(), pk.ct_bytes) for r in row_sets],
        [trailing] * n,
        [np.ascontiguousarray(idx[r], dtype=np.int64) for r in row_sets],
        [n_bins] * n,
        list(noise),
    )
    return parts


__all__ = ["PAIR_ROWS_PER_CELL", "bucket_sum", "bucket_sum_groups"]
