"""Grouped bucket sums (:func:`veil.he.bucket_sum_groups`) against a numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

import veil.he as he
from veil.errors import DataError
from veil.he.keys import PrivateKey, PublicKey
from veil.he.packing import SlotLayout


def _ref(values: np.ndarray, bins: np.ndarray, group: np.ndarray, k: int, nb: int) -> np.ndarray:
    out = np.zeros((bins.shape[1], k, nb, values.shape[1]), np.int64)
    for f in range(bins.shape[1]):
        keep = group >= 0
        np.add.at(out[f], (group[keep], bins[keep, f]), values[keep])
    return out


@pytest.mark.parametrize("processes", [1, 2])
def test_grouped_sums_match_numpy(ou_keys: tuple[PublicKey, PrivateKey], processes: int) -> None:
    """Groups of very different sizes (one large enough to be cut into pieces in the pool and
    to take the pair path, one empty), skipped rows, packed (g, h)."""
    pk, sk = ou_keys
    rng = np.random.default_rng(processes)
    rows, nb, k = 700, 3, 4
    gh = np.stack([rng.integers(-(2**20), 2**20, rows), rng.integers(0, 2**18, rows)], 1)
    bins = rng.integers(0, nb, (rows, 3))
    group = rng.choice([-1, 0, 1, 3], size=rows, p=[0.1, 0.8, 0.05, 0.05])  # group 2 empty
    lay = SlotLayout.for_sums(pk.plaintext_bits, 2, 2**20, rows)
    ct = he.encrypt(pk, gh, layout=lay, value_bound=2**20)
    with he.Workers(processes, keys=(pk,)) as w:
        out = he.bucket_sum_groups(ct, bins, group, k, nb, workers=w)
    assert out.shape == (3, k, nb) and out.plain_shape == (3, k, nb, 2)
    assert out.bound == 2**20 * int(np.sum(group == 0))
    assert np.array_equal(he.decrypt(sk, out), _ref(gh, bins, group, k, nb))
    # the empty group's sums are fresh encryptions of zero, not the word 1
    assert all(int(c) != 1 for c in out.data[:, 2].reshape(-1))


def test_grouped_sums_refuse_bad_groups(ou_keys: tuple[PublicKey, PrivateKey]) -> None:
    pk, _ = ou_keys
    ct = he.encrypt(pk, np.array([1, 2, 3]))
    bins = np.zeros((3, 1), np.int64)
    with pytest.raises(DataError, match="group values"):
        he.bucket_sum_groups(ct, bins, np.array([0, 2, 0]), 2, 1)
    with pytest.raises(DataError, match="do not match"):
        he.bucket_sum_groups(ct, bins, np.array([0, 1]), 2, 1)
