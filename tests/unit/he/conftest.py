"""Shared fixtures: small (insecure, 512-bit) keys of both schemes, generated once per session."""

from __future__ import annotations

import pytest

import veil.he as he
from veil.he.keys import PrivateKey, PublicKey


@pytest.fixture(scope="session", params=["paillier", "ou"])
def keypair(request: pytest.FixtureRequest) -> tuple[PublicKey, PrivateKey]:
    """A 512-bit key pair of each scheme (test-only size)."""
    return he.keygen(request.param, 512, insecure=True)


@pytest.fixture(scope="session")
def paillier_keys() -> tuple[PublicKey, PrivateKey]:
    return he.keygen("paillier", 512, insecure=True)


@pytest.fixture(scope="session")
def ou_keys() -> tuple[PublicKey, PrivateKey]:
    return he.keygen("ou", 512, insecure=True)
