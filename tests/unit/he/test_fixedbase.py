"""Fixed-base tables agree with plain modular exponentiation for every window size."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import ProtocolError
from veil.he.fixedbase import FixedBaseTable

MOD = (1 << 521) - 1  # a Mersenne prime: any odd modulus works


@settings(max_examples=40, deadline=None)
@given(w=st.integers(1, 12), e=st.integers(0, 2**300), base=st.integers(2, 2**600))
def test_pow_matches_builtin(w: int, e: int, base: int) -> None:
    t = FixedBaseTable(base, MOD, 256, window_bits=w)
    assert t.pow(e) == pow(base, e, MOD)  # above max_bits it falls back to powmod


@settings(max_examples=30, deadline=None)
@given(
    w=st.integers(1, 12),
    es=st.lists(st.integers(0, 2**300), min_size=0, max_size=20),
)
def test_pow_many_matches_pow(w: int, es: list[int]) -> None:
    t = FixedBaseTable(7, MOD, 256, window_bits=w)
    assert t.pow_many(es) == [pow(7, e, MOD) for e in es]


def test_pow_many_spans_batches() -> None:
    t = FixedBaseTable(5, MOD, 40, window_bits=11)
    es = list(range(0, 3 * 1024 + 17))
    assert t.pow_many(es) == [pow(5, e, MOD) for e in es]
    with pytest.raises(ProtocolError):
        t.pow_many([3, -1])


def test_lazy_rows_and_errors() -> None:
    t = FixedBaseTable(3, MOD, 64)
    assert t.pow(0) == 1 and t.pow(5) == 243
    assert len(t._rows) == 1  # only the first byte window was needed
    t.build()
    assert len(t._rows) == t.n_windows == 8
    with pytest.raises(ProtocolError):
        t.pow(-1)
    with pytest.raises(ProtocolError):
        FixedBaseTable(3, 1, 8)
    with pytest.raises(ProtocolError):
        FixedBaseTable(3, MOD, 8, window_bits=17)


def test_lazy_growth_is_thread_safe() -> None:
    """Parties simulated as threads share one table; concurrent growth must not corrupt it."""
    t = FixedBaseTable(3, MOD, 512, window_bits=6)
    exps = [(1 << b) - 12345 for b in range(40, 512, 7)]
    errors: list[int] = []

    def work() -> None:
        for e in exps:
            if t.pow(e) != pow(3, e, MOD):
                errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(t._rows) == -(-max(exps).bit_length() // 6)  # no duplicated rows
