"""The explicit per-party context every job receives: ``job(ctx)``.

A :class:`Context` holds what one party's process knows: its name, the cluster's parties, its
link to the others, a seeded RNG, the reveal policy and the audit ledger. There are no module
globals: everything a job touches comes from ``ctx``.

Randomness: :attr:`Context.rng` is a *statistical* generator seeded per party from the job seed
(for data splits, shuffles and initialisations that should be reproducible). Cryptographic
randomness (shares, masks, keys, nonces) never comes from it; protocols draw it from the OS.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from veil.core import wire
from veil.errors import ConfigError, ProtocolError, RevealDenied
from veil.runtime.ledger import AuditLedger, ValueMeta
from veil.runtime.party import Party, PartyObject
from veil.runtime.policy import RevealPolicy
from veil.transport.base import Link


def value_meta(value: Any, kind: str = "plain") -> ValueMeta:
    """Shape and dtype of a value for the ledger (never the value itself)."""
    if isinstance(value, np.ndarray | np.generic):
        return ValueMeta(kind, tuple(int(s) for s in np.shape(value)), str(value.dtype))
    if isinstance(value, bool | int | float | complex):
        return ValueMeta(kind, (), type(value).__name__)
    if isinstance(value, list | tuple):
        return ValueMeta(kind, (len(value),), type(value).__name__)
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    return ValueMeta(
        kind,
        tuple(int(s) for s in shape) if shape is not None else None,
        str(dtype) if dtype is not None else type(value).__name__,
    )


class Context:
    """One party's view of a running job.

    Parameters
    ----------
    party:
        This process's party name.
    link:
        Its link to every other party.
    policy:
        The reveal policy this party enforces.
    ledger:
        Where this party records reveals and moves.
    seed:
        Job seed; :attr:`rng` is derived from it and the party name.
    job_id:
        Name of the job, written into ledger entries.
    budget:
        This party's :class:`veil.dp.PrivacyBudget` (optional).
    """

    def __init__(
        self,
        party: str,
        link: Link,
        *,
        policy: RevealPolicy | None = None,
        ledger: AuditLedger | None = None,
        seed: int = 0,
        job_id: str = "job",
        budget: Any = None,
    ) -> None:
        if link.party != party:
            raise ConfigError(f"link belongs to {link.party!r}, not {party!r}")
        self.party = party
        self.cluster: tuple[str, ...] = link.parties
        self.link = link
        self.policy = policy or RevealPolicy()
        self.ledger = ledger or AuditLedger(party)
        self.seed = seed
        self.job_id = job_id
        #: This party's privacy budget (a :class:`veil.dp.PrivacyBudget`) for DP releases of its
        #: own data, or ``None``: then DP releases are recorded but not capped.
        self.budget = budget
        digest = hashlib.sha256(party.encode()).digest()
        self.rng = np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])
        self._counter = itertools.count()
        self._lock = threading.Lock()

    # ------------------------------------------------------------- parties
    def parties(self, *names: str) -> tuple[Party, ...]:
        """Handles on the named parties (all of the cluster when no name is given)."""
        for n in names:
            if n not in self.cluster:
                raise ConfigError(f"unknown party {n!r}; the cluster has {list(self.cluster)}")
        return tuple(Party(self, n) for n in (names or self.cluster))

    def next_key(self, tag: str) -> str:
        """A message key unique within the job. Every party advances the same counter in the
        same program order (SPMD), so the n-th call yields the same key everywhere."""
        with self._lock:
            return f"{tag}#{next(self._counter)}"

    # ------------------------------------------------------------- devices
    def mpc(
        self,
        protocol: str,
        parties: Sequence[Party],
        *,
        dealer: Party | None = None,
        **options: Any,
    ) -> Any:
        """An MPC device over ``parties``: semi2k (with a ``dealer``), aby3 or ref."""
        from veil.devices.mpc import MPCDevice  # devices sit above the runtime

        return MPCDevice(
            self,
            protocol,
            tuple(p.name for p in parties),
            dealer=dealer.name if dealer is not None else None,
            **options,
        )

    def he(
        self, scheme: str, *, key_owner: Party, evaluators: Sequence[Party], **options: Any
    ) -> Any:
        """An HE device: ``key_owner`` holds the key, ``evaluators`` compute on ciphertexts."""
        from veil.devices.he import HEDevice  # devices sit above the runtime

        return HEDevice(self, scheme, key_owner.name, tuple(p.name for p in evaluators), **options)

    def tee(self, host: Party, **options: Any) -> Any:
        """A TEE device whose enclave runs at ``host`` (see :mod:`veil.devices.tee`)."""
        from veil.devices.tee import TEEDevice  # devices sit above the runtime

        return TEEDevice(self, host.name, **options)

    # ------------------------------------------------------------- reveal
    def reveal(
        self,
        value: Any,
        to: Party | Sequence[Party] | None = None,
        *,
        tag: str = "untagged",
        dp: Any = None,
    ) -> Any:
        """Open ``value`` to the parties ``to`` (all parties when ``None``).

        Every party of the job calls this (SPMD). The reveal policy is checked first, at every
        party, and the decision written to the ledger; a refusal raises
        :class:`veil.errors.RevealDenied` everywhere and nothing is sent. Recipients get the
        plaintext; other parties get ``None``.

        ``value`` is a :class:`PartyObject` (its owner sends the plaintext) or a device value
        exposing ``reveal_to(recipients)`` (its parties open it to the recipients).

        With ``dp`` (a :class:`veil.dp.DPSpec`) the owner releases the value through
        :func:`veil.dp.release` — spending its privacy budget first (a release that would exceed
        it raises :class:`veil.errors.PrivacyBudgetExceeded` and nothing is sent) — and every
        party's ledger entry records the mechanism, ε and δ. Only a party's own plaintext
        aggregates can be released this way. ``dp`` may also be a mechanism of its own (e.g. a
        top-k selection): an object with ``describe() -> dict`` (its public parameters, ledgered
        everywhere) and ``apply(value, budget=...) -> (released, [event dicts])``, which the
        owner runs — drawing the noise and spending its budget — before anything is sent.
        """
        recipients = self._recipients(to)
        key = self.next_key(f"reveal.{tag}")
        if isinstance(value, PartyObject):
            kind, owner = "plain", value.owner
            meta = value_meta(value.value) if value.is_local else ValueMeta(kind, None, None)
        elif hasattr(value, "reveal_to"):
            kind, owner = str(getattr(value, "reveal_kind", "device")), None
            meta = value_meta(value, kind)
        else:
            raise ProtocolError(
                f"ctx.reveal needs a PartyObject or a device value, got {type(value).__name__}"
            )
        entry = self._check(kind, tag, recipients, meta, source=owner, event="reveal")
        if dp is not None:
            if not isinstance(value, PartyObject):
                raise ProtocolError(
                    "a DP release needs a party's own aggregate (a PartyObject); reveal the "
                    "device value to its owner first, or add noise inside the device"
                )
            value = self._dp_noise(value, dp, entry)
        if isinstance(value, PartyObject):
            out = self._send_plain(value, recipients, key)
        else:
            out = value.reveal_to(recipients)
        self._record(entry, out)
        return out

    def _dp_noise(self, obj: PartyObject, spec: Any, entry: dict[str, Any]) -> PartyObject:
        """At the owner: the DP release of ``obj`` (budget spent first). Everywhere: the ε/δ
        of the release in the ledger entry."""
        from veil.dp import release  # dp sits above the runtime

        entry["event"] = "dp_release"
        if callable(getattr(spec, "apply", None)):  # a mechanism of its own (see reveal)
            entry["dp"] = dict(spec.describe())
            if not obj.is_local:
                return obj
            released, events = spec.apply(obj.value, budget=self.budget)
            entry["dp"]["events"] = [dict(e) for e in events]
            if self.budget is not None:
                entry["dp"]["spent"] = list(self.budget.spent())
            return PartyObject(self, obj.owner, released)
        entry["dp"] = {"mechanism": str(spec.mechanism), "epsilon": spec.epsilon,
                       "delta": spec.delta, "sensitivity": spec.sensitivity}  # fmt: skip
        if not obj.is_local:
            return obj
        noisy, record = release(obj.value, spec, budget=self.budget)
        entry["dp"] = record.to_dict()
        if self.budget is not None:
            entry["dp"]["spent"] = list(self.budget.spent())
        return PartyObject(self, obj.owner, noisy)

    def _move(self, obj: PartyObject, target: str, *, tag: str) -> PartyObject:
        if target == obj.owner:
            return obj
        key = self.next_key(f"move.{tag}")
        meta = value_meta(obj.value) if obj.is_local else ValueMeta("plain", None, None)
        entry = self._check("plain", tag, (target,), meta, source=obj.owner, event="move")
        value = self._send_plain(obj, (target,), key)
        self._record(entry, value)
        return PartyObject(self, target, value)

    def _recipients(self, to: Party | Sequence[Party] | None) -> tuple[str, ...]:
        if to is None:
            return self.cluster
        items = [to] if isinstance(to, Party) else list(to)
        names = []
        for p in items:
            name = p.name if isinstance(p, Party) else str(p)
            if name not in self.cluster:
                raise ConfigError(f"cannot reveal to {name!r}: not a party of {list(self.cluster)}")
            if name not in names:
                names.append(name)
        return tuple(names)

    def _check(
        self,
        kind: str,
        tag: str,
        recipients: tuple[str, ...],
        meta: ValueMeta,
        *,
        source: str | None,
        event: str,
    ) -> dict[str, Any]:
        """Check the policy; ledger and raise on refusal, else return the entry to record."""
        decision = self.policy.check(tag, recipients, kind)
        fields: dict[str, Any] = {
            "job": self.job_id,
            "tag": tag,
            "from": source,
            "to": list(recipients),
            "value": meta.as_dict(),
            "policy": decision.reason,
        }
        if not decision.allowed:
            self.ledger.append(f"{event}_denied", **fields)
            raise RevealDenied(
                f"{event} of {tag!r} ({kind}) to {list(recipients)} refused by "
                f"{self.party!r}'s reveal policy ({decision.reason})"
            )
        fields["event"] = event
        return fields

    def _record(self, entry: dict[str, Any], received: Any) -> None:
        """Ledger an allowed reveal once done; recipients record what actually arrived."""
        event = entry.pop("event")
        if entry["value"]["shape"] is None and received is not None:
            entry["value"] = value_meta(received, entry["value"]["kind"]).as_dict()
        self.ledger.append(event, **entry)

    def _send_plain(self, obj: PartyObject, recipients: tuple[str, ...], key: str) -> Any:
        """Owner → recipients. numpy arrays travel as array frames (streamed in chunks, no
        copy); other values as one msgpack message. A one-byte kind header goes first, sent
        back to back with the payload (no extra round trip)."""
        if obj.is_local:
            value = obj.value
            is_array = isinstance(value, np.ndarray) and value.dtype.kind in "biuf"
            header = b"a" if is_array else b"v" + wire.encode_value(value)
            for r in recipients:
                if r != self.party:
                    self.link.send_bytes(r, key, header)
                    if is_array:
                        self.link.send_array(r, f"{key}.data", value)
            return value if self.party in recipients else None
        if self.party not in recipients:
            return None
        head = self.link.recv_bytes(obj.owner, key)
        if head == b"a":
            return self.link.recv_array(obj.owner, f"{key}.data")
        if head[:1] != b"v":
            raise ProtocolError(f"malformed plaintext transfer from {obj.owner!r}")
        return wire.decode_value(head[1:])

    # ------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        """Bytes and messages exchanged with each peer, and totals for this party."""
        peers = {
            p: {
                "bytes_sent": s.bytes_sent,
                "bytes_recv": s.bytes_recv,
                "messages_sent": s.messages_sent,
                "messages_recv": s.messages_recv,
            }
            for p, s in self.link.stats().items()
        }
        fields = ("bytes_sent", "bytes_recv", "messages_sent", "messages_recv")
        totals = {k: sum(v[k] for v in peers.values()) for k in fields}
        return {"party": self.party, "peers": peers, **totals}
