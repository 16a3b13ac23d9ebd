"""``veil tee``: verify attestation evidence as a relying party.

``veil tee verify`` prints the verified claims as JSON and exits 0 when the evidence is accepted;
prints the typed refusal as JSON (stdout) with a one-line explanation (stderr) and exits 1 when
it is refused; exits 2 on bad usage, an unreadable file, or a bad value.
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from veil.cli.common import err_console
from veil.errors import ConfigError
from veil.tee.claims import Platform
from veil.tee.errors import AttestationError, Reason
from veil.tee.policy import AppraisalPolicy, appraise
from veil.tee.verify import verify_evidence

app = typer.Typer(
    help="Verify TEE attestation evidence (Intel SGX/TDX, AMD SEV-SNP, AWS Nitro).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class PlatformChoice(enum.StrEnum):
    """Hardware platforms ``veil tee verify`` accepts."""

    sgx = "sgx"
    tdx = "tdx"
    sev_snp = "sev-snp"
    nitro = "nitro"


@app.callback()
def _tee() -> None:
    """Verify TEE attestation evidence (Intel SGX/TDX, AMD SEV-SNP, AWS Nitro)."""


def _usage(message: str) -> typer.Exit:
    err_console().print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(2)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _usage(f"cannot read the {what} file {str(path)!r}: {exc.strerror or exc}") from None


def _hex(values: list[str] | None, option: str) -> list[bytes]:
    out = []
    for v in values or []:
        text = v.strip().lower().removeprefix("0x")
        try:
            out.append(bytes.fromhex(text))
        except ValueError:
            raise _usage(f"{option} expects hex, got {v!r}") from None
        if not out[-1]:
            raise _usage(f"{option} expects a non-empty hex value")
    return out


def _time(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(at.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _usage(
            f"--at expects an ISO 8601 time such as 2025-06-20T00:00:00Z, got {at!r}"
        ) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _refused(exc: AttestationError) -> typer.Exit:
    doc = {
        "verdict": "refused",
        "platform": exc.platform,
        "reason": exc.reason.value,
        "detail": exc.detail,
    }
    typer.echo(json.dumps(doc, indent=2))
    err_console().print(f"[bold red]refused:[/] {escape(str(exc))}", highlight=False)
    return typer.Exit(1)


@app.command()
def verify(
    evidence: Annotated[
        Path,
        typer.Argument(help="The quote, report or attestation document (raw or base64 for Nitro)."),
    ],
    platform: Annotated[PlatformChoice, typer.Option(help="Which TEE produced the evidence.")],
    collateral: Annotated[
        Path | None,
        typer.Option(
            help="SGX/TDX: dcap-qvl collateral JSON. SEV-SNP: PEM bundle of VCEK, ASK and ARK. "
            "Nitro: none (the chain is inside the document)."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(help="Verification time, ISO 8601 (UTC if no zone). Default: now."),
    ] = None,
    expect_measurement: Annotated[
        list[str] | None,
        typer.Option(
            help="Accepted measurement, hex (repeatable): MRENCLAVE (sgx), MRTD (tdx), launch "
            "measurement (sev-snp), PCR0 (nitro). Required: without it nothing is accepted."
        ),
    ] = None,
    expect_signer: Annotated[
        list[str] | None,
        typer.Option(help="Accepted signer, hex (repeatable): MRSIGNER, ID key digest, PCR8."),
    ] = None,
    expect_report_data: Annotated[
        str | None,
        typer.Option(help="Expected report data, hex (right-padded with zero bytes)."),
    ] = None,
    allow_tcb_status: Annotated[
        list[str] | None,
        typer.Option(help="Also accept this TCB status (repeatable); UpToDate is always accepted."),
    ] = None,
    allow_advisory: Annotated[
        list[str] | None,
        typer.Option(help="Accept this security advisory id, e.g. INTEL-SA-00615 (repeatable)."),
    ] = None,
    allow_debug: Annotated[
        bool, typer.Option("--allow-debug", help="Accept a debug enclave (development only).")
    ] = False,
) -> None:
    """Verify EVIDENCE and appraise it under a fail-closed policy; print the claims as JSON."""
    raw = _read(evidence, "evidence")
    col = None if collateral is None else _read(collateral, "collateral")
    now = _time(at)
    measurements = _hex(expect_measurement, "--expect-measurement")
    signers = _hex(expect_signer, "--expect-signer")
    report_data = (
        _hex([expect_report_data], "--expect-report-data")[0] if expect_report_data else None
    )
    try:
        claims = verify_evidence(Platform(platform.value), raw, col, now=now)
        if not measurements:
            raise AttestationError(
                Reason.NO_EXPECTED_MEASUREMENT,
                f"no --expect-measurement given, so nothing can be accepted (fail-closed); the "
                f"evidence verifies and its measurement is {claims.measurement.hex()}: pass it "
                "with --expect-measurement only if it is the build you reviewed",
                platform=platform.value,
            )
        policy = AppraisalPolicy(
            measurements=frozenset(measurements),
            signers=frozenset(signers) if signers else None,
            allowed_tcb_statuses=frozenset({"UpToDate", *(allow_tcb_status or [])}),
            allowed_advisories=frozenset(allow_advisory or []),
            allow_debug=allow_debug,
        )
        verdict = appraise(claims, policy, now, report_data=report_data)
    except AttestationError as exc:
        raise _refused(exc) from None
    except ConfigError as exc:
        raise _usage(str(exc)) from None
    doc: dict[str, Any] = {
        "verdict": "accepted",
        "assurance": verdict.assurance,
        "appraised_at": verdict.appraised_at.isoformat().replace("+00:00", "Z"),
        "waivers": list(verdict.waivers),
        "claims": claims.to_json_dict(),
    }
    typer.echo(json.dumps(doc, indent=2))


__all__ = ["app", "verify"]
