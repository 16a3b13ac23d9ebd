"""`veil tee verify` on the real samples: exit 0 + claims JSON, 1 + typed refusal, 2 on misuse."""

from __future__ import annotations

import json
from pathlib import Path

from tee_samples import (
    DATA,
    NITRO_PCR0,
    SGX_MRENCLAVE,
    SNP_MEASUREMENT,
    TDX_MRTD,
    Sample,
)
from typer.testing import CliRunner

from veil.cli.tee import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["verify", *args])
    return result.exit_code, result.stdout, result.stderr


def iso(sample: Sample) -> str:
    return sample.at.isoformat().replace("+00:00", "Z")


def test_tdx_accepted(tdx: Sample) -> None:
    code, out, _ = run(
        str(DATA / "tdx_quote"),
        "--platform",
        "tdx",
        "--collateral",
        str(DATA / "tdx_quote_collateral.json"),
        "--at",
        iso(tdx),
        "--expect-measurement",
        TDX_MRTD,
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["verdict"] == "accepted" and doc["assurance"] == "hardware"
    assert doc["claims"]["measurement"] == TDX_MRTD
    assert doc["claims"]["tcb_status"] == "UpToDate"


def test_sgx_refused_by_default_then_accepted_with_explicit_allowances(sgx: Sample) -> None:
    base = [
        str(DATA / "sgx_quote"),
        "--platform",
        "sgx",
        "--collateral",
        str(DATA / "sgx_quote_collateral.json"),
        "--at",
        iso(sgx),
        "--expect-measurement",
        SGX_MRENCLAVE,
    ]
    code, out, err = run(*base)
    assert code == 1
    assert json.loads(out)["reason"] == "tcb_status"
    assert "ConfigurationAndSWHardeningNeeded" in err and "[tcb_status]" in err
    code, out, _ = run(
        *base,
        "--allow-tcb-status",
        "ConfigurationAndSWHardeningNeeded",
        "--allow-advisory",
        "INTEL-SA-00289",
        "--allow-advisory",
        "INTEL-SA-00615",
        "--expect-report-data",
        b"Hello, world!".hex(),
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["claims"]["advisory_ids"] == ["INTEL-SA-00289", "INTEL-SA-00615"]
    assert len(doc["waivers"]) == 2


def test_snp_debug_guest_needs_allow_debug(snp: Sample) -> None:
    base = [
        str(DATA / "snp_milan_report.bin"),
        "--platform",
        "sev-snp",
        "--collateral",
        str(DATA / "snp_milan_collateral.pem"),
        "--at",
        iso(snp),
        "--expect-measurement",
        SNP_MEASUREMENT,
    ]
    code, out, _ = run(*base)
    assert code == 1 and json.loads(out)["reason"] == "debug_enclave"
    code, out, _ = run(*base, "--allow-debug")
    assert code == 0 and json.loads(out)["claims"]["debug"] is True


def test_nitro_without_collateral(nitro: Sample) -> None:
    code, out, _ = run(
        str(DATA / "nitro_doc.b64"),
        "--platform",
        "nitro",
        "--at",
        iso(nitro),
        "--expect-measurement",
        NITRO_PCR0,
        "--allow-debug",
    )
    assert code == 0, out
    assert json.loads(out)["claims"]["extra"]["module_id"].startswith("i-0bbf1bfe232b8c2ce")


def test_refusals_exit_1(tdx: Sample) -> None:
    base = [
        str(DATA / "tdx_quote"),
        "--platform",
        "tdx",
        "--collateral",
        str(DATA / "tdx_quote_collateral.json"),
    ]
    cases = {
        "measurement_mismatch": ["--at", iso(tdx), "--expect-measurement", "ab" * 48],
        "report_data_mismatch": [
            "--at",
            iso(tdx),
            "--expect-measurement",
            TDX_MRTD,
            "--expect-report-data",
            "00",
        ],
        "collateral_expired": ["--at", "2030-01-01T00:00:00Z", "--expect-measurement", TDX_MRTD],
        "collateral_not_yet_valid": ["--at", "2020-01-01", "--expect-measurement", TDX_MRTD],
        "no_expected_measurement": ["--at", iso(tdx)],
    }
    for reason, extra in cases.items():
        code, out, _ = run(*base, *extra)
        assert code == 1, (reason, out)
        assert json.loads(out)["reason"] == reason


def test_no_expected_measurement_says_what_was_found(tdx: Sample) -> None:
    code, out, _ = run(
        str(DATA / "tdx_quote"),
        "--platform",
        "tdx",
        "--collateral",
        str(DATA / "tdx_quote_collateral.json"),
        "--at",
        iso(tdx),
    )
    assert code == 1 and TDX_MRTD in json.loads(out)["detail"]


def test_sgx_quote_with_tdx_collateral(sgx: Sample) -> None:
    code, out, _ = run(
        str(DATA / "sgx_quote"),
        "--platform",
        "sgx",
        "--collateral",
        str(DATA / "tdx_quote_collateral.json"),
        "--at",
        iso(sgx),
        "--expect-measurement",
        SGX_MRENCLAVE,
    )
    assert code == 1 and json.loads(out)["reason"] == "collateral_mismatch"


def test_garbage_evidence_is_a_refusal_not_a_crash(tmp_path: Path, sgx: Sample) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00garbage" * 10)
    for platform in ("sgx", "tdx", "sev-snp", "nitro"):
        args = [str(junk), "--platform", platform, "--at", iso(sgx), "--expect-measurement", "00"]
        if platform in ("sgx", "tdx"):
            args += ["--collateral", str(DATA / "sgx_quote_collateral.json")]
        if platform == "sev-snp":
            args += ["--collateral", str(DATA / "snp_milan_collateral.pem")]
        code, out, _ = run(*args)
        assert code == 1, (platform, out)
        assert json.loads(out)["reason"] == "malformed_evidence"


def test_usage_errors_exit_2(tmp_path: Path, tdx: Sample) -> None:
    quote, col = str(DATA / "tdx_quote"), str(DATA / "tdx_quote_collateral.json")
    m = ["--expect-measurement", TDX_MRTD]
    assert run(str(tmp_path / "missing"), "--platform", "tdx", "--collateral", col, *m)[0] == 2
    assert run(quote, "--platform", "tdx", "--collateral", str(tmp_path / "nope"), *m)[0] == 2
    assert run(quote, "--platform", "tpm", "--collateral", col, *m)[0] == 2
    assert run(quote, "--collateral", col, *m)[0] == 2  # --platform is required
    assert (
        run(quote, "--platform", "tdx", "--collateral", col, "--expect-measurement", "xyz")[0] == 2
    )
    assert run(quote, "--platform", "tdx", "--collateral", col, "--at", "yesterday", *m)[0] == 2
    code, _, err = run(quote, "--platform", "tdx", *m)  # collateral missing
    assert code == 2 and "collateral" in err
