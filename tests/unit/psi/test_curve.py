"""X25519 masking: known answers (RFC 7748), commutativity, hashing, workers = in-process."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from veil.errors import ConfigError, ProtocolError, VeilError
from veil.psi import _kernel, curve
from veil.psi.options import Backend
from veil.psi.parallel import Masker

ALICE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
BOB_PUB = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def _pts(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32).copy()


def test_rfc7748_diffie_hellman_vector() -> None:
    assert curve.mask(ALICE, _pts(BOB_PUB)).tobytes() == SHARED
    assert curve.mask(ALICE, _pts(BOB_PUB), 16).tobytes() == SHARED[:16]


def test_hash_to_points_known_answer() -> None:
    salt = b"\x01" * 32
    d = np.arange(32, dtype=np.uint8).reshape(2, 16)
    got = curve.hash_to_points(salt, d)
    for i in range(2):
        u = bytearray(hashlib.sha256(curve.HASH_DOMAIN + b"\x20" + salt + bytes(d[i])).digest())
        u[31] &= 0x7F
        assert got[i].tobytes() == bytes(u)
    assert (got[:, 31] < 0x80).all()
    assert not np.array_equal(got, curve.hash_to_points(b"\x02" * 32, d))  # salt matters


def test_masking_commutes_on_curve_and_twist() -> None:
    d = np.frombuffer(os.urandom(16 * 300), dtype=np.uint8).reshape(-1, 16)
    u = curve.hash_to_points(os.urandom(32), d)  # ~half of them lie on the twist
    a, b = curve.new_key(), curve.new_key()
    ab = curve.mask(b, curve.mask(a, u))
    ba = curve.mask(a, curve.mask(b, u))
    assert np.array_equal(ab, ba)
    assert len({bytes(r) for r in ab}) == len(u)
    assert np.array_equal(
        curve.hash_and_mask(a, b"s", d), curve.mask(a, curve.hash_to_points(b"s", d))
    )


def test_small_order_point_is_refused() -> None:
    bad = np.zeros((3, 32), dtype=np.uint8)
    bad[0, 0] = 9
    bad[2, 0] = 1  # u = 1 has order 4
    with pytest.raises(ProtocolError, match="point 1 .*small order"):
        curve.mask(curve.new_key(), bad)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ProtocolError):
        curve.mask(curve.new_key(), np.zeros((2, 31), dtype=np.uint8))
    with pytest.raises(ProtocolError):
        curve.mask(curve.new_key(), np.zeros((2, 32), dtype=np.uint8), 33)


def test_worker_processes_match_in_process() -> None:
    d = np.frombuffer(os.urandom(16 * 1001), dtype=np.uint8).reshape(-1, 16)
    key, salt = curve.new_key(), os.urandom(32)
    with Masker(workers=2, parallel_min_rows=10) as m:
        pts = m.hash_and_mask(key, salt, d)
        assert np.array_equal(pts, curve.hash_and_mask(key, salt, d))
        k2 = curve.new_key()
        assert np.array_equal(m.mask(k2, pts, 16), curve.mask(k2, pts, 16))
        bad = pts.copy()
        bad[700] = 0  # u = 0: small order, found in the second worker's half
        with pytest.raises(ProtocolError, match="point 700 "):
            m.mask(k2, bad, 16)
        assert np.array_equal(m.mask(k2, pts[:5], 32), curve.mask(k2, pts[:5]))  # still usable


def test_dead_worker_is_reported() -> None:
    pts = curve.hash_to_points(b"s", np.zeros((100, 16), dtype=np.uint8) + np.arange(100)[:, None])
    key = curve.new_key()
    with Masker(workers=2, parallel_min_rows=10) as m:
        m.mask(key, pts, 16)
        victim = m._procs[1]
        victim.kill()
        victim.wait()
        with pytest.raises(VeilError, match="PSI worker process"):
            m.mask(key, pts, 16)


IPP_MB = _kernel.find_ipp_mb()
needs_ipp = pytest.mark.skipif(IPP_MB is None, reason="Intel crypto_mb / AVX-512 IFMA not here")


@needs_ipp
def test_ipp_mb_kernel_matches_openssl() -> None:
    assert IPP_MB is not None
    assert curve.mask(ALICE, _pts(BOB_PUB), kernel=IPP_MB).tobytes() == SHARED
    d = np.frombuffer(os.urandom(16 * 203), dtype=np.uint8).reshape(-1, 16)  # not a multiple of 8
    key, salt = curve.new_key(), os.urandom(32)
    ref = curve.hash_and_mask(key, salt, d)
    assert np.array_equal(curve.hash_and_mask(key, salt, d, kernel=IPP_MB), ref)
    k2 = curve.new_key()
    assert np.array_equal(curve.mask(k2, ref, 16, kernel=IPP_MB), curve.mask(k2, ref, 16))
    assert curve.mask(k2, ref[:0], 16, kernel=IPP_MB).shape == (0, 16)
    with Masker(workers=2, parallel_min_rows=10, backend=Backend.IPP_MB) as m:
        assert m.backend_name == "ipp-mb"
        assert np.array_equal(m.mask(k2, ref, 16), curve.mask(k2, ref, 16))


@needs_ipp
def test_ipp_mb_refuses_small_order_points() -> None:
    assert IPP_MB is not None
    good = curve.hash_to_points(b"s", np.zeros((12, 16), dtype=np.uint8) + np.arange(12)[:, None])
    for bad_u in (0, 1):
        pts = good.copy()
        pts[10] = 0
        pts[10, 0] = bad_u
        with pytest.raises(ProtocolError, match="point 10 .*small order"):
            curve.mask(curve.new_key(), pts, kernel=IPP_MB)


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Masker(backend=Backend.OPENSSL).backend_name == "openssl"
    monkeypatch.setattr(_kernel, "find_ipp_mb", lambda: None)
    assert Masker(backend=Backend.AUTO).backend_name == "openssl"
    with pytest.raises(ConfigError, match="ipp-crypto"):
        Masker(backend=Backend.IPP_MB)
