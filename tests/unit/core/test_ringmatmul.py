import numpy as np
import pytest

from veil.core.ringmatmul import ring_matmul
from veil.errors import DataError

rng = np.random.default_rng(7)


def _u64(shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 2**64, shape, dtype=np.uint64)


@pytest.mark.parametrize(
    ("sa", "sb"),
    [
        ((3, 4), (4, 5)),
        ((1, 1300), (1300, 2)),
        ((2, 3, 600), (600, 4)),
        ((6,), (6, 2)),
        ((5, 6), (6,)),
        ((6,), (6,)),
    ],
)
def test_exact_against_numpy_integer_matmul(sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    a, b = _u64(sa), _u64(sb)
    assert np.array_equal(ring_matmul(a, b), np.matmul(a, b))


def test_extremes_and_empty() -> None:
    top = np.full((3, 9000), 2**64 - 1, dtype=np.uint64)  # chunking of every term is exercised
    assert np.array_equal(ring_matmul(top, top.T), top @ top.T)
    assert ring_matmul(np.zeros((0, 3), np.uint64), np.zeros((3, 2), np.uint64)).shape == (0, 2)
    assert np.array_equal(
        ring_matmul(np.zeros((2, 0), np.uint64), np.zeros((0, 2), np.uint64)), np.zeros((2, 2))
    )
    with pytest.raises(DataError):
        ring_matmul(_u64((2, 3)), _u64((4, 2)))
