"""Cluster certificates: what init_cluster writes, and every refusal of the TLS file loader."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from veil.errors import ConfigError
from veil.transport.certs import (
    TlsFiles,
    cert_names,
    check_party_names,
    init_cluster,
)


def test_init_cluster_files_and_names(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    files = init_cluster(["alice", "bob_2", "C-3"], out, days=30)
    assert set(files) == {"alice", "bob_2", "C-3"}
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for party, f in files.items():
        assert f == TlsFiles(out / "ca.pem", out / f"{party}.pem", out / f"{party}.key")
        assert stat.S_IMODE(f.key.stat().st_mode) == 0o600
        cert = x509.load_pem_x509_certificate(f.cert.read_bytes())
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn == party and cert_names(cert) == {party}
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        cert.verify_directly_issued_by(ca)
        days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
        assert 30 <= days <= 31
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        f.load().verify_for(party)
    assert stat.S_IMODE((out / "ca.key").stat().st_mode) == 0o600


@pytest.mark.parametrize("bad", ["", "a b", "a.b", "ünï", "x" * 65, "a/b", "../x"])
def test_bad_party_names_refused(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid party name"):
        init_cluster(["alice", bad], tmp_path)


def test_names_differing_only_by_case_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="differ only by case"):
        init_cluster(["bob", "Bob"], tmp_path)
    with pytest.raises(ConfigError, match="at least one party"):
        check_party_names([])


def test_missing_files_name_the_file_and_the_fix(tmp_path: Path) -> None:
    files = init_cluster(["alice", "bob"], tmp_path)["alice"]
    for attr, what in [("ca_cert", "CA certificate"), ("cert", "certificate"), ("key", "key")]:
        missing = TlsFiles(**{**files.__dict__, attr: tmp_path / "nope.pem"})
        with pytest.raises(ConfigError) as info:
            missing.load()
        msg = str(info.value)
        assert "nope.pem" in msg and what in msg and "veil certs init" in msg


def test_unreadable_file(tmp_path: Path) -> None:
    files = init_cluster(["alice", "bob"], tmp_path)["alice"]
    folder = TlsFiles(files.ca_cert, tmp_path, files.key)  # a directory, not a file
    with pytest.raises(ConfigError, match="cannot read"):
        folder.load()


def test_verify_for_catches_mismatches(tmp_path: Path) -> None:
    a = init_cluster(["alice", "bob"], tmp_path / "one")
    b = init_cluster(["alice", "bob"], tmp_path / "two")
    with pytest.raises(ConfigError, match="for \\['bob'\\], not for party 'alice'"):
        a["bob"].load().verify_for("alice")
    other_ca = TlsFiles(b["alice"].ca_cert, a["alice"].cert, a["alice"].key)
    with pytest.raises(ConfigError, match="not signed by the cluster CA"):
        other_ca.load().verify_for("alice")
    wrong_key = TlsFiles(a["alice"].ca_cert, a["alice"].cert, a["bob"].key)
    with pytest.raises(ConfigError, match="does not belong"):
        wrong_key.load().verify_for("alice")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError, match="cannot parse certificate"):
        TlsFiles(garbage, a["alice"].cert, a["alice"].key).load().verify_for("alice")
    with pytest.raises(ConfigError, match="cannot parse private key"):
        TlsFiles(a["alice"].ca_cert, a["alice"].cert, garbage).load().verify_for("alice")


def test_bad_days(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 1 day"):
        init_cluster(["a"], tmp_path, days=0)
