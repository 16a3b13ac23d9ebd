"""Setting up a TEE device: options, the enclave runtime, and each party's attestation.

Split from :mod:`veil.devices.tee` (which holds the device and its values). Every party of the
job runs :func:`establish` with the same arguments (SPMD); it returns what *this* party holds:

- the **host** starts the enclave (``sim``: a local subprocess, as trusted as a third party;
  ``hardware``: in its own process, which runs inside the TEE, with evidence from an attester —
  not yet run on hardware) and picks a random session id;
- every **recipient** (a party some owner's release policy names) draws an X25519 result key
  and hands its public half *directly* to the host and to every owner (over their links — never
  relayed by the host, so the host cannot substitute it);
- every **relying party** (owners and recipients) challenges the enclave with a fresh nonce,
  verifies the evidence, appraises it under *its own* :class:`~veil.tee.policy.AppraisalPolicy`
  and binds the enclave key to the session, nonce and program (:func:`veil.tee.bind_key`). A
  refusal raises :class:`~veil.tee.errors.AttestationError` at that party, which stops the job;
- every **owner** draws the 32-byte approval key it seals with its inputs
  (:mod:`veil.tee.release`).

Messages: session id host → relying parties; result keys recipient → host and owners; nonce
relying party → host; evidence and enclave key host → relying party. All keys come from
``ctx.next_key`` in the same order at every party; payloads use :mod:`veil.core.wire`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from veil.core import wire
from veil.errors import ConfigError, PeerError
from veil.runtime.ledger import AuditLedger
from veil.tee.anchors import TrustAnchors
from veil.tee.binding import AttestedKey, bind_key, new_nonce
from veil.tee.channel import raw_public_key
from veil.tee.claims import Platform
from veil.tee.errors import AttestationError
from veil.tee.hw_runtime import Attester, CollateralFetcher
from veil.tee.policy import AppraisalPolicy, Verdict
from veil.tee.program import ProgramBundle
from veil.tee.release import ReleasePolicy
from veil.tee.sim import ASSURANCE, SimRoot, expected_sim_measurement
from veil.tee.verify import attest
from veil.transport.base import Link

RUNTIMES = ("sim", "hardware")
MAX_EVIDENCE_MESSAGE = 1 << 20


class TEEContext(Protocol):
    """What the TEE device needs from the runtime's context."""

    party: str
    cluster: tuple[str, ...]
    link: Link
    job_id: str
    ledger: AuditLedger

    def next_key(self, tag: str) -> str: ...


def party_name(p: Any) -> str:
    """A party's name from a :class:`~veil.runtime.party.Party` or a string."""
    return str(getattr(p, "name", p))


def sim_policy(program: ProgramBundle, **options: Any) -> AppraisalPolicy:
    """An owner's opt-in to the simulated runtime for ``program``.

    Pins the measurement a ``sim`` enclave running ``program`` with this veil reports and sets
    ``allow_simulated=True``: **as trusted as a third party**. ``options`` are further
    :class:`AppraisalPolicy` fields.
    """
    return AppraisalPolicy(
        measurements=frozenset({expected_sim_measurement(program)}),
        allow_simulated=True,
        **options,
    )


def _per_party(value: Any, kind: type, what: str) -> Callable[[str], Any]:
    """``value`` is one shared ``kind`` or a mapping party → ``kind``; returns a lookup."""
    if value is None or isinstance(value, kind):
        return lambda _p: value
    if isinstance(value, Mapping):
        table = {party_name(k): v for k, v in value.items()}
        for k, v in table.items():
            if not isinstance(v, kind):
                raise ConfigError(f"{what} for {k!r} must be a {kind.__name__}")
        return table.get
    raise ConfigError(f"{what} must be a {kind.__name__} or a mapping party -> {kind.__name__}")


@dataclass(frozen=True)
class TEEOptions:
    """The device's configuration, identical at every party (SPMD)."""

    host: str
    owners: tuple[str, ...]
    program: ProgramBundle
    release: Mapping[str, ReleasePolicy]
    runtime: str = "sim"
    policy_of: Callable[[str], AppraisalPolicy | None] = field(default=lambda _p: None)
    anchors_of: Callable[[str], TrustAnchors | None] = field(default=lambda _p: None)
    sim_root: SimRoot | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    attester: Attester | None = None
    fetch_collateral: CollateralFetcher | None = None

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every party some owner's release policy names."""
        return tuple(sorted({r for p in self.release.values() for r in p.recipients}))

    @property
    def relying(self) -> tuple[str, ...]:
        """Owners and recipients: the parties that attest the enclave."""
        return tuple(sorted(set(self.owners) | set(self.recipients)))

    def policy(self, party: str) -> AppraisalPolicy:
        """``party``'s appraisal policy; by default the program's measurement, no simulation."""
        chosen = self.policy_of(party)
        if chosen is not None:
            return chosen
        if self.runtime != "sim":
            raise ConfigError(
                f"{party!r} has no appraisal policy for the hardware enclave: pass policy= with "
                "the measurement (MRTD, launch measurement, MRENCLAVE or PCR0) of the image you "
                "reviewed"
            )
        return AppraisalPolicy(measurements=frozenset({expected_sim_measurement(self.program)}))

    def anchors(self, party: str) -> TrustAnchors:
        """``party``'s trust anchors; with a shared ``sim_root``, its public key is pinned."""
        chosen = self.anchors_of(party)
        if chosen is not None:
            return chosen
        if self.sim_root is not None:
            return TrustAnchors(sim_root_public_keys=frozenset({self.sim_root.public_key}))
        return TrustAnchors()


def make_options(
    cluster: Sequence[str],
    host: str,
    *,
    program: ProgramBundle | Iterable[Callable[..., Any]],
    owners: Iterable[Any],
    release: ReleasePolicy | Mapping[Any, ReleasePolicy],
    runtime: str = "sim",
    policy: AppraisalPolicy | Mapping[Any, AppraisalPolicy] | None = None,
    anchors: TrustAnchors | Mapping[Any, TrustAnchors] | None = None,
    sim_root: SimRoot | bytes | None = None,
    dependencies: Mapping[str, str] | Iterable[str] = (),
    clock: Callable[[], datetime] | None = None,
    attester: Attester | None = None,
    fetch_collateral: CollateralFetcher | None = None,
) -> TEEOptions:
    """Validate the device's keyword options (see :class:`veil.devices.tee.TEEDevice`)."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown TEE runtime {runtime!r}: use 'sim' or 'hardware'")
    names = [party_name(o) for o in owners]
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"a TEE device needs distinct data owners, got {names}")
    for p in (host, *names):
        if p not in cluster:
            raise ConfigError(f"{p!r} is not a party of this job ({list(cluster)})")
    bundle = (
        program
        if isinstance(program, ProgramBundle)
        else ProgramBundle.from_functions(list(program), dependencies=dependencies)
    )
    release_of = _per_party(release, ReleasePolicy, "release")
    table: dict[str, ReleasePolicy] = {}
    for o in names:
        rp = release_of(o)
        if rp is None:
            raise ConfigError(
                f"no release policy for owner {o!r}: each owner states who may receive results "
                "computed from its data (ReleasePolicy(recipients=...))"
            )
        unknown = sorted(set(rp.recipients) - set(cluster))
        if unknown:
            raise ConfigError(f"{o!r}'s release policy names unknown parties {unknown}")
        table[o] = rp
    if isinstance(sim_root, bytes):
        sim_root = SimRoot.from_private_bytes(sim_root)
    return TEEOptions(
        host=host,
        owners=tuple(names),
        program=bundle,
        release=table,
        runtime=runtime,
        policy_of=_per_party(policy, AppraisalPolicy, "policy"),
        anchors_of=_per_party(anchors, TrustAnchors, "anchors"),
        sim_root=sim_root,
        clock=clock or (lambda: datetime.now(UTC)),
        attester=attester,
        fetch_collateral=fetch_collateral,
    )


@dataclass
class Session:
    """What one party holds after :func:`establish`.

    Attributes
    ----------
    session_id:
        The enclave session (known to the host and the relying parties; ``b""`` elsewhere).
    enclave:
        The runtime handle (host only).
    attested:
        This party's :class:`AttestedKey` (relying parties only).
    result_key:
        This party's X25519 result key (recipients only).
    result_keys:
        Recipient → result public key, as received directly from each recipient (host and
        owners only).
    approval_key:
        The secret this owner seals with its inputs and approves releases with (owners only).
    measurement:
        The enclave's measurement (host: as the runtime reported it; relying parties: verified).
    """

    session_id: bytes = b""
    enclave: Any = None
    attested: AttestedKey | None = None
    result_key: X25519PrivateKey | None = None
    result_keys: dict[str, bytes] = field(default_factory=dict)
    approval_key: bytes = b""
    measurement: bytes = b""

    @property
    def verdict(self) -> Verdict | None:
        return None if self.attested is None else self.attested.verdict


def _start_enclave(opts: TEEOptions, host: str) -> Any:
    if opts.runtime == "hardware":
        from veil.tee.hw_runtime import HardwareEnclave

        if opts.attester is None:
            raise ConfigError(
                "the 'hardware' runtime needs attester= at the host (veil.tee.attesters: "
                "ConfigfsTsmAttester, GramineAttester or NitroAttester)"
            )
        return HardwareEnclave(
            opts.attester,
            opts.program,
            fetch_collateral=opts.fetch_collateral,
            anchors=opts.anchors(host),
            clock=opts.clock,
        )
    from veil.tee.sim_runtime import SimEnclave

    if opts.sim_root is None:
        raise ConfigError(
            "the 'sim' runtime needs the deployment's development root at the host: pass "
            "sim_root=SimRoot (owners pin its public key through sim_root= or anchors=)"
        )
    return SimEnclave(opts.sim_root, opts.program)


def _run_setup(
    ctx: TEEContext, opts: TEEOptions, s: Session, k_sid: str, k_rk: str, k_nonce: str, k_ev: str
) -> None:
    me, link = ctx.party, ctx.link
    relying, recipients = opts.relying, opts.recipients
    if me == opts.host:
        s.enclave = _start_enclave(opts, me)
        s.measurement = bytes(s.enclave.measurement)
        s.session_id = os.urandom(16)
        for p in relying:
            if p != me:
                link.send_bytes(p, k_sid, s.session_id)
    elif me in relying:
        s.session_id = link.recv_bytes(opts.host, k_sid)
        if len(s.session_id) != 16:
            raise PeerError(opts.host, "sent a malformed TEE session id")
    # Result keys: recipient -> host and owners, directly.
    if me in recipients:
        s.result_key = X25519PrivateKey.generate()
        pk = raw_public_key(s.result_key)
        s.result_keys[me] = pk
        for p in sorted({opts.host, *opts.owners} - {me}):
            link.send_bytes(p, k_rk, pk)
    if me == opts.host or me in opts.owners:
        for r in recipients:
            if r != me:
                pk = link.recv_bytes(r, k_rk)
                if len(pk) != 32:
                    raise PeerError(r, "sent a malformed result key")
                s.result_keys[r] = pk
    # Attestation: each relying party challenges the enclave with its own nonce.
    nonce = new_nonce() if me in relying else b""
    if me in relying and me != opts.host:
        link.send_bytes(opts.host, k_nonce, nonce)
    evidence: dict[str, Any] = {}
    if me == opts.host:
        for p in relying:
            n = nonce if p == me else link.recv_bytes(p, k_nonce)
            msg = s.enclave.attest_full(s.session_id, n)
            if p == me:
                evidence = msg
            else:
                link.send_bytes(p, k_ev, wire.encode_value(msg))
    elif me in relying:
        evidence = wire.decode_value(
            link.recv_bytes(opts.host, k_ev), max_bytes=MAX_EVIDENCE_MESSAGE
        )
    if me in relying:
        s.attested = _appraise(ctx, opts, s.session_id, nonce, evidence)
        s.measurement = s.attested.measurement


def establish(ctx: TEEContext, opts: TEEOptions) -> Session:
    """Run the device's setup at this party (collective: every party calls it, same order)."""
    k_sid, k_rk, k_nonce, k_ev = (
        ctx.next_key(f"tee.{tag}") for tag in ("session", "result-key", "nonce", "evidence")
    )
    s = Session()
    try:
        _run_setup(ctx, opts, s, k_sid, k_rk, k_nonce, k_ev)
    except BaseException:
        if s.enclave is not None:  # do not leave an enclave process behind
            s.enclave.close()
        raise
    if ctx.party in opts.owners:
        s.approval_key = os.urandom(32)
    return s


def _appraise(
    ctx: TEEContext, opts: TEEOptions, session_id: bytes, nonce: bytes, msg: Any
) -> AttestedKey:
    """Verify, appraise under this party's policy, bind; ledger and raise on refusal."""
    keys = {"platform", "evidence", "public_key", "collateral"}
    if not isinstance(msg, dict) or set(msg) != keys:
        raise PeerError(opts.host, "sent malformed TEE evidence")
    platform, evidence = str(msg["platform"]), bytes(msg["evidence"])
    # Collateral is vendor-signed and checked against pinned roots, so the host's copy is fine;
    # a party with its own source (PCS/KDS cache) uses that instead.
    collateral = msg["collateral"]
    if opts.fetch_collateral is not None and platform != Platform.SIM.value:
        collateral = opts.fetch_collateral(platform, evidence)
    if collateral is not None and not isinstance(collateral, bytes | str):
        raise PeerError(opts.host, "sent malformed TEE collateral")
    try:
        verdict = attest(
            platform,
            evidence,
            collateral,
            opts.policy(ctx.party),
            now=opts.clock(),
            anchors=opts.anchors(ctx.party),
        )
        return bind_key(
            verdict,
            session_id=session_id,
            nonce=nonce,
            enclave_public_key=bytes(msg["public_key"]),
            program_hash=opts.program.digest(),
        )
    except AttestationError as exc:
        ctx.ledger.append(
            "tee_job_refused",
            job=ctx.job_id,
            host=opts.host,
            platform=exc.platform,
            reason=exc.reason.value,
            detail=exc.detail,
        )
        raise


def ledger_fields(opts: TEEOptions, session: Session, role: str) -> dict[str, Any]:
    """The ``tee_job`` ledger entry of this party: what was attested, and how much to trust it."""
    verdict = session.verdict
    simulated = opts.runtime == "sim" if verdict is None else verdict.claims.simulated
    fields: dict[str, Any] = {
        "role": role,
        "host": opts.host,
        "owners": list(opts.owners),
        "recipients": list(opts.recipients),
        "runtime": opts.runtime,
        "program_hash": opts.program.digest().hex(),
        "measurement": session.measurement.hex() or None,
        "simulated": simulated,
    }
    if verdict is not None:
        c = verdict.claims
        fields.update(
            platform=c.platform.value,
            tcb_status=c.tcb_status,
            advisories=list(c.advisory_ids),
            assurance=verdict.assurance,
            waivers=list(verdict.waivers),
            verified=True,
        )
    else:  # the host and bystanders did not appraise anything themselves
        fields.update(
            platform=Platform.SIM.value if simulated else None,
            tcb_status=None,
            advisories=[],
            assurance=ASSURANCE if simulated else "unverified by this party",
            waivers=[],
            verified=False,
        )
    return fields


__all__ = [
    "RUNTIMES",
    "Session",
    "TEEContext",
    "TEEOptions",
    "establish",
    "ledger_fields",
    "make_options",
    "party_name",
    "sim_policy",
]
