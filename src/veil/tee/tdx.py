"""Intel TDX: DCAP quote → :class:`~veil.tee.claims.Claims`.

Measurement: MRTD (the initial TD memory contents: the virtual firmware). RTMR0-3, MRSEAM,
MRCONFIGID, MROWNER and MROWNERCONFIG are reported in ``extra`` for policies that pin them.
Debug: the DEBUG bit (bit 0) of TDATTRIBUTES. See :mod:`veil.tee.dcap` for the checks.
"""

from __future__ import annotations

from datetime import datetime

from veil.tee.anchors import TrustAnchors
from veil.tee.claims import Claims, Platform
from veil.tee.dcap import verify_dcap
from veil.tee.errors import AttestationError, Reason

_TD_DEBUG = 0x01  # TDATTRIBUTES bit 0


def verify_tdx(
    quote: bytes,
    collateral: bytes | str,
    *,
    now: datetime,
    anchors: TrustAnchors | None = None,
) -> Claims:
    """Verify a TDX DCAP quote (v4/v5) with its collateral at time ``now``.

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
    res = verify_dcap(Platform.TDX, quote, collateral, now=now, anchors=anchors or TrustAnchors())
    r = res.quote.report
    try:
        td_attributes = bytes(r.td_attributes)
        tee_tcb_svn = bytes(r.tee_tcb_svn)
        extra: dict[str, str | int] = {
            name: bytes(getattr(r, name)).hex()
            for name in (
                "mr_seam",
                "mr_signer_seam",
                "mr_config_id",
                "mr_owner",
                "mr_owner_config",
                "rt_mr0",
                "rt_mr1",
                "rt_mr2",
                "rt_mr3",
                "xfam",
            )
        }
        measurement, report_data = bytes(r.mr_td), bytes(r.report_data)
    except (AttributeError, TypeError, ValueError) as exc:
        raise AttestationError(
            Reason.MALFORMED_EVIDENCE, f"verified quote lacks TDX fields ({exc})", platform="tdx"
        ) from exc
    header = res.quote.header
    extra.update(
        quote_version=int(header.version),
        td_attributes=td_attributes.hex(),
        tee_tcb_svn=tee_tcb_svn.hex(),
        fmspc=str(res.quote.fmspc()).lower(),
    )
    return Claims(
        platform=Platform.TDX,
        measurement=measurement,
        signer=None,
        report_data=report_data,
        debug=bool(td_attributes[0] & _TD_DEBUG),
        tcb_status=res.tcb_status,
        advisory_ids=res.advisory_ids,
        tcb={
            "qe_svn": int(header.qe_svn),
            "pce_svn": int(header.pce_svn),
            "tdx_module_minor": tee_tcb_svn[0],
            "tdx_module_major": tee_tcb_svn[1],
        },
        collateral_not_before=res.not_before,
        collateral_not_after=res.not_after,
        extra=extra,
    )


__all__ = ["verify_tdx"]
