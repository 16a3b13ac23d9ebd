import numpy as np
import pytest

from veil.core.ringmatmul import DIRECT_MAX_MACS, ring_matmul
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
@pytest.mark.parametrize("direct", [-1, DIRECT_MAX_MACS])
def test_exact_against_numpy_integer_matmul(
    sa: tuple[int, ...], sb: tuple[int, ...], direct: int
) -> None:
    a, b = _u64(sa), _u64(sb)
    assert np.array_equal(ring_matmul(a, b, direct_max_macs=direct), np.matmul(a, b))


def test_large_product_takes_the_limb_path_and_stays_exact() -> None:
    a, b = _u64((130, 140)), _u64((140, 150))  # 2.7M multiply-adds > DIRECT_MAX_MACS
    assert DIRECT_MAX_MACS < 130 * 140 * 150
    assert np.array_equal(ring_matmul(a, b), np.matmul(a, b))


@pytest.mark.parametrize("direct", [-1, DIRECT_MAX_MACS])
def test_extremes_and_empty(direct: int) -> None:
    top = np.full((3, 9000), 2**64 - 1, dtype=np.uint64)  # chunking of every term is exercised
    assert np.array_equal(ring_matmul(top, top.T, direct_max_macs=direct), top @ top.T)
    assert ring_matmul(np.zeros((0, 3), np.uint64), np.zeros((3, 2), np.uint64)).shape == (0, 2)
    assert np.array_equal(
        ring_matmul(np.zeros((2, 0), np.uint64), np.zeros((0, 2), np.uint64)), np.zeros((2, 2))
    )
    with pytest.raises(DataError):
        ring_matmul(_u64((2, 3)), _u64((4, 2)))


@pytest.mark.parametrize(
    "value",
    [
        2**21
        + 2**43
        + 2**63,  # every balanced limb at its most negative value (−2^21, −2^21, −2^19)
        2**21 - 1 + (2**21 - 1) * 2**22 + (2**19 - 1) * 2**44,  # every limb at its largest
        2**63,
        1,
    ],
)
def test_limb_extremes_stay_exact_over_long_inner_dimensions(value: int) -> None:
    a = np.full((2, 9000), value, dtype=np.uint64)
    b = np.full((9000, 3), value, dtype=np.uint64)
    b[::7] = np.uint64(2**64 - 1)
    assert np.array_equal(ring_matmul(a, b, direct_max_macs=-1), np.matmul(a, b))
