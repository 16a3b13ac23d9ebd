import numpy as np
import pytest

from veil.core.prg import Prg, new_seed
from veil.errors import ConfigError


def test_known_answer_aes_ctr() -> None:
    # AES-128(key = 0^128) of the zero block: the first keystream block with counter 0.
    assert Prg(bytes(16)).random_bytes(16).hex() == "66e94bd4ef8a2c3b884cfa59ca342b2e"


def test_streams_continue_and_agree() -> None:
    seed = new_seed()
    a, b = Prg(seed), Prg(seed)
    whole = a.random_u64(10)
    assert np.array_equal(whole[:4], b.random_u64(4))
    assert np.array_equal(whole[4:], b.random_u64((2, 3)).reshape(-1))
    assert a.random_words((5,), np.uint8).dtype == np.uint8
    assert not np.array_equal(Prg(new_seed()).random_u64(4), Prg(new_seed()).random_u64(4))


def test_bad_seed() -> None:
    with pytest.raises(ConfigError):
        Prg(b"short")
