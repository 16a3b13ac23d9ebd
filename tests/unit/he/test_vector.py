"""Vector API against numpy: encrypt/decrypt, arithmetic, sums, bucket sums, parallel path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import veil.he as he
from veil.errors import DataError, ProtocolError
from veil.he import SlotLayout
from veil.he.keys import PrivateKey, PublicKey

I64 = hnp.arrays(
    np.int64, hnp.array_shapes(max_dims=2, max_side=5), elements=st.integers(-(2**40), 2**40)
)


@settings(max_examples=15, deadline=None)
@given(x=I64, data=st.data())
def test_integer_ops_match_numpy(
    keypair: tuple[PublicKey, PrivateKey], x: np.ndarray, data: st.DataObject
) -> None:
    pk, sk = keypair
    y = data.draw(hnp.arrays(np.int64, x.shape, elements=st.integers(-(2**40), 2**40)))
    k = data.draw(hnp.arrays(np.int64, x.shape, elements=st.integers(-1000, 1000)))
    cx, cy = he.encrypt(pk, x, value_bound=2**40), he.encrypt(pk, y, value_bound=2**40)
    assert np.array_equal(he.decrypt(sk, cx), x)
    assert np.array_equal(he.decrypt(sk, cx + cy), x + y)
    assert np.array_equal(he.decrypt(sk, cx - cy), x - y)
    assert np.array_equal(he.decrypt(sk, cx + y), x + y)
    assert np.array_equal(he.decrypt(sk, y - cx), y - x)
    assert np.array_equal(he.decrypt(sk, -cx), -x)
    assert np.array_equal(he.decrypt(sk, cx * k), x * k)
    assert np.array_equal(he.decrypt(sk, cx * -7), -7 * x)
    assert he.decrypt(sk, cx.sum()) == x.sum()
    if x.ndim == 2:
        assert np.array_equal(he.decrypt(sk, cx.sum(axis=1)), x.sum(axis=1))
        assert np.array_equal(he.decrypt(sk, cx.sum(axis=0)), x.sum(axis=0))


def test_subtracting_unsigned_and_extreme_plaintexts(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    ct = he.encrypt(pk, np.array([5, -5]))
    assert he.decrypt(sk, ct - np.array([7, 200], np.uint8)).tolist() == [-2, -205]
    lo = np.iinfo(np.int64).min
    assert he.decrypt_ints(sk, ct - np.array([lo, 0])).tolist() == [5 - lo, -5]


def test_fixed_point_reals(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    rng = np.random.default_rng(1)
    x = rng.uniform(-5, 5, 40)
    w = rng.uniform(-2, 2, 40)
    f = 20
    cx = he.encrypt(pk, x, frac_bits=f, value_bound=5 << f)
    got = he.decrypt(sk, cx)
    assert got.dtype == np.float64
    assert np.max(np.abs(got - x)) <= 2.0 ** -(f + 1)
    prod = cx.mul(w, frac_bits=f)  # frac bits add up: 2f
    assert prod.frac_bits == 2 * f
    # error: |x|*2^-(f+1) from w's rounding + |w|*2^-(f+1) from x's, plus products of those
    assert np.max(np.abs(he.decrypt(sk, prod) - x * w)) <= 7 * 2.0 ** -(f + 1)
    assert abs(he.decrypt(sk, cx.sum()) - x.sum()) <= 40 * 2.0 ** -(f + 1)
    with pytest.raises(DataError, match="value_bound"):
        he.encrypt(pk, x, frac_bits=f)
    with pytest.raises(DataError, match="NaN"):
        he.encrypt(pk, np.array([np.nan]), frac_bits=f, value_bound=1)
    with pytest.raises(DataError, match="frac_bits"):
        cx.mul(np.array([0.5] * 40))


def _ref_hist(values: np.ndarray, bins: np.ndarray, n_bins: int) -> np.ndarray:
    out = np.zeros((bins.shape[1], n_bins, *values.shape[1:]), np.int64)
    for f in range(bins.shape[1]):
        np.add.at(out[f], bins[:, f], values)
    return out


@pytest.mark.parametrize("rows,n_bins", [(300, 4), (37, 8), (1, 3)])
def test_bucket_sum_packed_and_unpacked(
    keypair: tuple[PublicKey, PrivateKey], rows: int, n_bins: int
) -> None:
    """rows > 2*n_bins^2 exercises the pair-of-features path, the others the single path."""
    pk, sk = keypair
    rng = np.random.default_rng(rows)
    gh = np.stack([rng.integers(-(2**20), 2**20, rows), rng.integers(0, 2**18, rows)], 1)
    bins = rng.integers(0, n_bins, (rows, 3))
    ref = _ref_hist(gh, bins, n_bins)
    lay = SlotLayout.for_sums(pk.plaintext_bits, 2, 2**20, rows)
    packed = he.encrypt(pk, gh, layout=lay, value_bound=2**20)
    hp = he.bucket_sum(packed, bins, n_bins)
    assert hp.shape == (3, n_bins) and hp.plain_shape == (3, n_bins, 2)
    assert np.array_equal(he.decrypt(sk, hp), ref)
    unpacked = he.encrypt(pk, gh, value_bound=2**20)
    hu = he.bucket_sum(unpacked, bins, n_bins, rerandomize=False)
    assert hu.shape == (3, n_bins, 2)
    assert np.array_equal(he.decrypt(sk, hu), ref)
    h1 = he.bucket_sum(unpacked, bins[:, 0], n_bins)
    assert np.array_equal(he.decrypt(sk, h1), ref[0])


def test_bucket_sum_rerandomizes_and_hides_empty(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    ct = he.encrypt(pk, np.array([5, 6]))
    bins = np.array([0, 0])
    a = he.bucket_sum(ct, bins, 3)
    b = he.bucket_sum(ct, bins, 3)
    assert np.array_equal(he.decrypt(sk, a), [11, 0, 0])
    assert a.data[0] != b.data[0] and a.data[1] != b.data[1]  # fresh noise, even when empty
    plain = he.bucket_sum(ct, bins, 3, rerandomize=False)
    assert plain.data[1] == 1  # the trivial encryption of zero without re-randomization
    assert a.bound == 2 * ct.bound  # rows x bound: public, never the bucket counts


def test_bucket_sum_validates_indices(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, _ = keypair
    ct = he.encrypt(pk, np.arange(4))
    with pytest.raises(DataError, match="lie in"):
        he.bucket_sum(ct, np.array([0, 1, 2, 3]), 3)
    with pytest.raises(DataError, match="rows"):
        he.bucket_sum(ct, np.array([0, 1]), 3)
    with pytest.raises(DataError, match="integers"):
        he.bucket_sum(ct, np.zeros(4), 3)


def test_mixing_keys_or_layouts_is_refused(keypair: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = keypair
    pk2, sk2 = he.keygen(pk.scheme, 512, insecure=True)
    a, b = he.encrypt(pk, np.arange(3)), he.encrypt(pk2, np.arange(3))
    with pytest.raises(ProtocolError, match="cannot combine"):
        _ = a + b
    with pytest.raises(ProtocolError, match="not this private key"):
        he.decrypt(sk2, a)
    lay = SlotLayout(1, 80)
    c = he.encrypt(pk, np.arange(3).reshape(3, 1), layout=lay, value_bound=10)
    with pytest.raises(ProtocolError, match="layouts"):
        _ = a + c


def test_parallel_matches_in_process(paillier_keys: tuple[PublicKey, PrivateKey]) -> None:
    pk, sk = paillier_keys
    rng = np.random.default_rng(7)
    gh = np.stack([rng.integers(-(2**20), 2**20, 400), rng.integers(0, 2**18, 400)], 1)
    bins = rng.integers(0, 4, (400, 3))
    lay = SlotLayout.for_sums(pk.plaintext_bits, 2, 2**20, 400)
    with he.Workers(2, keys=(pk,), owner_keys=(sk,)) as w:
        assert w.parallel
        c0 = w.cpu_seconds()
        owner = he.encrypt(sk, gh[:100], workers=w, value_bound=2**20)
        assert np.array_equal(he.decrypt(sk, owner), gh[:100])
        ct = he.encrypt(pk, gh, layout=lay, value_bound=2**20, workers=w)
        hist = he.bucket_sum(ct, bins, 4, workers=w)
        got = he.decrypt(sk, hist, workers=w)
        dec = he.decrypt(sk, ct, workers=w)
        k = rng.integers(-50, 50, 400)
        prod = he.encrypt(pk, gh[:, 0], workers=w).mul(k, workers=w)
        assert np.array_equal(he.decrypt(sk, prod, workers=w), gh[:, 0] * k)
        assert w.cpu_seconds() > c0
    assert np.array_equal(dec, gh)
    assert np.array_equal(got, _ref_hist(gh, bins, 4))
