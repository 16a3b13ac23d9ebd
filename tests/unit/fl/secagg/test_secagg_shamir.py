"""Shamir t-of-n over GF(2^31 - 1): reconstruction, secrecy of t - 1 shares, byte packing."""

from __future__ import annotations

import itertools
import os
import random

import numpy as np
import pytest

from veil.errors import ProtocolError
from veil.fl.secagg import shamir
from veil.fl.secagg.shamir import PRIME


def test_any_t_of_n_reconstruct() -> None:
    rnd = random.Random(7).randbytes
    secret = shamir.random_field((3, 9), rnd)
    xs = [1, 2, 3, 5, 8, 13]
    t = 3
    shares = shamir.split(secret, xs, t, rnd)
    assert shares.shape == (6, 3, 9)
    for subset in itertools.combinations(range(len(xs)), t):
        got = shamir.reconstruct([xs[i] for i in subset], shares[list(subset)])
        np.testing.assert_array_equal(got, secret)
    for subset in itertools.combinations(range(len(xs)), t + 1):  # more than t also works
        got = shamir.reconstruct([xs[i] for i in subset], shares[list(subset)])
        np.testing.assert_array_equal(got, secret)


def test_t_minus_one_shares_fit_every_secret() -> None:
    """By construction: for any t-1 shares and ANY candidate secret there is exactly one
    degree t-1 polynomial through them, so the shares cannot favour one secret."""
    rnd = random.Random(3).randbytes
    t, xs = 4, [2, 5, 9]
    shares = shamir.split(np.array([123456789], dtype=np.uint64), [*xs, 11], t, rnd)[:3]
    for candidate in (0, 1, 123456789, PRIME - 1):
        pts = [0, *xs]  # interpolate through (0, candidate) and the 3 shares
        vals = [candidate, *(int(s[0]) for s in shares)]

        def interp(x: int, pts: list[int] = pts, vals: list[int] = vals) -> int:
            acc = 0
            for j, (xj, yj) in enumerate(zip(pts, vals, strict=True)):
                num = den = 1
                for m, xm in enumerate(pts):
                    if m != j:
                        num = num * (x - xm) % PRIME
                        den = den * (xj - xm) % PRIME
                acc = (acc + yj * num * pow(den, -1, PRIME)) % PRIME
            return acc

        assert interp(0) == candidate
        assert [interp(x) for x in xs] == vals[1:]


def test_t_minus_one_shares_are_uniform_statistically() -> None:
    """Shares of secret 0 and of secret PRIME-1 at 2 points (t = 3): each share value is
    uniform (chi-square over 16 buckets) whatever the secret."""
    rnd = random.Random(11).randbytes
    n = 4000
    for secret in (0, PRIME - 1):
        sh = shamir.split(np.full(n, secret, dtype=np.uint64), [1, 2, 3], 3, rnd)[:2]
        for row in sh:
            counts = np.bincount((row * 16 // PRIME).astype(np.int64), minlength=16)
            expected = n / 16
            chi2 = float(((counts - expected) ** 2 / expected).sum())
            assert chi2 < 37.7  # 99.9 % quantile of chi-square with 15 degrees of freedom
        # the two shares are not correlated with each other either
        r = np.corrcoef(sh[0].astype(float), sh[1].astype(float))[0, 1]
        assert abs(r) < 0.07


def test_random_field_is_in_range_and_rejects_prime() -> None:
    # a randbytes that returns the forbidden value 2^31 - 1 first must be re-drawn
    calls = iter([b"\xff\xff\xff\x7f", b"\x05\x00\x00\x00"])
    out = shamir.random_field((1,), lambda n: next(calls))
    assert out.tolist() == [5]
    big = shamir.random_field((10000,), os.urandom)
    assert big.max() < PRIME


def test_bytes_roundtrip() -> None:
    for data in (bytes(32), b"\xff" * 32, os.urandom(32)):
        f = shamir.bytes_to_field(data)
        assert f.shape == (shamir.field_len(32),) and f.max() < PRIME
        assert shamir.field_to_bytes(f, 32) == data
    with pytest.raises(ProtocolError):
        shamir.field_to_bytes(np.full(shamir.field_len(32), PRIME - 1, dtype=np.uint64), 32)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ProtocolError, match="distinct"):
        shamir.split(np.zeros(2, dtype=np.uint64), [1, 1, 2], 2)
    with pytest.raises(ProtocolError, match="1.."):
        shamir.split(np.zeros(2, dtype=np.uint64), [0, 1, 2], 2)
    with pytest.raises(ProtocolError, match="threshold"):
        shamir.split(np.zeros(2, dtype=np.uint64), [1, 2], 3)
    with pytest.raises(ProtocolError, match="field"):
        shamir.split(np.full(2, PRIME, dtype=np.uint64), [1, 2], 2)
    with pytest.raises(ProtocolError):
        shamir.reconstruct([1, 2], np.full((2, 3), PRIME, dtype=np.uint64))


def test_known_answer() -> None:
    """Fixed randomness -> fixed shares: f(x) = 42 + 5x + 7x^2 (coefficients drawn LE u32)."""
    coeff = iter([(5).to_bytes(4, "little") + (7).to_bytes(4, "little")])
    shares = shamir.split(np.array([42], dtype=np.uint64), [1, 2, 3], 3, lambda n: next(coeff))
    assert shares[:, 0].tolist() == [42 + 5 + 7, 42 + 10 + 28, 42 + 15 + 63]
