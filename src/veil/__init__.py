"""veil: privacy-preserving computation across institutions — compute together, reveal nothing.

The user API is SPMD: every party runs the same ``job(ctx)``; see :class:`veil.Context` and
:func:`veil.simulate`.
"""

from veil import errors

__version__ = "0.1.0"

__all__ = ["__version__", "errors"]
