import numpy as np
import pytest

from veil.core.fixedpoint import FixedPoint
from veil.errors import ConfigError, DataError


def test_roundtrip_within_half_ulp() -> None:
    fx = FixedPoint()
    x = np.random.default_rng(0).uniform(-1e6, 1e6, 1000)
    assert np.max(np.abs(fx.decode(fx.encode(x)) - x)) <= fx.resolution / 2
    assert fx.decode(fx.encode(-1.5))[()] == -1.5


def test_configurable_bits_and_errors() -> None:
    fx = FixedPoint(10)
    assert fx.encode(1.0)[()] == 1024
    with pytest.raises(ConfigError):
        FixedPoint(0)
    with pytest.raises(DataError, match="bound"):
        fx.encode(fx.bound)
    with pytest.raises(DataError, match="NaN"):
        fx.encode([np.nan])
    assert fx.encode(np.zeros((0, 3))).shape == (0, 3)
