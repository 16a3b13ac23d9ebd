import numpy as np
import pytest

from veil.core import sharing
from veil.core.prg import Prg, new_seed
from veil.errors import ConfigError


def test_additive_xor_replicated_roundtrip() -> None:
    prg = Prg(new_seed())
    x = np.arange(-5, 5, dtype=np.int64).view(np.uint64)
    for n in (1, 2, 5):
        assert np.array_equal(sharing.additive_reconstruct(sharing.additive_share(x, n, prg)), x)
        assert np.array_equal(sharing.xor_reconstruct(sharing.xor_share(x, n, prg)), x)
    pairs = sharing.replicated_share(x, prg)
    assert np.array_equal(sharing.replicated_reconstruct(pairs), x)
    bad = [pairs[0], (pairs[1][0], pairs[1][1] + np.uint64(1)), pairs[2]]
    with pytest.raises(ConfigError, match="disagree"):
        sharing.replicated_reconstruct(bad)


def test_single_share_looks_uniform() -> None:
    prg = Prg(new_seed())
    x = np.zeros(20000, dtype=np.uint64)
    s0 = sharing.additive_share(x, 2, prg)[0]
    # the top bit of a share of zero is a fair coin
    assert 0.47 < float(np.mean(s0 >> np.uint64(63))) < 0.53
