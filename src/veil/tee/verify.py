"""One entry point for every platform: evidence → claims, and evidence → verdict.

:func:`verify_evidence` dispatches to the platform verifier (pure function of the evidence, the
collateral, the trust anchors and the injected time); :func:`attest` adds the appraisal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from veil.errors import ConfigError
from veil.tee.anchors import TrustAnchors
from veil.tee.claims import Claims, Platform
from veil.tee.policy import AppraisalPolicy, Verdict, appraise

Verifier = Callable[..., Claims]


def _verifier(platform: Platform) -> Verifier:
    # Imported on use: each verifier pulls in its own optional dependency.
    if platform is Platform.SGX:
        from veil.tee.sgx import verify_sgx

        return verify_sgx
    if platform is Platform.TDX:
        from veil.tee.tdx import verify_tdx

        return verify_tdx
    if platform is Platform.SEV_SNP:
        from veil.tee.snp import verify_snp

        return verify_snp
    if platform is Platform.NITRO:
        from veil.tee.nitro import verify_nitro

        return verify_nitro
    from veil.tee.sim import verify_sim

    return verify_sim


def verify_evidence(
    platform: Platform | str,
    evidence: bytes,
    collateral: bytes | str | None,
    *,
    now: datetime,
    anchors: TrustAnchors | None = None,
) -> Claims:
    """Verify evidence of ``platform`` at time ``now`` and return its claims (not appraised).

    Parameters
    ----------
    platform:
        ``sgx``, ``tdx``, ``sev-snp``, ``nitro``, or ``sim`` (simulated: as trusted as a third
        party; verifies only against a pinned development root).
    evidence:
        The quote, report or attestation document.
    collateral:
        SGX/TDX: ``dcap-qvl`` collateral JSON; SEV-SNP: PEM bundle of VCEK, ASK and ARK; Nitro:
        ``None`` (the chain is inside the document); sim: ``None``.
    now:
        Verification time (timezone-aware).
    anchors:
        Pinned vendor roots (default: the vendors' published roots).

    Raises
    ------
    AttestationError
        If the evidence does not verify.
    ConfigError
        On a missing collateral, an unknown platform, or a missing optional dependency.
    """
    try:
        p = Platform(platform)
    except ValueError:
        raise ConfigError(
            f"unknown platform {platform!r}; use one of sgx, tdx, sev-snp, nitro, sim"
        ) from None
    verifier = _verifier(p)
    if p in (Platform.NITRO, Platform.SIM):
        return verifier(evidence, collateral, now=now, anchors=anchors)
    if collateral is None:
        raise ConfigError(
            f"{p.value} evidence needs its collateral: "
            + (
                "the dcap-qvl collateral JSON (dcap_qvl.get_collateral)"
                if p in (Platform.SGX, Platform.TDX)
                else "a PEM bundle of the VCEK, ASK and ARK from AMD KDS"
            )
        )
    return verifier(evidence, collateral, now=now, anchors=anchors)


def attest(
    platform: Platform | str,
    evidence: bytes,
    collateral: bytes | str | None,
    policy: AppraisalPolicy,
    *,
    now: datetime,
    report_data: bytes | None = None,
    anchors: TrustAnchors | None = None,
) -> Verdict:
    """Verify then appraise: a :class:`Verdict` on acceptance, :class:`AttestationError` otherwise.

    See :func:`verify_evidence` and :func:`veil.tee.policy.appraise` for the parameters.
    """
    claims = verify_evidence(platform, evidence, collateral, now=now, anchors=anchors)
    return appraise(claims, policy, now, report_data=report_data)


__all__ = ["attest", "verify_evidence"]
