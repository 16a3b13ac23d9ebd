"""Verified claims: what a verifier established about an enclave, independent of the platform.

A :class:`Claims` object only comes out of a verifier after every signature and certificate
chain checked out and every piece of collateral was valid at the verification time. It says
nothing yet about whether the enclave is *acceptable*: that is the appraisal policy's job
(:mod:`veil.tee.policy`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any


class Platform(enum.Enum):
    """A TEE platform whose evidence veil can verify."""

    SGX = "sgx"
    """Intel SGX enclave, DCAP quote (measurement: MRENCLAVE)."""
    TDX = "tdx"
    """Intel TDX trust domain, DCAP quote (measurement: MRTD)."""
    SEV_SNP = "sev-snp"
    """AMD SEV-SNP guest, attestation report (measurement: launch MEASUREMENT)."""
    NITRO = "nitro"
    """AWS Nitro Enclave, attestation document (measurement: PCR0)."""
    SIM = "sim"
    """Simulated enclave: as trusted as the third party running it, never hardware-backed."""


def _frozen_map(m: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(m))


@dataclass(frozen=True)
class Claims:
    """What verified evidence says about an enclave.

    Attributes
    ----------
    platform:
        The platform that produced the evidence.
    measurement:
        The code identity: MRENCLAVE (SGX), MRTD (TDX), launch MEASUREMENT (SEV-SNP), PCR0 (Nitro).
    signer:
        The code signer identity where the platform has one: MRSIGNER (SGX), ID key digest
        (SEV-SNP), PCR8 (Nitro); ``None`` for TDX.
    report_data:
        The enclave-chosen data bound into the signed evidence (64 bytes; Nitro: ``user_data``).
    debug:
        True if the enclave or guest runs in debug mode (its host can read its memory).
    tcb_status:
        The vendor's assessment of the platform TCB (Intel: ``UpToDate``, ``SWHardeningNeeded``,
        ``ConfigurationNeeded``, ``ConfigurationAndSWHardeningNeeded``, ``OutOfDate``, ...).
        ``None`` where the vendor publishes no such status with the evidence (SEV-SNP: use
        TCB floors; Nitro: the platform is managed by AWS).
    advisory_ids:
        Security advisories the vendor says affect this platform (Intel SA ids).
    svn:
        The enclave's security version (SGX ISVSVN, SEV-SNP GUEST_SVN), if any.
    product_id:
        SGX ISVPRODID, if any.
    tcb:
        Named platform TCB components (SEV-SNP: ``boot_loader``, ``tee``, ``snp``,
        ``microcode``; Intel: ``pce_svn``, ``qe_svn``, ...), compared against policy floors.
    privilege_level:
        SEV-SNP VMPL the report was requested from (0 is most privileged); ``None`` elsewhere.
    evidence_time:
        When the evidence was produced, if the platform dates it (Nitro). SGX, TDX and SEV-SNP
        evidence is undated: freshness comes from the verifier nonce in the report data.
    collateral_not_before, collateral_not_after:
        The window in which every certificate, CRL and TCB document used was valid.
    extra:
        Further platform fields (hex strings or ints), reported for audit.
    """

    platform: Platform
    measurement: bytes
    report_data: bytes
    debug: bool
    signer: bytes | None = None
    tcb_status: str | None = None
    advisory_ids: tuple[str, ...] = ()
    svn: int | None = None
    product_id: int | None = None
    tcb: Mapping[str, int] = field(default_factory=dict)
    privilege_level: int | None = None
    evidence_time: datetime | None = None
    collateral_not_before: datetime | None = None
    collateral_not_after: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tcb", _frozen_map(self.tcb))
        object.__setattr__(self, "extra", _frozen_map(self.extra))
        object.__setattr__(self, "advisory_ids", tuple(sorted(set(self.advisory_ids))))

    @property
    def simulated(self) -> bool:
        """True for evidence from the simulated runtime (never hardware-backed)."""
        return self.platform is Platform.SIM

    def to_json_dict(self) -> dict[str, Any]:
        """The claims as a JSON-ready dict (bytes as lowercase hex, times as ISO 8601 UTC)."""

        def ts(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat().replace("+00:00", "Z")

        return {
            "platform": self.platform.value,
            "measurement": self.measurement.hex(),
            "signer": None if self.signer is None else self.signer.hex(),
            "report_data": self.report_data.hex(),
            "debug": self.debug,
            "simulated": self.simulated,
            "tcb_status": self.tcb_status,
            "advisory_ids": list(self.advisory_ids),
            "svn": self.svn,
            "product_id": self.product_id,
            "tcb": dict(self.tcb),
            "privilege_level": self.privilege_level,
            "evidence_time": ts(self.evidence_time),
            "collateral_not_before": ts(self.collateral_not_before),
            "collateral_not_after": ts(self.collateral_not_after),
            "extra": dict(self.extra),
        }


__all__ = ["Claims", "Platform"]
