"""Fixed point in Z_2^k: round trip, exact ring sums, clipping, headroom refusal."""

from __future__ import annotations

import numpy as np
import pytest

from veil.errors import ConfigError, DataError
from veil.fl.secagg import SecAggConfig
from veil.fl.secagg.encoding import FixedPoint, check_headroom, clip_l2


@pytest.mark.parametrize("ring_bits,frac_bits", [(64, 24), (32, 16), (64, 40)])
def test_roundtrip_and_sum(ring_bits: int, frac_bits: int) -> None:
    fp = FixedPoint(frac_bits, ring_bits)
    rng = np.random.default_rng(0)
    xs = rng.uniform(-1, 1, size=(8, 1000))
    enc = [fp.encode(x) for x in xs]
    assert enc[0].dtype == fp.dtype
    np.testing.assert_allclose(fp.decode(enc[0]), xs[0], atol=2.0 ** -(frac_bits + 1))
    total = enc[0].copy()
    for e in enc[1:]:
        total += e  # wraps mod 2^k
    tol = len(xs) * 2.0 ** -(frac_bits + 1)
    np.testing.assert_allclose(fp.decode(total), xs.sum(axis=0), rtol=0, atol=tol)


def test_headroom_boundary_is_exact() -> None:
    fp = FixedPoint(16, 32)
    # n * round(bound * 2^16) must be <= 2^31 - 1
    check_headroom(2, 16383.0, fp)  # 2 * 16383 * 65536 = 2^31 - 2^17 fits
    with pytest.raises(ConfigError, match="overflow"):
        check_headroom(2, 16384.0, fp)  # 2 * 2^30 = 2^31 does not
    # and the bound really is tight: at the limit the sum decodes correctly
    x = np.array([16383.0, -16383.0])
    assert fp.decode(fp.encode(x) + fp.encode(x)).tolist() == [32766.0, -32766.0]


def test_config_refuses_overflowing_round() -> None:
    cfg = SecAggConfig(clip=1000.0, ring_bits=32, frac_bits=16)
    with pytest.raises(ConfigError, match="could overflow"):
        cfg.plan("r", [f"c{i}" for i in range(40)])
    cfg.plan("r", [f"c{i}" for i in range(30)])  # 30 * 1000 * 2^16 < 2^31
    heavy = SecAggConfig(clip=1.0, max_weight=2.0**38)  # weights count in the bound
    with pytest.raises(ConfigError, match="could overflow"):
        heavy.plan("r", ["a", "b", "c"])


def test_clip_l2() -> None:
    v = np.array([3.0, 4.0])
    np.testing.assert_allclose(clip_l2(v, 1.0, party="p"), [0.6, 0.8])
    np.testing.assert_array_equal(clip_l2(v, 10.0, party="p"), v)
    with pytest.raises(DataError, match=r"'bank3'.*NaN/Inf.*index 1"):
        clip_l2(np.array([0.0, np.nan, np.inf]), 1.0, party="bank3")
    with pytest.raises(DataError, match="1-D"):
        clip_l2(np.zeros((2, 2)), 1.0, party="p")


def test_encode_clamps_to_the_proven_bound() -> None:
    fp = FixedPoint(24, 64)
    e = fp.encode(np.array([1.0 + 1e-6, -5.0]), bound=1.0)
    assert fp.decode(e).tolist() == [1.0, -1.0]


def test_bad_formats() -> None:
    with pytest.raises(ConfigError):
        FixedPoint(24, 48)
    with pytest.raises(ConfigError):
        FixedPoint(63, 64)
