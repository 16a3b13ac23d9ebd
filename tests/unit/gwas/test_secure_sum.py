"""Secure summation among GWAS sites: limb encoding, sums over 3 and 5 sites, failures."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import veil
from veil.errors import ConfigError, DataError, PartyFailed, ProtocolError
from veil.gwas.secure_sum import (
    MAX_ABS,
    REVEAL_KIND,
    SecureSum,
    check_sites,
    decode,
    encode,
    quantise,
    tag_of,
)

finite = st.floats(
    min_value=-MAX_ABS, max_value=MAX_ABS, exclude_min=True, exclude_max=True, allow_nan=False
)
special = st.sampled_from(
    [0.0, -0.0, 1.0, -1.0, 2.0**-56, -(2.0**-56), 2.0**-57, -(2.0**-57), 1.5 * 2.0**-56,
     -1e-300, 5e-324, -1e-10, 2.0**61.999, -(2.0**61.999), 2.0**53 + 2, -(2.0**53) - 2,
     123456789.0, -987654321.0]
)  # fmt: skip
values = st.one_of(finite, special, st.integers(-(2**53), 2**53).map(float))


def exact_sum(parts: list[np.ndarray]) -> np.ndarray:
    """Correctly rounded sum of the quantised values (Python integers, no float error)."""
    ints = [[int(x) for x in np.rint(p * 2.0**56)] for p in parts]
    return np.array([float(sum(col)) / 2.0**56 for col in zip(*ints, strict=True)])


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.integers(1, 40), elements=values))
def test_round_trip_is_the_quantised_value(v: np.ndarray) -> None:
    enc = encode(v)
    assert enc.shape == (3, v.size) and enc.dtype == np.uint64
    assert np.all(enc[0] < 2**40) and np.all(enc[1] < 2**40)
    hi = enc[2].view(np.int64)
    assert np.all((hi >= -(2**38)) & (hi < 2**38))
    np.testing.assert_array_equal(decode(enc), quantise(v))


@settings(max_examples=200, deadline=None)
@given(st.lists(arrays(np.float64, 12, elements=values), min_size=2, max_size=7))
def test_sum_of_encodings_is_the_exact_sum(parts: list[np.ndarray]) -> None:
    total = np.zeros((3, 12), dtype=np.uint64)
    for p in parts:
        total += encode(p)
    got, ref = decode(total), exact_sum(parts)
    # one rounding of the exact integer sum, and at most two ulps more from the evaluation
    np.testing.assert_allclose(got, ref, rtol=4.5e-16, atol=0)


def test_integers_sum_exactly_and_negatives_cancel() -> None:
    rng = np.random.default_rng(1)
    parts = [rng.integers(-(10**9), 10**9, size=500).astype(np.float64) for _ in range(5)]
    total = sum((encode(p) for p in parts), np.zeros((3, 500), dtype=np.uint64))
    np.testing.assert_array_equal(decode(total), np.sum(parts, axis=0))
    tiny = np.array([-1e-10, 3e-12, -(2.0**-50)])
    np.testing.assert_array_equal(decode(encode(tiny) + encode(-tiny)), np.zeros(3))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, MAX_ABS, -(2.0**63)])
def test_encode_refuses_what_it_cannot_sum(bad: float) -> None:
    with pytest.raises(DataError, match=r"site 'h2': aggregate 'k'.*index 1"):
        encode(np.array([1.0, bad]), where="site 'h2': aggregate 'k'")


def test_site_lists() -> None:
    with pytest.raises(ConfigError, match="allow-two-sites"):
        check_sites(["a", "b"], allow_two_sites=False)
    assert check_sites(["a", "b"], allow_two_sites=True) == ("a", "b")
    with pytest.raises(ConfigError, match="two distinct"):
        check_sites(["a", "a", "b"], allow_two_sites=False)
    assert tag_of("gwas/logistic/3") == "gwas.logistic.iter3"
    assert tag_of("gwas/logistic/null/0") == "gwas.logistic.null.iter0"
    assert tag_of("gwas/counts") == "gwas.counts"


def local_values(party: str, size: int, scale: float) -> np.ndarray:
    rng = np.random.default_rng(sum(party.encode()))
    return rng.normal(size=size) * scale * 10.0 ** rng.integers(-6, 6, size=size)


def sum_job(ctx, sizes, scale=1.0, nan_at=None, allow_two=False):  # type: ignore[no-untyped-def]
    secure = SecureSum(ctx, ctx.cluster, allow_two_sites=allow_two, timeout=30)
    out = []
    for k, size in enumerate(sizes):
        x = local_values(ctx.party, size, scale) + k
        if ctx.party == nan_at and k == 1:
            x[3] = np.nan
        out.append(secure(f"gwas/test/{k}", x))
    return out


@pytest.mark.parametrize("n_sites", [3, 5])
def test_sum_over_sites_equals_the_float_sum(n_sites: int) -> None:
    parties = [f"h{i}" for i in range(1, n_sites + 1)]
    sizes = [1, 257, 40]
    res = veil.simulate_detailed(sum_job, parties, params={"sizes": sizes, "scale": 1e3})
    for k, size in enumerate(sizes):
        parts = [local_values(p, size, 1e3) + k for p in parties]
        ref = np.sum(parts, axis=0)
        for p in parties:
            np.testing.assert_allclose(res.results[p][k], ref, rtol=1e-12, atol=1e-12)
        # every site gets the bit-identical sum
        assert all(np.array_equal(res.results[p][k], res.results[parties[0]][k]) for p in parties)
    for p in parties:
        entries = res.ledgers[p]
        assert [e["tag"] for e in entries] == [f"gwas.test.iter{k}" for k in range(3)]
        assert all(e["value"]["kind"] == REVEAL_KIND for e in entries)
        assert all(sorted(e["to"]) == parties for e in entries)
        # one masked vector of 3 uint64 limbs per value to each of the other sites
        sent = res.stats[p]["bytes_sent"]
        payload = 24 * sum(sizes) * (n_sites - 1)
        assert payload < sent < payload + 2000 * (n_sites - 1)


def test_nan_at_one_site_names_it_and_stops_the_others() -> None:
    t = time.perf_counter()
    with pytest.raises(PartyFailed) as info:
        veil.simulate(
            sum_job, ["h1", "h2", "h3"], params={"sizes": [5, 6, 7], "nan_at": "h2"}, timeout=60
        )
    assert time.perf_counter() - t < 10  # the others stopped at once, not after the timeout
    exc = info.value
    assert exc.party == "h2" and exc.error_type == "DataError"
    assert "site 'h2': aggregate 'gwas/test/1'" in (exc.error or "")
    assert "NaN" in (exc.error or "")


def test_two_sites_refused_unless_allowed() -> None:
    with pytest.raises(PartyFailed, match="allow-two-sites"):
        veil.simulate(sum_job, ["a", "b"], params={"sizes": [3]}, timeout=10)
    res = veil.simulate(sum_job, ["a", "b"], params={"sizes": [3], "allow_two": True})
    ref = local_values("a", 3, 1.0) + local_values("b", 3, 1.0)
    np.testing.assert_allclose(res["a"][0], ref, rtol=1e-12)


def test_sites_disagreeing_on_the_shape_get_a_protocol_error() -> None:
    def job(ctx):  # type: ignore[no-untyped-def]
        secure = SecureSum(ctx, ctx.cluster, timeout=10)
        return secure("gwas/x", np.ones(4 if ctx.party == "h3" else 3))

    with pytest.raises(PartyFailed) as info:
        veil.simulate(job, ["h1", "h2", "h3"], timeout=10)
    assert info.value.error_type == "ProtocolError"
    assert "sent a masked vector of shape" in (info.value.error or "")
    with pytest.raises(ProtocolError):
        decode(np.zeros((2, 3), dtype=np.uint64))
