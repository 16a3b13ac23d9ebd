import numpy as np

from veil.mpc.protocols.semi2k.boolean import LEVELS, bit_reverse, halves


def test_bit_reverse_is_the_index_reversal_involution() -> None:
    for s in range(64):
        want = int(f"{s:06b}"[::-1], 2)
        assert bit_reverse(np.array([1 << s], np.uint64))[0] == np.uint64(1 << want)
    x = np.random.default_rng(3).integers(0, 2**64, 1000, dtype=np.uint64)
    assert np.array_equal(bit_reverse(bit_reverse(x)), x)


def test_plain_carry_tree_on_reversed_words_equals_addition_carry() -> None:
    # The tree's data flow, evaluated in the clear: carry into bit 63 of a + b.
    rng = np.random.default_rng(4)
    a = rng.integers(0, 2**63, 2000, dtype=np.uint64)
    b = rng.integers(0, 2**63, 2000, dtype=np.uint64)
    g, p = bit_reverse(a & b), bit_reverse(a ^ b) | np.uint64(1 << 63)
    for level, (_dt, width) in enumerate(LEVELS):
        odt = LEVELS[level + 1][0] if level + 1 < len(LEVELS) else np.uint8
        g_lo, g_hi = halves(g, width, odt)
        p_lo, p_hi = halves(p, width, odt)
        g, p = g_hi ^ (p_hi & g_lo), p_hi & p_lo
    assert np.array_equal(g.astype(np.uint64), (a + b) >> np.uint64(63))
