"""Pinned vendor roots of trust.

A verifier trusts a chain only if it ends at one of these roots, compared by the SHA-256 of the
root certificate's DER encoding. The pins are public facts, each cross-checked against two
independent public sources when it was added (see ``docs/tee.md``):

- Intel SGX Provisioning Certification Root CA (signs SGX and TDX PCK, TCB info and QE identity
  chains): published by Intel; the same root is embedded in ``dcap-qvl``.
- AMD Root Keys (ARK), one per SEV-SNP product line: published by AMD's Key Distribution
  Service (KDS); identical copies ship in ``google/go-sev-guest`` (``verify/trust/*.pem``) and,
  for Milan, in the ``omne-attest`` test vectors.
- AWS Nitro Enclaves Root-G1: published by AWS (its fingerprint is in the Nitro Enclaves
  documentation); the same certificate heads the ``cabundle`` of every attestation document.

Override them (e.g. to rotate a root, or in tests to show a wrong pin is refused) by building a
:class:`TrustAnchors` yourself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

INTEL_SGX_ROOT_CA_SHA256 = bytes.fromhex(
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
)
"""SHA-256 of the DER of ``CN=Intel SGX Root CA`` (2018-05-21 .. 2049-12-31)."""

AMD_ARK_SHA256: Mapping[str, bytes] = MappingProxyType(
    {
        "Milan": bytes.fromhex("69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"),
        "Genoa": bytes.fromhex("4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"),
        "Turin": bytes.fromhex("1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"),
    }
)
"""SHA-256 of the DER of ``CN=ARK-<product>``, per SEV-SNP product line."""

AWS_NITRO_ROOT_G1_SHA256 = bytes.fromhex(
    "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
)
"""SHA-256 of the DER of ``CN=aws.nitro-enclaves`` (AWS Nitro Enclaves Root-G1, 2019 .. 2049)."""


@dataclass(frozen=True)
class TrustAnchors:
    """The roots a verifier accepts, as SHA-256 fingerprints of their DER certificates.

    Attributes
    ----------
    intel_root_sha256:
        Accepted Intel SGX/TDX DCAP roots.
    amd_ark_sha256:
        Accepted AMD ARK per product line (``"Milan"``, ``"Genoa"``, ``"Turin"``).
    nitro_root_sha256:
        Accepted AWS Nitro Enclaves roots.
    sim_root_public_keys:
        Accepted development roots of the simulated runtime (raw Ed25519 public keys). Empty by
        default: simulated evidence verifies only against a root the deployment pinned.
    """

    intel_root_sha256: frozenset[bytes] = frozenset({INTEL_SGX_ROOT_CA_SHA256})
    amd_ark_sha256: Mapping[str, bytes] = field(default_factory=lambda: AMD_ARK_SHA256)
    nitro_root_sha256: frozenset[bytes] = frozenset({AWS_NITRO_ROOT_G1_SHA256})
    sim_root_public_keys: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "amd_ark_sha256", MappingProxyType(dict(self.amd_ark_sha256)))


__all__ = [
    "AMD_ARK_SHA256",
    "AWS_NITRO_ROOT_G1_SHA256",
    "INTEL_SGX_ROOT_CA_SHA256",
    "TrustAnchors",
]
