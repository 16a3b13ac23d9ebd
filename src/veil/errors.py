"""Errors a user can act on.

Every error names what went wrong (the party, the file, the peer) and what to do. The hierarchy is
small on purpose; catch :class:`VeilError` to catch them all.
"""

from __future__ import annotations


class VeilError(Exception):
    """Base class of every error veil raises on purpose."""


class ConfigError(VeilError):
    """A cluster config, certificate, option or argument is wrong (fix it and re-run)."""


class DataError(VeilError):
    """An input file or table is unusable: missing column, duplicate ids, malformed rows, ..."""


class ProtocolError(VeilError):
    """A protocol ran into a state it cannot continue from (bad message, wrong shape, misuse)."""


class PeerError(VeilError):
    """A peer is unreachable, died, timed out, sent something malformed, or failed its job.

    Attributes
    ----------
    party:
        The name of the peer at fault.
    """

    def __init__(self, party: str, message: str) -> None:
        super().__init__(f"party {party!r}: {message}")
        self.party = party


class RevealDenied(VeilError):
    """The reveal policy forbids revealing this value to these parties (recorded in the ledger)."""


class PrivacyBudgetExceeded(VeilError):
    """A differentially private release would exceed the job's privacy budget."""


class PartyFailed(VeilError):
    """A party's job raised; carries the party name, the error and its formatted traceback.

    Attributes
    ----------
    party:
        The party whose failure stopped the job.
    error_type, error:
        The original exception's class name and message (``None`` if the process died).
    traceback_text:
        The formatted traceback (or what is known of the failure).
    """

    def __init__(
        self,
        party: str,
        traceback_text: str,
        *,
        error_type: str | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(f"party {party!r} failed:\n{traceback_text}")
        self.party = party
        self.traceback_text = traceback_text
        self.error_type = error_type
        self.error = error


__all__ = [
    "ConfigError",
    "DataError",
    "PartyFailed",
    "PeerError",
    "PrivacyBudgetExceeded",
    "ProtocolError",
    "RevealDenied",
    "VeilError",
]
