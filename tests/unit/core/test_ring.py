import numpy as np

from veil.core import ring


def test_signed_roundtrip_and_wrap() -> None:
    x = np.array([-5, 0, 7, -(2**63), 2**63 - 1], dtype=np.int64)
    r = ring.from_signed(x)
    assert r.dtype == np.uint64
    assert np.array_equal(ring.to_signed(r), x)
    assert ring.from_signed(-1)[()] == np.uint64(2**64 - 1)


def test_shifts() -> None:
    x = ring.from_signed(np.array([-8, -7, 7, 8], dtype=np.int64))
    assert np.array_equal(ring.to_signed(ring.arshift(x, 2)), [-2, -2, 1, 2])
    assert np.array_equal(ring.msb(x), [1, 1, 0, 0])
    assert ring.lshift(np.array([3], np.uint64), 63)[0] == np.uint64(1 << 63)
    assert ring.rshift(np.array([2**64 - 1], np.uint64), 60)[0] == 15
