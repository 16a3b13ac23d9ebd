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
    MAX_SITES,
    NARROW,
    REVEAL_KIND,
    WIDE,
    Layout,
    SecureSum,
    check_sites,
    count_bits,
    decode,
    encode,
    layout_for,
    pack_counts,
    quantise,
    tag_of,
    unpack_counts,
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


@pytest.mark.parametrize("layout", [NARROW, WIDE])
@settings(max_examples=300, deadline=None)
@given(v=arrays(np.float64, st.integers(1, 40), elements=values))
def test_round_trip_is_the_quantised_value(layout: Layout, v: np.ndarray) -> None:
    enc = encode(v, layout)
    b, top_bits = layout.limb_bits, 118 - (layout.n_limbs - 1) * layout.limb_bits
    assert enc.shape == (layout.n_limbs, v.size) and enc.dtype == np.uint64
    assert all(np.all(enc[k] < 2**b) for k in range(layout.n_limbs - 1))
    hi = enc[-1].view(np.int64)
    assert np.all((hi >= -(2**top_bits)) & (hi < 2**top_bits))
    np.testing.assert_array_equal(decode(enc, layout), quantise(v))


@pytest.mark.parametrize("layout", [NARROW, WIDE])
@settings(max_examples=200, deadline=None)
@given(parts=st.lists(arrays(np.float64, 12, elements=values), min_size=2, max_size=7))
def test_sum_of_encodings_is_the_exact_sum(layout: Layout, parts: list[np.ndarray]) -> None:
    total = np.zeros((layout.n_limbs, 12), dtype=np.uint64)
    for p in parts:
        total += encode(p, layout)
    got, ref = decode(total, layout), exact_sum(parts)
    # one rounding of the exact integer sum, and at most two ulps more from the evaluation
    np.testing.assert_allclose(got, ref, rtol=4.5e-16, atol=0)


def test_integers_sum_exactly_and_negatives_cancel() -> None:
    rng = np.random.default_rng(1)
    parts = [rng.integers(-(10**9), 10**9, size=500).astype(np.float64) for _ in range(5)]
    for layout in (NARROW, WIDE):
        total = sum((encode(p, layout) for p in parts), np.zeros((layout.n_limbs, 500), np.uint64))
        np.testing.assert_array_equal(decode(total, layout), np.sum(parts, axis=0))
        tiny = np.array([-1e-10, 3e-12, -(2.0**-50)])
        summed = encode(tiny, layout) + encode(-tiny, layout)
        np.testing.assert_array_equal(decode(summed, layout), np.zeros(3))


#: values whose limbs sit at the ends of their ranges: lo = 2^b - 1 (v = -2^-56), the top limb
#: at its minimum (v -> -2^62) and maximum (v -> 2^62), and mixtures
EXTREMES = np.array(
    [-(2.0**-56), -(2.0**62) + 2.0**9, 2.0**62 - 2.0**9, -(2.0**61), 2.0**61,
     -1.0 + 2.0**-56, 1.0 - 2.0**-56, (2.0**60 - 1) * 2.0**-56, -(2.0**60 - 1) * 2.0**-56]
)  # fmt: skip


def exact_int_sum(v: np.ndarray, copies: int) -> list[int]:
    return [copies * int(x) for x in np.rint(v * 2.0**56)]


@pytest.mark.parametrize("layout", [NARROW, WIDE])
def test_headroom_at_the_site_limit(layout: Layout) -> None:
    """``max_sites`` encodings at the extremes sum exactly (integer check, no float slack)."""
    n = layout.max_sites
    enc = encode(EXTREMES, layout)
    total = enc * np.uint64(n)  # n copies summed in the ring (multiplication mod 2^64)
    if n <= 64:  # and equal to n additions, as the sites do them
        assert np.array_equal(total, sum((enc for _ in range(n)), np.zeros_like(enc)))
    got = decode(total, layout)
    ref = exact_int_sum(EXTREMES, n)
    np.testing.assert_array_equal(got, np.array([float(r) / 2.0**56 for r in ref]))
    # no limb sum wrapped: read as integers (lower limbs unsigned, the top one signed), the
    # ring sums of the limbs give back exactly n times each encoded integer
    b, top = layout.limb_bits, layout.n_limbs - 1
    for j, want in enumerate(ref):
        limbs = [int(total[k, j]) for k in range(top)] + [int(total[top, j].view(np.int64))]
        assert sum(limb << (k * b) for k, limb in enumerate(limbs)) == want, j
    limbs = [int(x) for x in enc[:, 0].view(np.int64)]  # -2^-56: lo = 2^b - 1, the top -1
    assert limbs[0] == 2**b - 1 and limbs[-1] == -1


def test_one_site_more_than_narrow_allows_wraps() -> None:
    """The bound is tight: at 16 sites the two-limb encoding of -2^-56 decodes wrongly."""
    v = np.array([-(2.0**-56)])
    enc = encode(v, NARROW)
    assert int(enc[0, 0]) == 2**60 - 1  # lo at its maximum
    at_limit = enc * np.uint64(NARROW.max_sites)
    assert decode(at_limit, NARROW)[0] == -NARROW.max_sites * 2.0**-56
    over = enc * np.uint64(NARROW.max_sites + 1)
    assert decode(over, NARROW)[0] != -(NARROW.max_sites + 1) * 2.0**-56
    assert layout_for(15) is NARROW and layout_for(16) is WIDE and layout_for(3) is NARROW
    assert layout_for(MAX_SITES) is WIDE
    with pytest.raises(ConfigError, match="at most"):
        layout_for(MAX_SITES + 1)


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
        # one masked vector of 2 uint64 limbs per value to each of the other sites
        sent = res.stats[p]["bytes_sent"]
        payload = 16 * sum(sizes) * (n_sites - 1)
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
        decode(np.zeros((2, 3), dtype=np.uint64), WIDE)
    with pytest.raises(ProtocolError):
        decode(np.zeros((3, 3), dtype=np.uint64), NARROW)


@pytest.mark.parametrize("bound", [0, 1, 2, 1000, 2**20 - 1, 2**20, 2**31, 2**62])
def test_packed_counts_sum_exactly_up_to_the_bound(bound: int) -> None:
    """Sums of packed counts are exact while every field sum stays <= bound (no carry)."""
    rng = np.random.default_rng(bound % 97)
    n_sites, size = 5, 37
    # split a pooled table whose entries reach the bound over the sites
    pooled = rng.integers(0, bound + 1, size=size, dtype=np.int64)
    pooled[:3] = [bound, 0, bound]
    cuts = np.sort(rng.integers(0, pooled[None, :] + 1, size=(n_sites - 1, size)), axis=0)
    edges = np.vstack([np.zeros(size, np.int64), cuts, pooled])
    parts = np.diff(edges, axis=0)
    assert np.all(parts >= 0) and np.array_equal(parts.sum(axis=0), pooled)
    words = [pack_counts(p, bound) for p in parts]
    per = 64 // count_bits(bound)
    assert words[0].shape == (-(-size // per),)
    total = sum(words[1:], words[0].copy())
    np.testing.assert_array_equal(unpack_counts(total, size, bound), pooled)


def test_packed_counts_refuse_what_they_cannot_sum() -> None:
    for bad in (np.array([1, -1]), np.array([1.0, 0.5]), np.array([3.0, np.nan]), np.array([9])):
        with pytest.raises(DataError, match=r"site 'h2'.*integer counts in \[0, 8\]"):
            pack_counts(bad, 8, where="site 'h2': aggregate 'k'")
    with pytest.raises(ConfigError, match="count bound"):
        pack_counts(np.array([1]), 2**63)
    with pytest.raises(ProtocolError, match="packed counts"):
        unpack_counts(np.zeros(3, dtype=np.uint64), 40, 1000)


def counts_job(ctx, bound):  # type: ignore[no-untyped-def]
    secure = SecureSum(ctx, ctx.cluster, timeout=30)
    rng = np.random.default_rng(sum(ctx.party.encode()))
    mine = rng.integers(0, bound // len(ctx.cluster) + 1, size=(50, 3, 4), dtype=np.int64)
    return mine, secure.counts("gwas/counts", mine, bound), secure("gwas/x", mine[0, 0] * 0.5)


def test_counts_over_sites_are_sums_only_and_compact() -> None:
    parties = ["h1", "h2", "h3"]
    res = veil.simulate_detailed(counts_job, parties, params={"bound": 1000})
    pooled = sum(res.results[p][0] for p in parties)
    for p in parties:
        got = res.results[p][1]
        assert got.dtype == np.int64 and got.shape == (50, 3, 4)
        np.testing.assert_array_equal(got, pooled)
        np.testing.assert_allclose(res.results[p][2], pooled[0, 0] * 0.5, rtol=1e-15)
        assert [e["tag"] for e in res.ledgers[p]] == ["gwas.counts", "gwas.x"]
        # 600 counts of 10 bits, 6 per word: 100 words (+ 4 floats of 2 limbs) per peer
        payload = (8 * 100 + 16 * 4) * 2
        assert payload < res.stats[p]["bytes_sent"] < payload + 4000
