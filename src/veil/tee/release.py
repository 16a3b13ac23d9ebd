"""Release policy: who may receive what leaves the enclave, as every input owner agreed.

A data owner does not only encrypt its input to the attested enclave: it seals, *in the same
ciphertext*, the release policy that governs everything computed from that input — the
recipients it accepts, each with the X25519 result key that recipient handed it directly (over
the owner↔recipient link, not through the host), and optionally a differential-privacy spec the
enclave must apply before anything leaves. The host relays the ciphertext but cannot change the
policy without breaking the AEAD tag; it can only drop the input altogether, in which case the
owner's data is not in the enclave.

Inside the enclave every value carries the policies of the inputs it was computed from
(:class:`Governance`). :func:`check_release` (run by the enclave; every party runs
:func:`recipients_allowed`, the same rule without keys, before asking) allows a release only if
**every** contributing owner's policy lists every recipient, with exactly the result key that
owner was given, that owner approved this very release, and the owners agree on the DP spec;
:func:`count_releases` then enforces each owner's ``max_releases``. A recipient outside any
owner's list, a key substituted by the host, a missing approval, conflicting DP specs or an
exhausted release count are refused with :class:`veil.errors.RevealDenied`. Nothing is ever
released to "everyone" implicitly: a policy names its recipients and an empty list is a
construction error.

The owner's *approval key* is a fresh 32-byte secret sealed with its inputs. Every release of a
value is approved by each of its owners with an HMAC under that key over the value's lineage,
the output name and the recipients (:func:`approval_tag`): the host cannot release anything the
owners' own (SPMD) program did not ask for — not an intermediate value, not a second noisy draw
of a DP result.

Each released value also carries its *lineage digest*: a hash of how it was computed (inputs by
job, name, owner and the digest of their ciphertext; functions by qualified name; public
arguments by their encoding). Every party computes the same digest from the SPMD program it
runs; owners approve that digest, and a recipient refuses a result whose digest differs. So a
computation other than the program's, or an input the host substituted, is never released.

What a release reveals: the (possibly noised) value to the listed recipients (the device also
tells every party the shape and dtype of each value, so that handles and ledgers agree).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from veil.core.wire import encode_value
from veil.errors import ConfigError, RevealDenied

GOVERNED_FORMAT = "veil/tee/governed-input/v1"
"""Marker of a sealed input that carries its release policy (see :func:`governed_input`)."""

RESULT_FORMAT = "veil/tee/released-value/v1"
"""Marker of a released value: the value, its lineage digest and the DP record, if any."""

APPROVAL_DOMAIN = b"veil/tee/approve/v1"


@dataclass(frozen=True)
class ReleasePolicy:
    """What an input owner lets leave the enclave.

    Parameters
    ----------
    recipients:
        Parties that may receive results computed from this owner's input (any set; stored as a
        frozenset). Required and non-empty: a policy that names nobody would mean "anyone the
        host names".
    dp:
        If set, a :class:`veil.dp.DPSpec`: the enclave adds noise under it before any result
        computed from this input leaves (``veil.dp.release``), and the recipient gets the
        DP event record for its ledger. All owners of a value must agree on the same spec.
    max_releases:
        How many releases of values computed from this input the owner approves in the session
        (``None``: no limit). With ``dp``, the owner's total privacy loss is at most
        ``max_releases`` times the spec's epsilon (and delta), by basic composition.
    """

    recipients: AbstractSet[str]
    dp: Any = None
    max_releases: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.recipients, str):
            raise ConfigError("ReleasePolicy recipients must be a collection of party names")
        recipients = frozenset(str(r) for r in self.recipients)
        if not recipients:
            raise ConfigError(
                "a release policy must name its recipients: an empty list would let the host "
                "choose who receives results"
            )
        object.__setattr__(self, "recipients", recipients)
        if self.dp is not None:
            _dp_to_wire(self.dp)  # validates the type early
        if self.max_releases is not None and (
            isinstance(self.max_releases, bool) or int(self.max_releases) < 1
        ):
            raise ConfigError("max_releases must be a positive number of releases (or None)")

    def to_wire(self, result_keys: Mapping[str, bytes], approval_key: bytes) -> dict[str, Any]:
        """The policy as sealed with the input, with each recipient's result key and the
        owner's approval key (a 32-byte secret only the owner and the enclave know).

        Raises
        ------
        ConfigError
            If a recipient's key is missing or not a raw 32-byte X25519 key.
        """
        keys: dict[str, bytes] = {}
        for r in sorted(self.recipients):
            pk = result_keys.get(r)
            if pk is None or len(pk) != 32:
                raise ConfigError(
                    f"no result key from recipient {r!r}: every recipient must hand its X25519 "
                    "key to the owners before they seal their inputs"
                )
            keys[r] = bytes(pk)
        if len(approval_key) != 32:
            raise ConfigError("the approval key must be 32 random bytes")
        return {
            "recipients": keys,
            "approval_key": bytes(approval_key),
            "dp": None if self.dp is None else _dp_to_wire(self.dp),
            "max_releases": self.max_releases,
        }


def _dp_to_wire(spec: Any) -> dict[str, Any]:
    from veil.dp.spec import DPSpec  # DP is an optional layer; only needed when asked for

    if not isinstance(spec, DPSpec):
        raise ConfigError(f"ReleasePolicy.dp must be a veil.dp.DPSpec, not {type(spec).__name__}")
    return {
        "mechanism": str(spec.mechanism),
        "epsilon": float(spec.epsilon),
        "delta": float(spec.delta),
        "sensitivity": float(spec.sensitivity),
        "query": str(spec.query),
        "unit": str(spec.unit),
        "neighbouring": str(spec.neighbouring),
        "shape": None if spec.shape is None else [int(s) for s in spec.shape],
    }


def dp_from_wire(wire: Mapping[str, Any]) -> Any:
    """Rebuild the :class:`veil.dp.DPSpec` sealed by :meth:`ReleasePolicy.to_wire`."""
    from veil.dp.spec import DPSpec, Mechanism, Neighbouring

    shape = wire.get("shape")
    return DPSpec(
        mechanism=Mechanism(str(wire["mechanism"])),
        epsilon=float(wire["epsilon"]),
        delta=float(wire["delta"]),
        sensitivity=float(wire["sensitivity"]),
        query=str(wire["query"]),
        unit=str(wire["unit"]),
        neighbouring=Neighbouring(str(wire["neighbouring"])),
        shape=None if shape is None else tuple(int(s) for s in shape),
    )


def governed_input(value: Any, release: Mapping[str, Any]) -> dict[str, Any]:
    """The plaintext an owner seals: its value and the release policy governing it."""
    return {"format": GOVERNED_FORMAT, "value": value, "release": dict(release)}


@dataclass(frozen=True)
class Governance:
    """The release policies attached to a value inside the enclave: ``(owner, policy wire)``.

    An empty governance means no owner's data went into the value (public inputs only, or an
    input sealed without a policy by a caller of the low-level channel API).
    """

    policies: tuple[tuple[str, Mapping[str, Any]], ...] = ()

    @property
    def owners(self) -> frozenset[str]:
        """Owners whose data the value was computed from."""
        return frozenset(o for o, _ in self.policies)

    @staticmethod
    def union(items: Iterable[Governance]) -> Governance:
        """The governance of a value computed from values governed by ``items``."""
        seen: list[tuple[str, Mapping[str, Any]]] = []
        for g in items:
            for pair in g.policies:
                if pair not in seen:
                    seen.append(pair)
        return Governance(tuple(seen))


def approval_tag(
    approval_key: bytes, *, lineage: bytes, output_name: str, recipients: Iterable[str]
) -> bytes:
    """An owner's approval of one release: HMAC-SHA256 under the key it sealed with its inputs.

    Binds the value (its lineage digest), the output name and the recipient names, so the host
    cannot reuse an approval for another value, output or audience.
    """
    msg = APPROVAL_DOMAIN + encode_value([lineage, output_name, sorted(recipients)])
    return hmac.new(approval_key, msg, hashlib.sha256).digest()


def check_release(
    governance: Governance,
    recipients: Mapping[str, bytes],
    *,
    lineage: bytes,
    output_name: str,
    approvals: Mapping[str, bytes],
) -> Mapping[str, Any] | None:
    """Allow releasing a value to ``recipients`` (name → result key) or raise.

    Parameters
    ----------
    governance:
        The sealed policies of the owners whose data the value derives from.
    recipients:
        Recipient name → the result key the host asks the enclave to seal to.
    lineage, output_name:
        What is released, as bound into the owners' approvals.
    approvals:
        Owner → :func:`approval_tag` relayed by the host.

    Returns
    -------
    The DP spec (wire form) the enclave must apply, or ``None``.

    Raises
    ------
    RevealDenied
        A recipient some owner did not list, a result key other than the one that owner was
        given, a missing or wrong approval, no recipient at all, or owners that asked for
        different DP specs.
    """
    if not recipients:
        raise RevealDenied("a release needs at least one recipient")
    dp_specs: list[Mapping[str, Any]] = []
    for owner, policy in governance.policies:
        allowed = policy.get("recipients")
        key = policy.get("approval_key")
        if not isinstance(allowed, Mapping) or not isinstance(key, bytes) or len(key) != 32:
            raise RevealDenied(f"{owner!r}'s release policy is malformed: nothing is released")
        tag = approval_tag(key, lineage=lineage, output_name=output_name, recipients=recipients)
        if not hmac.compare_digest(tag, bytes(approvals.get(owner, b""))):
            raise RevealDenied(
                f"{owner!r} did not approve releasing {output_name!r} to {sorted(recipients)}: "
                "every input owner approves each release of a value computed from its data"
            )
        for name, pk in recipients.items():
            if name not in allowed:
                raise RevealDenied(
                    f"{owner!r}'s release policy does not list {name!r} as a recipient "
                    f"(agreed: {sorted(allowed)}): the result stays in the enclave"
                )
            if bytes(allowed[name]) != bytes(pk):
                raise RevealDenied(
                    f"the result key offered for {name!r} is not the one {name!r} gave {owner!r}: "
                    "key substitution by the host refused"
                )
        dp = policy.get("dp")
        if dp is not None and dp not in dp_specs:
            dp_specs.append(dp)
    if len(dp_specs) > 1:
        raise RevealDenied(
            "the input owners sealed different DP specs for this value; agree on one spec"
        )
    return dp_specs[0] if dp_specs else None


def recipients_allowed(
    policies: Mapping[str, ReleasePolicy],
    owners: Iterable[str],
    recipients: Sequence[str],
    released: Mapping[str, int] | None = None,
) -> None:
    """The check every party makes before asking the enclave (same rules, without keys).

    ``released`` counts the releases each owner already approved in this session.

    Raises
    ------
    RevealDenied
        If some owner in ``owners`` did not list some recipient, or already approved its
        ``max_releases``.
    """
    for owner in sorted(set(owners)):
        policy = policies.get(owner)
        if policy is None:
            raise RevealDenied(f"no release policy for input owner {owner!r}: nothing is released")
        outside = [r for r in recipients if r not in policy.recipients]
        if outside:
            raise RevealDenied(
                f"release of a TEE result to {outside} refused: {owner!r} agreed only to "
                f"{sorted(policy.recipients)}"
            )
        done = (released or {}).get(owner, 0)
        if policy.max_releases is not None and done >= policy.max_releases:
            raise RevealDenied(
                f"{owner!r} agreed to at most {policy.max_releases} release(s) of results "
                "computed from its data in this session; this one is refused"
            )


def count_releases(governance: Governance, counts: dict[bytes, int]) -> None:
    """Enclave side: count one release against every contributing owner's ``max_releases``.

    ``counts`` maps an owner's approval key (one per owner and session) to its releases so far;
    it is updated only if no owner's limit is exceeded.

    Raises
    ------
    RevealDenied
        If some owner's limit is reached.
    """
    keys: list[bytes] = []
    for owner, policy in governance.policies:
        key = bytes(policy.get("approval_key", b""))
        limit = policy.get("max_releases")
        if key in keys:
            continue
        if limit is not None and counts.get(key, 0) >= int(limit):
            raise RevealDenied(
                f"{owner!r} agreed to at most {limit} release(s) of results computed from its "
                "data in this session"
            )
        keys.append(key)
    for key in keys:
        counts[key] = counts.get(key, 0) + 1


def _digest(*parts: Any) -> bytes:
    return hashlib.sha256(b"veil/tee/lineage/v1" + encode_value(list(parts))).digest()


def input_lineage(job_id: str, input_name: str, owner: str, sealed_digest: bytes) -> bytes:
    """Lineage digest of an input sealed by ``owner`` as ``input_name`` in job ``job_id``.

    ``sealed_digest`` is the SHA-256 of the sealed ciphertext (:func:`sealed_digest`): the owner
    sends it to every party directly, the enclave computes it from what it opened, so an input
    the host substituted gives another lineage and no owner approves its release.
    """
    return _digest("input", job_id, input_name, owner, bytes(sealed_digest))


def sealed_digest(sealed: bytes) -> bytes:
    """SHA-256 of a sealed input, as bound into its lineage."""
    return hashlib.sha256(b"veil/tee/sealed-input/v1" + bytes(sealed)).digest()


def apply_lineage(function: str, args: Sequence[bytes | None], public: bytes) -> bytes:
    """Lineage digest of ``function`` applied to enclave values (their lineage digests; ``None``
    where the argument is public) and the encoded public arguments ``public``."""
    return _digest("apply", function, list(args), hashlib.sha256(public).digest())


__all__ = [
    "GOVERNED_FORMAT",
    "RESULT_FORMAT",
    "Governance",
    "ReleasePolicy",
    "apply_lineage",
    "approval_tag",
    "check_release",
    "count_releases",
    "dp_from_wire",
    "governed_input",
    "input_lineage",
    "recipients_allowed",
    "sealed_digest",
]
