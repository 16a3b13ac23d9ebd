"""Fail-closed appraisal policy: which verified enclaves a data owner accepts.

A verifier says *what* runs *where* (:class:`~veil.tee.claims.Claims`); the policy says whether
that is acceptable. Everything not explicitly allowed is refused: a policy cannot even be built
without a non-empty allow-list of measurements, only the ``UpToDate`` TCB status is accepted by
default, no advisory is accepted by default, and debug or simulated enclaves are refused unless
the policy says otherwise. :func:`appraise` returns a :class:`Verdict` only on acceptance and
raises a typed :class:`~veil.tee.errors.AttestationError` otherwise, so a refusal cannot be
ignored by forgetting to check a flag.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from veil.errors import ConfigError
from veil.tee import certs
from veil.tee.claims import Claims, Platform
from veil.tee.errors import AttestationError, Reason

UP_TO_DATE = "UpToDate"


def _bytes_set(values: Iterable[bytes | str], what: str) -> frozenset[bytes]:
    out = set()
    for v in values:
        try:
            b = bytes.fromhex(v) if isinstance(v, str) else bytes(v)
        except ValueError as exc:
            raise ConfigError(f"{what} {v!r} is not hex") from exc
        if not b:
            raise ConfigError(f"an empty {what} can match nothing: remove it")
        out.add(b)
    return frozenset(out)


@dataclass(frozen=True)
class AppraisalPolicy:
    """What a relying party accepts. Immutable; build one per deployment.

    Parameters
    ----------
    measurements:
        Accepted code measurements (bytes or hex): MRENCLAVE, MRTD, SEV-SNP MEASUREMENT or
        Nitro PCR0. Required and non-empty.
    signers:
        Accepted signers (MRSIGNER, SEV-SNP ID key digest, Nitro PCR8); ``None`` accepts any
        signer (the measurement already pins the code).
    platforms:
        Accepted hardware platforms; all hardware platforms by default. ``Platform.SIM`` is
        governed by ``allow_simulated`` alone.
    min_svn:
        Minimum enclave SVN (SGX ISVSVN, SEV-SNP GUEST_SVN); evidence without an SVN is refused.
    min_tcb:
        Minimum per platform TCB component, e.g. ``{"snp": 8, "microcode": 115}``; a component
        the evidence does not report is refused.
    allowed_tcb_statuses:
        Accepted vendor TCB statuses for platforms that report one (SGX, TDX). Default:
        ``UpToDate`` only.
    allowed_advisories:
        Security advisory ids accepted on the platform (e.g. ``INTEL-SA-00615``). Default: none.
    allow_debug:
        Accept debug enclaves (their host can read their memory). Default: refused.
    allow_simulated:
        Accept evidence from the simulated runtime (as trusted as a third party). Default: refused.
    max_vmpl:
        Highest SEV-SNP VMPL the report may come from (0: only the most privileged level).
    max_evidence_age:
        For dated evidence (Nitro), the maximum age at appraisal time.
    max_clock_skew:
        How far in the future dated evidence may be (clock skew between machines).
    """

    measurements: frozenset[bytes]
    signers: frozenset[bytes] | None = None
    platforms: frozenset[Platform] = frozenset(
        {Platform.SGX, Platform.TDX, Platform.SEV_SNP, Platform.NITRO}
    )
    min_svn: int | None = None
    min_tcb: Mapping[str, int] = field(default_factory=dict)
    allowed_tcb_statuses: frozenset[str] = frozenset({UP_TO_DATE})
    allowed_advisories: frozenset[str] = frozenset()
    allow_debug: bool = False
    allow_simulated: bool = False
    max_vmpl: int = 0
    max_evidence_age: timedelta = timedelta(minutes=10)
    max_clock_skew: timedelta = timedelta(minutes=1)

    def __post_init__(self) -> None:
        if isinstance(self.measurements, (bytes, str)):
            raise ConfigError("measurements must be a collection of measurements, not one value")
        measurements = _bytes_set(self.measurements, "measurement")
        if not measurements:
            raise ConfigError(
                "an appraisal policy needs at least one expected measurement: an empty allow-list "
                "would accept any enclave. Pass the MRENCLAVE/MRTD/launch measurement/PCR0 of the "
                "build you reviewed"
            )
        object.__setattr__(self, "measurements", measurements)
        if self.signers is not None:
            signers = _bytes_set(self.signers, "signer")
            if not signers:
                raise ConfigError(
                    "an empty signer allow-list accepts nothing: pass None or signers"
                )
            object.__setattr__(self, "signers", signers)
        object.__setattr__(self, "platforms", frozenset(Platform(p) for p in self.platforms))
        object.__setattr__(self, "allowed_tcb_statuses", frozenset(self.allowed_tcb_statuses))
        object.__setattr__(self, "allowed_advisories", frozenset(self.allowed_advisories))
        object.__setattr__(self, "min_tcb", MappingProxyType(dict(self.min_tcb)))
        if self.max_evidence_age <= timedelta(0) or self.max_clock_skew < timedelta(0):
            raise ConfigError("max_evidence_age must be positive and max_clock_skew non-negative")


@dataclass(frozen=True)
class Verdict:
    """An accepted appraisal: the claims, when, and what was accepted only by explicit allowance.

    Attributes
    ----------
    claims:
        The verified claims that were accepted.
    appraised_at:
        The appraisal time.
    waivers:
        Human-readable notes on what the policy explicitly allowed that the default refuses
        (a TCB status, advisories, debug, simulation) — for the audit ledger.
    """

    claims: Claims
    appraised_at: datetime
    waivers: tuple[str, ...] = ()

    @property
    def assurance(self) -> str:
        """``"hardware"``, or ``"simulated: as trusted as a third party"``."""
        return "simulated: as trusted as a third party" if self.claims.simulated else "hardware"


def _refuse(reason: Reason, detail: str, claims: Claims) -> AttestationError:
    return AttestationError(reason, detail, platform=claims.platform.value)


def _in(value: bytes, allowed: frozenset[bytes]) -> bool:
    # Constant-time per candidate; the allow-list itself is not secret.
    return any(hmac.compare_digest(value, a) for a in allowed)


def appraise(
    claims: Claims,
    policy: AppraisalPolicy,
    now: datetime,
    *,
    report_data: bytes | None = None,
) -> Verdict:
    """Accept or refuse verified claims under a policy.

    Parameters
    ----------
    claims:
        Output of a verifier (signatures and collateral already checked).
    policy:
        The relying party's policy.
    now:
        The appraisal time (timezone-aware), for the evidence age.
    report_data:
        The report data this session expects (see :mod:`veil.tee.binding`), if any. A shorter
        value is compared as if right-padded with zero bytes, the platforms' convention for
        unused report data.

    Returns
    -------
    Verdict
        Only if every check passes.

    Raises
    ------
    AttestationError
        With the first failed check as reason.
    """
    now = certs.utc(now)
    waivers: list[str] = []
    if claims.simulated:
        if not policy.allow_simulated:
            raise _refuse(
                Reason.SIMULATED,
                "the evidence comes from a simulated enclave, which protects nothing from its "
                "host; every data owner must opt in to simulation",
                claims,
            )
        waivers.append("simulated enclave: as trusted as a third party")
    elif claims.platform not in policy.platforms:
        raise _refuse(
            Reason.PLATFORM_MISMATCH,
            f"platform {claims.platform.value} is not accepted by the policy "
            f"({', '.join(sorted(p.value for p in policy.platforms))})",
            claims,
        )
    if claims.debug:
        if not policy.allow_debug:
            raise _refuse(
                Reason.DEBUG_ENCLAVE,
                "the enclave runs in debug mode, so its host can read its memory; rebuild and "
                "launch it without debug (or allow debug for development only)",
                claims,
            )
        waivers.append("debug enclave accepted")
    if not _in(claims.measurement, policy.measurements):
        raise _refuse(
            Reason.MEASUREMENT_MISMATCH,
            f"measurement {claims.measurement.hex()} is not in the policy's allow-list: this is "
            "not the code you reviewed (or add its measurement after reviewing it)",
            claims,
        )
    if policy.signers is not None and (
        claims.signer is None or not _in(claims.signer, policy.signers)
    ):
        found = "none" if claims.signer is None else claims.signer.hex()
        raise _refuse(Reason.SIGNER_MISMATCH, f"signer {found} is not in the allow-list", claims)
    if policy.min_svn is not None and (claims.svn is None or claims.svn < policy.min_svn):
        raise _refuse(
            Reason.TCB_BELOW_MINIMUM,
            f"enclave SVN {claims.svn} is below the minimum {policy.min_svn}: deploy the "
            "patched build",
            claims,
        )
    for name, floor in sorted(policy.min_tcb.items()):
        have = claims.tcb.get(name)
        if have is None or have < floor:
            raise _refuse(
                Reason.TCB_BELOW_MINIMUM,
                f"TCB component {name}={have} is below the minimum {floor}: the host must update "
                "its firmware/microcode",
                claims,
            )
    if claims.privilege_level is not None and claims.privilege_level > policy.max_vmpl:
        raise _refuse(
            Reason.PRIVILEGE_LEVEL,
            f"the report comes from VMPL {claims.privilege_level}, above the accepted "
            f"{policy.max_vmpl}",
            claims,
        )
    if claims.tcb_status is not None:
        if claims.tcb_status not in policy.allowed_tcb_statuses:
            raise _refuse(
                Reason.TCB_STATUS,
                f"TCB status {claims.tcb_status} is not accepted "
                f"(accepted: {', '.join(sorted(policy.allowed_tcb_statuses))}); the host must "
                "patch, or allow this status explicitly after assessing it",
                claims,
            )
        if claims.tcb_status != UP_TO_DATE:
            waivers.append(f"TCB status {claims.tcb_status} accepted")
    open_advisories = [a for a in claims.advisory_ids if a not in policy.allowed_advisories]
    if open_advisories:
        raise _refuse(
            Reason.ADVISORY,
            f"the platform is affected by {', '.join(open_advisories)}; the host must patch, or "
            "allow these advisories explicitly after assessing them",
            claims,
        )
    if claims.advisory_ids:
        waivers.append(f"advisories accepted: {', '.join(claims.advisory_ids)}")
    if report_data is not None:
        expected = bytes(report_data).ljust(len(claims.report_data), b"\0")
        if not hmac.compare_digest(expected, claims.report_data):
            raise _refuse(
                Reason.REPORT_DATA_MISMATCH,
                f"the report data {claims.report_data.hex()} is not the expected "
                f"{expected.hex()}: the evidence was made for another session, nonce or key "
                "(replayed or substituted)",
                claims,
            )
    if claims.evidence_time is not None:
        age = now - claims.evidence_time
        if age > policy.max_evidence_age:
            raise _refuse(
                Reason.EVIDENCE_TOO_OLD,
                f"the evidence is {age} old (maximum {policy.max_evidence_age}): request fresh "
                "evidence with a new nonce",
                claims,
            )
        if -age > policy.max_clock_skew:
            raise _refuse(
                Reason.EVIDENCE_FROM_FUTURE,
                f"the evidence is dated {certs.fmt(claims.evidence_time)}, after the appraisal "
                f"time {certs.fmt(now)}: check both clocks",
                claims,
            )
    return Verdict(claims=claims, appraised_at=now, waivers=tuple(waivers))


__all__ = ["UP_TO_DATE", "AppraisalPolicy", "Verdict", "appraise"]
