"""Intel SGX: DCAP quote → :class:`~veil.tee.claims.Claims`.

Measurement: MRENCLAVE. Signer: MRSIGNER. Debug: the DEBUG bit of the enclave ATTRIBUTES.
See :mod:`veil.tee.dcap` for the threat model and the checks.
"""

from __future__ import annotations

from datetime import datetime

from veil.tee.anchors import TrustAnchors
from veil.tee.claims import Claims, Platform
from veil.tee.dcap import verify_dcap
from veil.tee.errors import AttestationError, Reason

_ATTR_DEBUG = 0x02  # SGX ATTRIBUTES.FLAGS bit 1


def verify_sgx(
    quote: bytes,
    collateral: bytes | str,
    *,
    now: datetime,
    anchors: TrustAnchors | None = None,
) -> Claims:
    """Verify an SGX DCAP quote (v3) with its collateral at time ``now``.

    Parameters
    ----------
    quote:
        The raw quote.
    collateral:
        ``dcap-qvl`` ``QuoteCollateralV3`` JSON.
    now:
        Verification time (timezone-aware); the collateral must be valid then.
    anchors:
        Pinned roots; the Intel SGX Root CA by default.

    Returns
    -------
    Claims
        Verified, not yet appraised.

    Raises
    ------
    AttestationError
        If any check fails.
    """
    res = verify_dcap(Platform.SGX, quote, collateral, now=now, anchors=anchors or TrustAnchors())
    enclave = res.report.get("SgxEnclave")
    r = res.quote.report
    try:
        if not isinstance(enclave, dict):
            raise ValueError("no SGX enclave report in the verified quote")
        attributes = bytes(r.attributes)
        svn = int(enclave["isv_svn"])
        prod = int(enclave["isv_prod_id"])
        measurement, signer = bytes(r.mr_enclave), bytes(r.mr_signer)
        report_data, cpu_svn = bytes(r.report_data), bytes(r.cpu_svn)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AttestationError(
            Reason.MALFORMED_EVIDENCE, f"verified quote lacks SGX fields ({exc})", platform="sgx"
        ) from exc
    header = res.quote.header
    return Claims(
        platform=Platform.SGX,
        measurement=measurement,
        signer=signer,
        report_data=report_data,
        debug=bool(attributes[0] & _ATTR_DEBUG),
        tcb_status=res.tcb_status,
        advisory_ids=res.advisory_ids,
        svn=svn,
        product_id=prod,
        tcb={"qe_svn": int(header.qe_svn), "pce_svn": int(header.pce_svn)},
        collateral_not_before=res.not_before,
        collateral_not_after=res.not_after,
        extra={
            "quote_version": int(header.version),
            "attributes": attributes.hex(),
            "cpu_svn": cpu_svn.hex(),
            "fmspc": str(res.quote.fmspc()).lower(),
        },
    )


__all__ = ["verify_sgx"]
