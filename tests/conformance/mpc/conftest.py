"""Fixtures of the MPC conformance suite: every protocol × party count."""

from __future__ import annotations

import pytest
from mpc_harness import SECURE, SETUPS, Setup


@pytest.fixture(params=SETUPS, ids=lambda s: s.id)
def setup(request: pytest.FixtureRequest) -> Setup:
    return request.param


@pytest.fixture(params=SECURE, ids=lambda s: s.id)
def secure(request: pytest.FixtureRequest) -> Setup:
    return request.param
