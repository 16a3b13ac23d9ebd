"""Plaintext parties (the PYU device) and the values they own.

``alice = ctx.parties("alice")[0]`` is a :class:`Party`. ``alice(fn)(*args)`` runs ``fn`` only in
alice's process and returns a :class:`PartyObject`: the value at alice, an opaque handle at every
other party. A party's value leaves it only through :meth:`PartyObject.to` (an explicit plaintext
move to another party, or an import into a device, which secret-shares or encrypts it) or through
``ctx.reveal`` — each checked against the reveal policy and written to the audit ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from veil.errors import ProtocolError

if TYPE_CHECKING:
    from veil.runtime.context import Context


@runtime_checkable
class Device(Protocol):
    """A virtual device a party's value can be imported into (MPC, HE, TEE)."""

    def import_party_object(self, obj: PartyObject) -> Any:
        """Called at every party; the owner contributes ``obj.value``, the others its handle."""


class Party:
    """A plaintext party of the job (SecretFlow's PYU). Call it to run code there."""

    def __init__(self, ctx: Context, name: str) -> None:
        self._ctx = ctx
        self.name = name

    @property
    def is_me(self) -> bool:
        """True in this party's own process."""
        return self._ctx.party == self.name

    def __call__(self, fn: Callable[..., Any], *, num_returns: int = 1) -> Callable[..., Any]:
        """Wrap ``fn`` to run only at this party.

        Arguments that are :class:`PartyObject` must be owned by this party (move them first with
        ``.to(party)``); other arguments are passed as they are. With ``num_returns > 1`` the
        wrapper returns a tuple of handles, one per returned item.
        """

        def run(*args: Any, **kwargs: Any) -> Any:
            for a in (*args, *kwargs.values()):
                if isinstance(a, PartyObject) and a.owner != self.name:
                    raise ProtocolError(
                        f"{getattr(fn, '__name__', 'function')} runs at {self.name!r} but an "
                        f"argument is owned by {a.owner!r}; move it first with .to({self.name})"
                    )
            if self.is_me:
                result = fn(
                    *(_unwrap(a) for a in args), **{k: _unwrap(v) for k, v in kwargs.items()}
                )
            else:
                result = None
            if num_returns == 1:
                return PartyObject(self._ctx, self.name, result)
            if self.is_me:
                if not isinstance(result, tuple | list) or len(result) != num_returns:
                    raise ProtocolError(
                        f"{getattr(fn, '__name__', 'function')} at {self.name!r} was declared "
                        f"with num_returns={num_returns} but returned {type(result).__name__}"
                    )
                return tuple(PartyObject(self._ctx, self.name, r) for r in result)
            return tuple(PartyObject(self._ctx, self.name, None) for _ in range(num_returns))

        return run

    def __repr__(self) -> str:
        return f"Party({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Party) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("party", self.name))


class PartyObject:
    """A plaintext value owned by one party; a handle everywhere else."""

    def __init__(self, ctx: Context, owner: str, value: Any) -> None:
        self._ctx = ctx
        self.owner = owner
        self._value = value if ctx.party == owner else None

    @property
    def is_local(self) -> bool:
        """True at the owner, where :attr:`value` is readable."""
        return self._ctx.party == self.owner

    @property
    def value(self) -> Any:
        """The plaintext; only at the owner."""
        if not self.is_local:
            raise ProtocolError(
                f"the value is owned by {self.owner!r}; {self._ctx.party!r} holds only a handle "
                "(use ctx.reveal to open it, subject to the reveal policy)"
            )
        return self._value

    def to(self, target: Party | Device, *, tag: str = "move") -> Any:
        """Move to another party (plaintext, policy-checked, ledgered) or import into a device."""
        if isinstance(target, Party):
            return self._ctx._move(self, target.name, tag=tag)
        if isinstance(target, Device):
            return target.import_party_object(self)
        raise ProtocolError(f"cannot move a value to {target!r}: not a party or device")

    def __repr__(self) -> str:
        return f"PartyObject(owner={self.owner!r}{', local' if self.is_local else ''})"


def _unwrap(a: Any) -> Any:
    return a.value if isinstance(a, PartyObject) else a
