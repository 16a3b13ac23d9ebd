"""Typed refusals of the TEE layer.

Every verifier and the appraisal policy refuse by raising :class:`AttestationError` with a
:class:`Reason` code that says which check failed, and a message that says what to do about it.
Garbage input is a refusal too (``Reason.MALFORMED_EVIDENCE`` / ``MALFORMED_COLLATERAL``), never a
crash. Sealing and opening data for an attested enclave fail with :class:`ChannelError`.
"""

from __future__ import annotations

import enum

from veil.errors import ProtocolError, VeilError


class Reason(enum.Enum):
    """Why evidence was refused. The value is the stable, machine-readable code."""

    MALFORMED_EVIDENCE = "malformed_evidence"
    """The evidence does not parse as the declared platform's format."""
    MALFORMED_COLLATERAL = "malformed_collateral"
    """The collateral (certificates, CRLs, TCB info) does not parse."""
    PLATFORM_MISMATCH = "platform_mismatch"
    """The evidence is of another platform than the one declared."""
    COLLATERAL_MISMATCH = "collateral_mismatch"
    """The collateral belongs to another platform, chip, FMSPC or TCB than the evidence."""
    UNSUPPORTED = "unsupported"
    """A format version, algorithm or product this verifier does not handle (fail-closed)."""
    SIGNATURE_INVALID = "signature_invalid"
    """A signature over the evidence or the collateral does not verify."""
    CHAIN_INVALID = "chain_invalid"
    """A certificate chain is broken (wrong issuer, bad signature, not a CA)."""
    ROOT_NOT_PINNED = "root_not_pinned"
    """The chain ends at a root that is not one of the pinned vendor roots."""
    COLLATERAL_EXPIRED = "collateral_expired"
    """A certificate, CRL, TCB info or QE identity is past its validity at the verification time."""
    COLLATERAL_NOT_YET_VALID = "collateral_not_yet_valid"
    """A certificate, CRL, TCB info or QE identity is issued after the verification time."""
    REVOKED = "revoked"
    """A certificate in the chain is revoked."""
    TCB_STATUS = "tcb_status"
    """The vendor's TCB status of the platform is not in the policy's allowed statuses."""
    ADVISORY = "advisory"
    """The platform is affected by a security advisory the policy does not allow."""
    TCB_BELOW_MINIMUM = "tcb_below_minimum"
    """An SVN or TCB component is below the policy's minimum."""
    MEASUREMENT_MISMATCH = "measurement_mismatch"
    """The code measurement is not in the policy's allow-list."""
    NO_EXPECTED_MEASUREMENT = "no_expected_measurement"
    """No measurement was expected: nothing can be accepted (fail-closed)."""
    SIGNER_MISMATCH = "signer_mismatch"
    """The enclave signer is not in the policy's allow-list."""
    REPORT_DATA_MISMATCH = "report_data_mismatch"
    """The report data does not bind the expected session, nonce, key and program."""
    DEBUG_ENCLAVE = "debug_enclave"
    """The enclave or guest runs in debug mode: its host can read its memory."""
    PRIVILEGE_LEVEL = "privilege_level"
    """The report comes from a less privileged level than the policy accepts (SEV-SNP VMPL)."""
    EVIDENCE_TOO_OLD = "evidence_too_old"
    """The evidence is older than the policy's maximum evidence age."""
    EVIDENCE_FROM_FUTURE = "evidence_from_future"
    """The evidence is dated after the verification time."""
    SIMULATED = "simulated"
    """The evidence comes from a simulated enclave and the policy does not accept simulation."""
    VERIFICATION_FAILED = "verification_failed"
    """The vendor library refused the evidence for a reason not classified above (see message)."""


class AttestationError(VeilError):
    """Evidence was refused; nothing may be sent to the enclave it describes.

    Attributes
    ----------
    reason:
        Which check failed.
    detail:
        What was found and what to do about it.
    platform:
        The platform whose evidence was refused (``"sgx"``, ``"tdx"``, ...), if known.
    """

    def __init__(self, reason: Reason, detail: str, *, platform: str | None = None) -> None:
        where = f"{platform} " if platform else ""
        super().__init__(f"{where}attestation refused [{reason.value}]: {detail}")
        self.reason = reason
        self.detail = detail
        self.platform = platform


class ChannelError(ProtocolError):
    """Data sealed to an attested enclave could not be opened (wrong key, context or replay)."""


__all__ = ["AttestationError", "ChannelError", "Reason"]
