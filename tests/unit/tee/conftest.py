"""Fixtures: every platform's real sample at a clock inside its validity windows."""

from __future__ import annotations

import pytest
from tee_samples import SAMPLES, Sample


@pytest.fixture(params=sorted(SAMPLES))
def sample(request: pytest.FixtureRequest) -> Sample:
    """Every platform's real sample, in turn."""
    return SAMPLES[request.param]()


@pytest.fixture
def sgx() -> Sample:
    return SAMPLES["sgx"]()


@pytest.fixture
def tdx() -> Sample:
    return SAMPLES["tdx"]()


@pytest.fixture
def snp() -> Sample:
    return SAMPLES["sev-snp"]()


@pytest.fixture
def nitro() -> Sample:
    return SAMPLES["nitro"]()
