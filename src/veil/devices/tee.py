"""The TEE device: joint computation inside an attested enclave, in the SPMD style.

::

    tee = ctx.tee(host=bank, program=[fit, predict], owners=[bank, ext1],
                  release=ReleasePolicy(recipients={"bank"}),
                  policy={"bank": sim_policy(bundle), "ext1": sim_policy(bundle)},
                  sim_root=root)
    x = x_bank.to(tee)            # bank verifies the enclave, seals x to the attested key
    w = tee(fit)(x, y, epochs=5)  # runs inside; w stays inside
    ctx.reveal(w, to=bank, tag="model.weights")   # only to recipients every owner agreed

Every party of the job constructs the device with the same arguments (collectively; see
:mod:`veil.devices.tee_setup`). What each party does:

- **owners** attest the enclave under *their own* appraisal policy before sealing anything to it
  (refusal → :class:`~veil.tee.errors.AttestationError`, the job stops), seal each input together
  with their release policy, and approve each release of a value computed from their data;
- **recipients** attest the enclave too, hand their result key directly to the owners, open
  results sealed to them and check each result's lineage (the computation the SPMD program asked
  for, not another one the host ran on the same inputs);
- the **host** runs the enclave and relays ciphertexts; it is untrusted by the protocol (with
  hardware), and *fully trusted* with the ``sim`` runtime, which is **as trusted as a third
  party**: every result handle and every ledger entry then says so.

Threat model (hardware): the host and any party may deviate; confidentiality of the inputs rests
on the attestation (vendor keys, TCB, the reviewed program), the channel and the release check
inside the enclave. What leaks: to every party, the shape and dtype of each input (its owner
announces them) and of each computed value (the host relays them, so handles agree); to the
host, ciphertext lengths; to the recipients every owner agreed to, the released values (noised
if the owners sealed a DP spec). With ``sim``: everything, to whoever runs the host.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from veil.core import wire
from veil.devices.tee_setup import (
    TEEContext,
    establish,
    ledger_fields,
    make_options,
    party_name,
    sim_policy,
)
from veil.errors import ConfigError, PeerError, ProtocolError, RevealDenied
from veil.runtime.party import PartyObject
from veil.tee.anchors import TrustAnchors
from veil.tee.channel import open_result, seal
from veil.tee.errors import ChannelError
from veil.tee.hw_runtime import Attester, CollateralFetcher
from veil.tee.policy import AppraisalPolicy
from veil.tee.program import ProgramBundle, function_name
from veil.tee.release import (
    RESULT_FORMAT,
    ReleasePolicy,
    apply_lineage,
    approval_tag,
    governed_input,
    input_lineage,
    recipients_allowed,
    sealed_digest,
)
from veil.tee.sim import ASSURANCE, SimRoot

#: Largest metadata frame accepted from the host.
MAX_META_BYTES = 1 << 16


class TEEObject:
    """A value inside the enclave: a handle at every party, the value only inside.

    Attributes
    ----------
    name:
        The value's name in the enclave session.
    owners:
        The data owners whose inputs it was computed from (their release policies govern it).
    lineage:
        Digest of how it was computed (:mod:`veil.tee.release`); recipients check it.
    shape, dtype:
        As reported by the host (``None`` for imported inputs, which only their owner knows).
    assurance:
        ``"hardware"``, or ``"simulated: as trusted as a third party"``.
    """

    reveal_kind = "tee"

    def __init__(
        self,
        device: TEEDevice,
        name: str,
        *,
        owners: frozenset[str],
        lineage: bytes,
        shape: tuple[int, ...] | None = None,
        dtype: str | None = None,
    ) -> None:
        self.device = device
        self.name = name
        self.owners = owners
        self.lineage = lineage
        self.shape = shape
        self.dtype = dtype

    @property
    def assurance(self) -> str:
        return self.device.assurance

    def reveal_to(self, recipients: tuple[str, ...]) -> Any:
        """Called by ``ctx.reveal`` at every party: the plaintext at recipients, ``None`` else."""
        return self.device._release(self, tuple(recipients))

    def __repr__(self) -> str:
        sim = ", simulated" if self.device.simulated else ""
        return f"TEEObject({self.name!r}, owners={sorted(self.owners)}{sim})"


class TEEDevice:
    """One party's handle on a TEE device (built by ``ctx.tee(host, **options)``).

    Parameters
    ----------
    ctx:
        The party's context.
    host_name:
        The party that runs the enclave.
    program:
        The functions the enclave may run (or their :class:`ProgramBundle`): the program
        identity every relying party checks. ``tee(fn)`` accepts only these.
    owners:
        The data owners (parties whose values may be imported).
    release:
        Each owner's :class:`~veil.tee.release.ReleasePolicy` (one shared, or a mapping owner →
        policy): who may receive results computed from its data, optionally with DP.
    runtime:
        ``"sim"``: a local subprocess enclave, **as trusted as a third party**. ``"hardware"``:
        the host's own process runs inside a TEE (confidential VM, Gramine SGX enclave, Nitro
        Enclave) and answers with evidence from ``attester`` — **not yet run on hardware**.
    policy:
        Each relying party's :class:`AppraisalPolicy` (one shared, or a mapping party → policy).
        Default: the program's measurement with simulation refused — every owner and recipient
        must opt in to ``sim`` (e.g. with :func:`sim_policy`).
    anchors:
        Trust anchors per relying party (default: the vendors' roots, plus ``sim_root``'s
        public key if given).
    sim_root:
        The deployment's development root (the host signs simulated evidence with it; the other
        parties only pin its public key).
    dependencies:
        The dependency lock of the program bundle when ``program`` is a list of functions.
    clock:
        Appraisal time source (default: now, UTC).
    attester:
        ``hardware`` runtime, host only: a :mod:`veil.tee.attesters` attester.
    fetch_collateral:
        ``fetch(platform, evidence) -> collateral`` for relying parties with their own source
        (Intel PCS, AMD KDS); otherwise the collateral the host relays is used (it is
        vendor-signed and checked against the pinned roots).
    """

    def __init__(
        self,
        ctx: TEEContext,
        host_name: str,
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
    ) -> None:
        self.ctx = ctx
        self.options = make_options(
            ctx.cluster,
            party_name(host_name),
            program=program,
            owners=owners,
            release=release,
            runtime=runtime,
            policy=policy,
            anchors=anchors,
            sim_root=sim_root,
            dependencies=dependencies,
            clock=clock,
            attester=attester,
            fetch_collateral=fetch_collateral,
        )
        self.host = self.options.host
        self.program = self.options.program
        self._functions = {name for name, _ in self.program.functions}
        self._released: dict[str, int] = {}  # releases approved per owner (same at every party)
        self._session = establish(ctx, self.options)
        if self._session.enclave is not None:
            self._finalizer = weakref.finalize(self, self._session.enclave.close)
        me = ctx.party
        role = "+".join(
            r
            for r, yes in (
                ("host", me == self.host),
                ("owner", me in self.options.owners),
                ("recipient", me in self.options.recipients),
            )
            if yes
        )
        self._job_entry = ledger_fields(self.options, self._session, role or "bystander")
        ctx.ledger.append("tee_job", job=ctx.job_id, **self._job_entry)

    # ------------------------------------------------------------------ properties
    @property
    def simulated(self) -> bool:
        """True for the ``sim`` runtime (or evidence this party verified as simulated)."""
        return bool(self._job_entry["simulated"])

    @property
    def assurance(self) -> str:
        """What the enclave's results are worth (``"simulated: as trusted as a third party"``)."""
        return str(self._job_entry["assurance"])

    @property
    def measurement(self) -> bytes:
        """The enclave's measurement (verified at relying parties; reported at the host)."""
        return self._session.measurement

    def __repr__(self) -> str:
        return f"TEEDevice(host={self.host!r}, runtime={self.options.runtime!r})"

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop the enclave (host); a no-op elsewhere. Results already revealed stay valid."""
        if self._session.enclave is not None:
            self._finalizer()

    def __enter__(self) -> TEEDevice:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ import
    def import_party_object(self, obj: PartyObject) -> TEEObject:
        """Seal an owner's value to the attested enclave (called at every party by ``x.to(tee)``).

        The owner (which attested the enclave when the device was built) seals the value with
        its release policy and sends the ciphertext to the host, which puts it in the enclave,
        and to every party the ciphertext's digest (it enters the value's lineage, so a
        substituted input is never approved for release) and the value's shape and dtype
        (revealed to every party of the job, like an MPC import).
        """
        ctx, opts, s = self.ctx, self.options, self._session
        owner = obj.owner
        if owner not in opts.owners:
            raise ConfigError(
                f"{owner!r} is not a data owner of this TEE device (owners: {list(opts.owners)}); "
                "add it to owners= so that it attests the enclave and states a release policy"
            )
        key, key_meta = ctx.next_key("tee.import"), ctx.next_key("tee.import-meta")
        if ctx.party == owner:
            assert s.attested is not None
            policy = opts.release[owner].to_wire(s.result_keys, s.approval_key)
            plain = wire.encode_value(governed_input(obj.value, policy))
            sealed = seal(s.attested, plain, job_id=ctx.job_id, input_name=key, owner=owner)
            digest = sealed_digest(sealed)
            shape, dtype = _describe(obj.value)
            meta = wire.encode_value({"digest": digest, "shape": list(shape), "dtype": dtype})
            # The ciphertext to the host; its digest (for the lineage), shape and dtype to all.
            if owner != self.host:
                ctx.link.send_bytes(self.host, key, sealed)
            for p in ctx.link.peers:
                ctx.link.send_bytes(p, key_meta, meta)
        else:
            if ctx.party == self.host:
                sealed = ctx.link.recv_bytes(owner, key)
            digest, shape, dtype = _read_import_meta(ctx.link.recv_bytes(owner, key_meta), owner)
            if ctx.party == self.host and sealed_digest(sealed) != digest:
                raise PeerError(owner, "announced another input digest than the ciphertext it sent")
        if ctx.party == self.host:
            s.enclave.put(s.session_id, sealed, job_id=ctx.job_id, input_name=key, owner=owner)
        return TEEObject(
            self,
            key,
            owners=frozenset({owner}),
            lineage=input_lineage(ctx.job_id, key, owner, digest),
            shape=shape,
            dtype=dtype,
        )

    # ------------------------------------------------------------------ compute
    def __call__(self, fn: Callable[..., Any]) -> Callable[..., TEEObject]:
        """``tee(fn)(*args, **kwargs)`` runs a registered function inside the enclave.

        :class:`TEEObject` arguments are enclave values; :class:`PartyObject` arguments are
        imported first (their owner seals them); anything else is a public argument (sent in
        plaintext through the host, bound into the result's lineage). Keyword arguments are
        public. The result stays inside.
        """
        name = function_name(fn)
        if name not in self._functions:
            raise ConfigError(
                f"{name} is not part of this TEE device's program (registered: "
                f"{sorted(self._functions)}); register it in program= so every owner can "
                "review it — its source is part of the attested measurement"
            )

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> TEEObject:
            return self._apply(name, args, kwargs)

        return run

    def _apply(self, function: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> TEEObject:
        ctx, s = self.ctx, self._session
        values: list[TEEObject | None] = []
        public: list[Any] = []
        for a in args:
            if isinstance(a, PartyObject):
                a = self.import_party_object(a)
            if isinstance(a, TEEObject):
                if a.device is not self:
                    raise ConfigError(f"{a!r} lives in another TEE device")
                values.append(a)
                public.append(None)
            else:
                values.append(None)
                public.append(a)
        if any(isinstance(v, PartyObject | TEEObject) for v in kwargs.values()):
            raise ConfigError("pass enclave values positionally; keyword arguments are public")
        encoded = wire.encode_value({"args": public, "kwargs": dict(kwargs)})
        key = ctx.next_key("tee.call")
        if ctx.party == self.host:
            shape, dtype = s.enclave.apply(
                s.session_id,
                function,
                [None if v is None else v.name for v in values],
                encoded,
                output_name=key,
            )
            meta = wire.encode_value({"shape": list(shape), "dtype": dtype})
            for p in ctx.link.peers:
                ctx.link.send_bytes(p, key, meta)
        else:
            shape, dtype = _read_meta(ctx.link.recv_bytes(self.host, key), self.host)
        owners = frozenset().union(*(v.owners for v in values if v is not None))
        lineage = apply_lineage(
            function, [None if v is None else v.lineage for v in values], encoded
        )
        return TEEObject(self, key, owners=owners, lineage=lineage, shape=shape, dtype=dtype)

    # ------------------------------------------------------------------ release
    def _release(self, value: TEEObject, recipients: tuple[str, ...]) -> Any:
        ctx, opts, s = self.ctx, self.options, self._session
        me = ctx.party
        if value.device is not self:
            raise ConfigError(f"{value!r} lives in another TEE device")
        key = ctx.next_key("tee.reveal")
        unregistered = [r for r in recipients if r not in opts.recipients]
        if unregistered:
            raise RevealDenied(
                f"release of a TEE result to {unregistered} refused: no owner of this device "
                f"agreed to them (agreed recipients: {list(opts.recipients)})"
            )
        recipients_allowed(opts.release, value.owners, recipients, self._released)
        for o in value.owners:
            self._released[o] = self._released.get(o, 0) + 1
        approvals: dict[str, bytes] = {}
        if me in value.owners:
            approvals[me] = approval_tag(
                s.approval_key, lineage=value.lineage, output_name=key, recipients=recipients
            )
            if me != self.host:
                ctx.link.send_bytes(self.host, key, approvals[me])
        sealed: bytes | None = None
        if me == self.host:
            for o in sorted(value.owners - {me}):
                approvals[o] = ctx.link.recv_bytes(o, key)
            out = s.enclave.release(
                s.session_id,
                value.name,
                job_id=ctx.job_id,
                output_name=key,
                recipients={r: s.result_keys[r] for r in recipients},
                approvals=approvals,
            )
            for r in recipients:
                if r != me:
                    ctx.link.send_bytes(r, key, out[r])
            sealed = out.get(me)
        elif me in recipients:
            sealed = ctx.link.recv_bytes(self.host, key)
        result, dp = None, None
        if me in recipients:
            assert sealed is not None
            result, dp = self._open(value, key, sealed)
        ctx.ledger.append(
            "tee_release",
            job=ctx.job_id,
            output=key,
            to=list(recipients),
            owners=sorted(value.owners),
            lineage=value.lineage.hex(),
            assurance=self.assurance,
            simulated=self.simulated,
            dp=dp,
        )
        return result

    def _open(self, value: TEEObject, key: str, sealed: bytes) -> tuple[Any, Any]:
        s, ctx = self._session, self.ctx
        assert s.result_key is not None and s.attested is not None
        try:
            plain = open_result(
                s.result_key,
                sealed,
                key=s.attested,
                job_id=ctx.job_id,
                output_name=key,
                recipient=ctx.party,
            )
        except ChannelError as exc:
            raise PeerError(self.host, f"relayed a TEE result that does not open: {exc}") from exc
        env = wire.decode_value(plain)
        if not isinstance(env, dict) or env.get("format") != RESULT_FORMAT:
            raise ProtocolError("the enclave's result envelope is malformed")
        if bytes(env.get("lineage", b"")) != value.lineage:
            raise PeerError(
                self.host,
                "the enclave computed another value than this program asked for (lineage "
                "mismatch): the host ran a different computation; result refused",
            )
        return env.get("value"), env.get("dp")


def _describe(value: Any) -> tuple[tuple[int, ...], str]:
    """Shape and dtype of an imported value (what every party learns about it)."""
    dtype = getattr(value, "dtype", None)
    shape = getattr(value, "shape", None)
    if dtype is not None and shape is not None:
        return tuple(int(d) for d in shape), str(dtype)
    return (), type(value).__name__


def _read_import_meta(data: bytes, owner: str) -> tuple[bytes, tuple[int, ...], str]:
    meta = wire.decode_value(data, max_bytes=MAX_META_BYTES)
    if not isinstance(meta, dict) or set(meta) != {"digest", "shape", "dtype"}:
        raise PeerError(owner, "sent malformed TEE input metadata")
    digest = meta["digest"]
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise PeerError(owner, "sent a malformed input digest")
    return digest, *_check_meta(meta["shape"], meta["dtype"], owner)


def _read_meta(data: bytes, host: str) -> tuple[tuple[int, ...], str]:
    meta = wire.decode_value(data, max_bytes=MAX_META_BYTES)
    if not isinstance(meta, dict) or set(meta) != {"shape", "dtype"}:
        raise PeerError(host, "sent malformed TEE value metadata")
    return _check_meta(meta["shape"], meta["dtype"], host)


def _check_meta(shape: Any, dtype: Any, sender: str) -> tuple[tuple[int, ...], str]:
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise PeerError(sender, f"sent an invalid shape {shape!r}")
    if not isinstance(dtype, str) or len(dtype) > 64:
        raise PeerError(sender, "sent an invalid dtype")
    return tuple(shape), dtype


__all__ = ["ASSURANCE", "ReleasePolicy", "TEEDevice", "TEEObject", "sim_policy"]
