"""AMD SEV-SNP: attestation report + VCEK/ASK/ARK chain → :class:`~veil.tee.claims.Claims`.

Threat model: the hypervisor relays the 1184-byte ``ATTESTATION_REPORT`` and the certificates;
it may alter any byte, substitute another chip's VCEK, or serve certificates outside their
validity. The report is trusted only if (a) the ARK is a pinned AMD root for the product line,
(b) ARK → ASK → VCEK verify (RSASSA-PSS/SHA-384) and are valid at the injected time, (c) the
report's ECDSA P-384 signature verifies under the VCEK, and (d) the VCEK was issued for *this*
chip (hwID = CHIP_ID) at *this* TCB (SPL extensions = REPORTED_TCB). Without (d) any valid
signature from another chip's key would pass.

Measurement: the launch MEASUREMENT. Signer: ID_KEY_DIGEST (``None`` without an ID block).
Debug: guest POLICY bit 19. SEV-SNP reports carry no vendor TCB *status*; appraise the TCB with
floors on ``boot_loader``, ``tee``, ``snp`` and ``microcode``. Not handled (refused as
``unsupported``): VLEK-signed reports, reports with MASK_CHIP_KEY, and Turin (whose TCB_VERSION
layout differs; its ARK is pinned for when it is). CRL revocation of the VCEK is not checked
(the AMD KDS CRL is not part of the collateral format yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from veil.tee import certs
from veil.tee.anchors import TrustAnchors
from veil.tee.claims import Claims, Platform
from veil.tee.errors import AttestationError, Reason

REPORT_LEN = 0x4A0
SIGNED_LEN = 0x2A0
POLICY_DEBUG = 1 << 19
_P = Platform.SEV_SNP.value
_OID_HWID = "1.3.6.1.4.1.3704.1.4"
_OID_SPL = {
    "boot_loader": "1.3.6.1.4.1.3704.1.3.1",
    "tee": "1.3.6.1.4.1.3704.1.3.2",
    "snp": "1.3.6.1.4.1.3704.1.3.3",
    "microcode": "1.3.6.1.4.1.3704.1.3.8",
}
_SUPPORTED_PRODUCTS = ("Milan", "Genoa")


def _u32(b: bytes, off: int) -> int:
    return int.from_bytes(b[off : off + 4], "little")


def _u64(b: bytes, off: int) -> int:
    return int.from_bytes(b[off : off + 8], "little")


def _tcb(b: bytes, off: int) -> dict[str, int]:
    """A Milan/Genoa TCB_VERSION: byte 0 boot loader, 1 TEE, 6 SNP firmware, 7 microcode."""
    raw = b[off : off + 8]
    return {"boot_loader": raw[0], "tee": raw[1], "snp": raw[6], "microcode": raw[7]}


@dataclass(frozen=True)
class SnpReport:
    """The fields of an SEV-SNP ``ATTESTATION_REPORT`` (ABI v2-v5) that veil uses."""

    raw: bytes
    version: int
    guest_svn: int
    policy: int
    family_id: bytes
    image_id: bytes
    vmpl: int
    signing_key: int
    mask_chip_key: bool
    current_tcb: dict[str, int]
    platform_info: int
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    reported_tcb: dict[str, int]
    chip_id: bytes
    committed_tcb: dict[str, int]
    launch_tcb: dict[str, int]
    sig_r: int
    sig_s: int

    @classmethod
    def parse(cls, report: bytes) -> SnpReport:
        """Parse the fixed layout; wrong length, version or algorithm is refused."""
        b = bytes(report)
        if len(b) != REPORT_LEN:
            raise AttestationError(
                Reason.MALFORMED_EVIDENCE,
                f"an SEV-SNP report is {REPORT_LEN} bytes, this is {len(b)}",
                platform=_P,
            )
        version = _u32(b, 0x00)
        if not 2 <= version <= 5:
            raise AttestationError(
                Reason.UNSUPPORTED, f"report version {version} (supported: 2..5)", platform=_P
            )
        algo = _u32(b, 0x34)
        if algo != 1:
            raise AttestationError(
                Reason.UNSUPPORTED,
                f"signature algorithm {algo} (supported: 1 = ECDSA P-384 with SHA-384)",
                platform=_P,
            )
        r_le, s_le = b[0x2A0 : 0x2A0 + 72], b[0x2E8 : 0x2E8 + 72]
        if any(r_le[48:]) or any(s_le[48:]):
            raise AttestationError(
                Reason.SIGNATURE_INVALID, "signature components exceed 384 bits", platform=_P
            )
        flags = _u32(b, 0x48)
        return cls(
            raw=b,
            version=version,
            guest_svn=_u32(b, 0x04),
            policy=_u64(b, 0x08),
            family_id=b[0x10:0x20],
            image_id=b[0x20:0x30],
            vmpl=_u32(b, 0x30),
            signing_key=(flags >> 2) & 0x7,
            mask_chip_key=bool(flags & 0x2),
            current_tcb=_tcb(b, 0x38),
            platform_info=_u64(b, 0x40),
            report_data=b[0x50:0x90],
            measurement=b[0x90:0xC0],
            host_data=b[0xC0:0xE0],
            id_key_digest=b[0xE0:0x110],
            author_key_digest=b[0x110:0x140],
            report_id=b[0x140:0x160],
            reported_tcb=_tcb(b, 0x180),
            chip_id=b[0x1A0:0x1E0],
            committed_tcb=_tcb(b, 0x1E0),
            launch_tcb=_tcb(b, 0x1F0),
            sig_r=int.from_bytes(r_le[:48], "little"),
            sig_s=int.from_bytes(s_le[:48], "little"),
        )


def _der_tlv(v: bytes, tag: int) -> bytes | None:
    """The value of a single DER TLV with ``tag`` spanning all of ``v``, else ``None``."""
    if len(v) < 2 or v[0] != tag:
        return None
    n, off = v[1], 2
    if n & 0x80:
        count = n & 0x7F
        if count == 0 or count > 4 or len(v) < 2 + count:
            return None
        n, off = int.from_bytes(v[2 : 2 + count], "big"), 2 + count
    return v[off : off + n] if len(v) == off + n else None


def _ext_value(cert: x509.Certificate, oid: str) -> bytes:
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid))
    except x509.ExtensionNotFound:
        raise AttestationError(
            Reason.MALFORMED_COLLATERAL, f"the VCEK lacks AMD extension {oid}", platform=_P
        ) from None
    except Exception as exc:  # malformed extensions in untrusted certificates
        raise AttestationError(
            Reason.MALFORMED_COLLATERAL, f"the VCEK's extensions do not parse ({exc})", platform=_P
        ) from exc
    value = ext.value
    if isinstance(value, x509.UnrecognizedExtension):
        return bytes(value.value)
    return bytes(value.public_bytes())


def _vcek_tcb(vcek: x509.Certificate) -> dict[str, int]:
    out = {}
    for name, oid in _OID_SPL.items():
        body = _der_tlv(_ext_value(vcek, oid), 0x02)
        if body is None or not body or len(body) > 2 or int.from_bytes(body, "big") > 255:
            raise AttestationError(
                Reason.MALFORMED_COLLATERAL, f"VCEK SPL extension {oid} is not a byte", platform=_P
            )
        out[name] = int.from_bytes(body, "big")
    return out


def _split_collateral(
    collateral: bytes,
) -> tuple[x509.Certificate, x509.Certificate, x509.Certificate]:
    bundle = certs.load_pem_bundle(collateral, "SEV-SNP collateral", _P)
    vcek = [c for c in bundle if certs.cn(c) == "SEV-VCEK"]
    if any(certs.cn(c) == "SEV-VLEK" for c in bundle):
        raise AttestationError(
            Reason.UNSUPPORTED, "VLEK-signed reports are not supported yet; use a VCEK", platform=_P
        )
    ark = [c for c in bundle if certs.cn(c).startswith("ARK-")]
    ask = [c for c in bundle if certs.cn(c).startswith("SEV-") and c not in vcek]
    if len(vcek) != 1 or len(ask) != 1 or len(ark) != 1:
        raise AttestationError(
            Reason.MALFORMED_COLLATERAL,
            "the collateral must hold exactly one VCEK (CN=SEV-VCEK), one ASK (CN=SEV-<product>) "
            "and one ARK (CN=ARK-<product>) as PEM; get them from AMD KDS "
            "(/vcek/v1/<product>/<chip_id> and /vcek/v1/<product>/cert_chain)",
            platform=_P,
        )
    return vcek[0], ask[0], ark[0]


def verify_snp(
    report: bytes,
    collateral: bytes | str,
    *,
    now: datetime,
    anchors: TrustAnchors | None = None,
) -> Claims:
    """Verify an SEV-SNP attestation report against its VCEK/ASK/ARK chain at time ``now``.

    Parameters
    ----------
    report:
        The raw 1184-byte ``ATTESTATION_REPORT``.
    collateral:
        A PEM bundle holding the VCEK, the ASK and the ARK (any order).
    now:
        Verification time (timezone-aware); every certificate must be valid then.
    anchors:
        Pinned ARKs per product line; AMD's by default.

    Returns
    -------
    Claims
        Verified, not yet appraised.

    Raises
    ------
    AttestationError
        If any check fails.
    """
    now = certs.utc(now)
    anchors = anchors or TrustAnchors()
    rep = SnpReport.parse(report)
    if rep.signing_key != 0 or rep.mask_chip_key:
        raise AttestationError(
            Reason.UNSUPPORTED,
            "only VCEK-signed reports without MASK_CHIP_KEY are supported",
            platform=_P,
        )
    raw = collateral.encode() if isinstance(collateral, str) else bytes(collateral)
    vcek, ask, ark = _split_collateral(raw)
    product = certs.cn(ark).removeprefix("ARK-")
    if certs.cn(ask) != f"SEV-{product}":
        raise AttestationError(
            Reason.CHAIN_INVALID,
            f"the ASK {certs.cn(ask)!r} is not for product {product!r}",
            platform=_P,
        )
    pin = anchors.amd_ark_sha256.get(product)
    if pin is None:
        raise AttestationError(
            Reason.ROOT_NOT_PINNED,
            f"no ARK is pinned for product {product!r} (pinned: "
            f"{', '.join(sorted(anchors.amd_ark_sha256))})",
            platform=_P,
        )
    certs.check_chain([ark, ask, vcek], frozenset({pin}), now, f"AMD {product} chain", _P)
    if product not in _SUPPORTED_PRODUCTS:
        raise AttestationError(
            Reason.UNSUPPORTED,
            f"{product} reports are not supported yet "
            f"(supported: {', '.join(_SUPPORTED_PRODUCTS)})",
            platform=_P,
        )

    pub = vcek.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or not isinstance(pub.curve, ec.SECP384R1):
        raise AttestationError(Reason.CHAIN_INVALID, "the VCEK key is not ECDSA P-384", platform=_P)
    try:
        pub.verify(
            encode_dss_signature(rep.sig_r, rep.sig_s),
            rep.raw[:SIGNED_LEN],
            ec.ECDSA(hashes.SHA384()),
        )
    except InvalidSignature:
        raise AttestationError(
            Reason.SIGNATURE_INVALID,
            "the report's signature does not verify under the VCEK: the report was altered or "
            "the VCEK is not this chip's",
            platform=_P,
        ) from None

    hwid = _ext_value(vcek, _OID_HWID)
    hwid = _der_tlv(hwid, 0x04) or hwid
    if hwid != rep.chip_id:
        raise AttestationError(
            Reason.COLLATERAL_MISMATCH,
            "the VCEK was issued for another chip than the one in the report: fetch the VCEK "
            "for this CHIP_ID from AMD KDS",
            platform=_P,
        )
    cert_tcb = _vcek_tcb(vcek)
    if cert_tcb != rep.reported_tcb:
        raise AttestationError(
            Reason.COLLATERAL_MISMATCH,
            f"the VCEK was issued at TCB {cert_tcb}, the report claims {rep.reported_tcb}: "
            "fetch the VCEK for the reported TCB",
            platform=_P,
        )
    return Claims(
        platform=Platform.SEV_SNP,
        measurement=rep.measurement,
        signer=rep.id_key_digest if any(rep.id_key_digest) else None,
        report_data=rep.report_data,
        debug=bool(rep.policy & POLICY_DEBUG),
        tcb_status=None,
        svn=rep.guest_svn,
        tcb=rep.reported_tcb,
        privilege_level=rep.vmpl,
        collateral_not_before=max(c.not_valid_before_utc for c in (ark, ask, vcek)),
        collateral_not_after=min(c.not_valid_after_utc for c in (ark, ask, vcek)),
        extra={
            "product": product,
            "report_version": rep.version,
            "guest_policy": f"0x{rep.policy:x}",
            "host_data": rep.host_data.hex(),
            "family_id": rep.family_id.hex(),
            "image_id": rep.image_id.hex(),
            "author_key_digest": rep.author_key_digest.hex(),
            "report_id": rep.report_id.hex(),
            "chip_id": rep.chip_id.hex(),
            "platform_info": f"0x{rep.platform_info:x}",
            "current_tcb": rep.current_tcb,
            "committed_tcb": rep.committed_tcb,
            "launch_tcb": rep.launch_tcb,
        },
    )


__all__ = ["POLICY_DEBUG", "REPORT_LEN", "SIGNED_LEN", "SnpReport", "verify_snp"]
