"""veil: privacy-preserving computation across institutions — compute together, reveal nothing.

The user API is SPMD: every party runs the same ``job(ctx)``; see :class:`veil.Context` and
:func:`veil.simulate`.
"""

from veil import errors
from veil.runtime.context import Context
from veil.runtime.party import Party, PartyObject
from veil.runtime.policy import RevealPolicy
from veil.runtime.simulate import SimulationResult, simulate, simulate_detailed

__version__ = "0.1.0"

__all__ = [
    "Context",
    "Party",
    "PartyObject",
    "RevealPolicy",
    "SimulationResult",
    "__version__",
    "errors",
    "simulate",
    "simulate_detailed",
]
