"""Lazy access to the optional DP dependencies (``dp-accounting``, ``opendp``).

``veil.dp`` is importable without its extra; the first call that needs an accountant or a noise
sampler imports the package here and, when it is missing, raises :class:`~veil.errors.ConfigError`
telling the user which extra to install. Modules are returned as :class:`types.ModuleType` so the
callers stay fully typed without stubs for these packages.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from veil.errors import ConfigError

_INSTALL_DP = "pip install 'veil[dp]'"

#: The only OpenDP feature veil turns on. ``contrib`` admits components whose proofs are written
#: but not yet reviewed by OpenDP's vetting committee; the Laplace and Gaussian measurements veil
#: uses live there in OpenDP 0.16. veil never enables ``floating-point`` (which would admit
#: samplers open to floating-point attacks, Mironov 2012) nor ``honest-but-curious``.
OPENDP_FEATURES: tuple[str, ...] = ("contrib",)


def dp_accounting() -> ModuleType:
    """Return the ``dp_accounting`` package, or raise an actionable :class:`ConfigError`."""
    try:
        return import_module("dp_accounting")
    except ImportError as exc:
        raise ConfigError(
            f"veil.dp needs the 'dp-accounting' package for privacy accounting: {_INSTALL_DP}"
        ) from exc


def opendp() -> ModuleType:
    """Return ``opendp.prelude`` with :data:`OPENDP_FEATURES` enabled.

    ``opendp.prelude.enable_features`` sets a process-wide flag inside OpenDP (idempotent); it
    is called here, at first use, never at import time.
    """
    try:
        prelude = import_module("opendp.prelude")
    except ImportError as exc:
        raise ConfigError(
            f"veil.dp needs the 'opendp' package for its noise samplers: {_INSTALL_DP}"
        ) from exc
    prelude.enable_features(*OPENDP_FEATURES)
    return prelude
