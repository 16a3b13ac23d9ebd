"""Party-free set operations on fixed-width byte keys held as ``(n, w)`` uint8 arrays.

Keys are digests or masked values: pseudorandom, fixed width, never Python objects. Everything
here is exact (full-width comparison), vectorised, and ``O(n log n)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veil.errors import ProtocolError

Keys = np.ndarray[Any, Any]


def _words(keys: Keys) -> np.ndarray[Any, Any]:
    """``(n, w)`` uint8 → ``(n, ceil(w/8))`` big-endian uint64 words (zero-padded)."""
    k = np.ascontiguousarray(keys, dtype=np.uint8)
    if k.ndim != 2:
        raise ProtocolError(f"keys must be a 2-d uint8 array, got shape {k.shape}")
    n, w = k.shape
    nw = max(1, -(-w // 8))
    if w != nw * 8:
        pad = np.zeros((n, nw * 8), dtype=np.uint8)
        pad[:, :w] = k
        k = pad
    return k.view(">u8").reshape(n, nw).astype(np.uint64)


def sort_order(keys: Keys) -> np.ndarray[Any, Any]:
    """Indices that sort ``keys`` lexicographically by their bytes (stable)."""
    w = _words(keys)
    order: np.ndarray[Any, Any] = np.lexsort(tuple(w[:, j] for j in range(w.shape[1] - 1, -1, -1)))
    return order


def _equal_adjacent(
    words: np.ndarray[Any, Any], order: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """``eq[i]`` is true when sorted row ``i`` equals sorted row ``i + 1`` (one word at a time,
    so the only temporaries are one column long)."""
    n = len(order)
    eq = np.ones(max(n - 1, 0), dtype=bool)
    for j in range(words.shape[1]):
        col = words[:, j][order]
        eq &= col[1:] == col[:-1]
    return eq


def _prefix(keys: Keys) -> np.ndarray[Any, Any]:
    """The first 8 bytes of each key as one uint64 (8 B per row; zero-padded if narrower)."""
    k = np.ascontiguousarray(keys, dtype=np.uint8)
    if k.ndim != 2:
        raise ProtocolError(f"keys must be a 2-d uint8 array, got shape {k.shape}")
    head = np.zeros((k.shape[0], 8), dtype=np.uint8)
    head[:, : min(8, k.shape[1])] = k[:, :8]
    return head.view(">u8").ravel()


def first_occurrences(keys: Keys) -> np.ndarray[Any, Any]:
    """Boolean mask: ``True`` for the first row of each distinct key (in row order).

    Sorts 8-byte prefixes only and compares full keys where prefixes tie; if three or more rows
    share a prefix (never seen with pseudorandom keys) it falls back to a full sort.
    """
    n = keys.shape[0]
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    hi = _prefix(keys)
    order = np.argsort(hi, kind="stable")
    hs = hi[order]
    tie = np.flatnonzero(hs[1:] == hs[:-1])
    del hi, hs
    if tie.size == 0:
        return keep
    if np.any(np.diff(tie) == 1):  # a run of 3+ equal prefixes
        return _first_occurrences_full(keys)
    left, right = order[tie], order[tie + 1]  # stable: left is the earlier row
    same = np.all(keys[left] == keys[right], axis=1)
    keep[right[same]] = False
    return keep


def _first_occurrences_full(keys: Keys) -> np.ndarray[Any, Any]:
    """:func:`first_occurrences` by a full lexicographic sort (any keys)."""
    n = keys.shape[0]
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    order = sort_order(keys)  # stable: equal keys stay in row order
    eq = _equal_adjacent(_words(keys), order)
    keep[order[1:][eq]] = False
    return keep


def duplicate_rows(keys: Keys) -> np.ndarray[Any, Any]:
    """Row indices (ascending) of every row whose key also occurs in an earlier row."""
    return np.flatnonzero(~first_occurrences(keys))


def match(a: Keys, b: Keys) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Which rows of ``a`` occur in ``b`` and which rows of ``b`` occur in ``a``.

    Both inputs must be free of duplicates (the protocol guarantees it for honest parties).
    Returns two boolean masks of lengths ``len(a)`` and ``len(b)``. Looks ``a``'s 8-byte prefixes
    up among ``b``'s sorted prefixes and compares full keys on hits (about 40 B per row of extra
    memory); if two rows of ``b`` share a prefix it falls back to a full sort of both.
    """
    if a.shape[1:] != b.shape[1:]:
        raise ProtocolError(f"cannot match keys of widths {a.shape[1:]} and {b.shape[1:]}")
    in_a = np.zeros(a.shape[0], dtype=bool)
    in_b = np.zeros(b.shape[0], dtype=bool)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return in_a, in_b
    b_hi = _prefix(b)
    order = np.argsort(b_hi, kind="stable")
    b_sorted = b_hi[order]
    del b_hi
    if np.any(b_sorted[1:] == b_sorted[:-1]):
        return _match_full(a, b)
    a_hi = _prefix(a)
    pos = np.minimum(np.searchsorted(b_sorted, a_hi), len(b_sorted) - 1)
    cand = np.flatnonzero(b_sorted[pos] == a_hi)
    del a_hi, b_sorted
    rows_b = order[pos[cand]]
    same = np.all(a[cand] == b[rows_b], axis=1)
    in_a[cand[same]] = True
    in_b[rows_b[same]] = True
    return in_a, in_b


def _match_full(a: Keys, b: Keys) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """:func:`match` by a full lexicographic sort of both inputs (any keys)."""
    na = a.shape[0]
    both = np.concatenate([a, b]) if na + b.shape[0] else a
    words = _words(both)
    order = sort_order(both)
    eq = _equal_adjacent(words, order)
    left, right = order[:-1][eq], order[1:][eq]
    in_all = np.zeros(both.shape[0], dtype=bool)
    cross = (left < na) != (right < na)  # a pair of one row of a and one of b
    in_all[left[cross]] = True
    in_all[right[cross]] = True
    return in_all[:na], in_all[na:]


def isin(a: Keys, b: Keys) -> np.ndarray[Any, Any]:
    """Boolean mask over rows of ``a``: row occurs in ``b`` (both duplicate-free)."""
    return match(a, b)[0]
