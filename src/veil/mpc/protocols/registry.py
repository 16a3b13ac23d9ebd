"""The typed registry of MPC protocols: an enum of names and a table that refuses unknown or
duplicate entries."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from veil.errors import ConfigError
from veil.mpc.comm import Comm
from veil.mpc.protocols.aby3.protocol import Aby3
from veil.mpc.protocols.base import Protocol
from veil.mpc.protocols.ref.protocol import Ref
from veil.mpc.protocols.semi2k.protocol import Semi2k

Maker = Callable[..., Protocol]


class ProtocolKind(StrEnum):
    """Names of the protocols veil ships."""

    REF = "ref"
    SEMI2K = "semi2k"
    ABY3 = "aby3"

    @classmethod
    def parse(cls, name: str | ProtocolKind) -> ProtocolKind:
        """The kind named ``name``; :class:`ConfigError` listing the known names otherwise."""
        try:
            return cls(name)
        except ValueError:
            known = ", ".join(k.value for k in cls)
            raise ConfigError(f"unknown MPC protocol {name!r}; known protocols: {known}") from None


class Registry:
    """Protocol constructors by kind; each kind is registered exactly once."""

    def __init__(self) -> None:
        self._makers: dict[ProtocolKind, Maker] = {}

    def register(self, kind: ProtocolKind, maker: Maker) -> None:
        """Register ``maker`` for ``kind``; :class:`ConfigError` if it is already registered."""
        if kind in self._makers:
            raise ConfigError(f"MPC protocol {kind.value!r} is registered twice")
        self._makers[kind] = maker

    def kinds(self) -> tuple[ProtocolKind, ...]:
        """Registered kinds."""
        return tuple(self._makers)

    def create(
        self,
        name: str | ProtocolKind,
        comm: Comm,
        parties: tuple[str, ...],
        frac_bits: int,
        *,
        dealer: str | None = None,
        **options: Any,
    ) -> Protocol:
        """Construct the protocol ``name`` for this party (collective: all parties call it)."""
        kind = ProtocolKind.parse(name)
        if kind not in self._makers:
            raise ConfigError(f"MPC protocol {kind.value!r} is not registered")
        try:
            return self._makers[kind](comm, parties, frac_bits, dealer=dealer, **options)
        except TypeError as e:
            raise ConfigError(f"bad options for MPC protocol {kind.value!r}: {e}") from None


def default_registry() -> Registry:
    """A fresh registry holding ref, semi2k and aby3."""
    reg = Registry()
    reg.register(ProtocolKind.REF, Ref)
    reg.register(ProtocolKind.SEMI2K, Semi2k)
    reg.register(ProtocolKind.ABY3, Aby3)
    return reg


__all__ = ["ProtocolKind", "Registry", "default_registry"]
