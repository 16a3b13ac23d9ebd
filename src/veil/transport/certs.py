"""Per-cluster certificates for mutual TLS: one CA, one key + certificate per party.

:func:`init_cluster` creates a fresh certificate authority (ECDSA P-256) and, for every party, a
key and a certificate whose subject common name and only DNS subject-alternative name are exactly
the party name. A party's identity on the wire *is* that name: the gRPC link accepts a connection
only from a certificate signed by the cluster CA and maps it to the party named in it.

Files written to ``out_dir``::

    ca.pem          the cluster CA certificate (public; every party needs it)
    ca.key          the CA private key (0600; keep it offline, needed only to add parties)
    <party>.pem     the party's certificate (public)
    <party>.key     the party's private key (0600; give it to that party only)

Everything here uses the ``cryptography`` package; no TLS or X.509 code is hand-written.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from veil.errors import ConfigError

_PARTY_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HINT = (
    "run `veil certs init --parties <all parties> --out DIR` to create the cluster's certificates"
)


def check_party_name(name: str) -> str:
    """Return ``name`` if it is a valid party name (``[A-Za-z0-9_-]{1,64}``), else raise.

    Raises
    ------
    ConfigError
        The name is empty, too long or holds other characters (it becomes a certificate name).
    """
    if not isinstance(name, str) or not _PARTY_RE.fullmatch(name):
        raise ConfigError(
            f"invalid party name {name!r}: use 1-64 letters, digits, '_' or '-' "
            "(it becomes the name in the party's TLS certificate)"
        )
    return name


def check_party_names(parties: Sequence[str]) -> tuple[str, ...]:
    """Validate a cluster's party list: valid names, no duplicates even ignoring case.

    Names are compared case-insensitively because TLS host-name checks are case-insensitive: two
    parties ``Bob`` and ``bob`` could otherwise pass for each other.
    """
    names = tuple(check_party_name(p) for p in parties)
    if not names:
        raise ConfigError("a cluster needs at least one party")
    seen: dict[str, str] = {}
    for n in names:
        if n.lower() in seen:
            raise ConfigError(
                f"party names {seen[n.lower()]!r} and {n!r} differ only by case; "
                "certificate names are case-insensitive, rename one"
            )
        seen[n.lower()] = n
    return names


@dataclass(frozen=True)
class TlsFiles:
    """Paths of one party's TLS material.

    Attributes
    ----------
    ca_cert:
        The cluster CA certificate (PEM).
    cert:
        This party's certificate (PEM), signed by the cluster CA, naming the party.
    key:
        This party's private key (PEM, unencrypted, mode 0600).
    """

    ca_cert: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, directory: Path | str, party: str) -> TlsFiles:
        """The files :func:`init_cluster` wrote for ``party`` in ``directory``."""
        d = Path(directory)
        check_party_name(party)
        return cls(ca_cert=d / "ca.pem", cert=d / f"{party}.pem", key=d / f"{party}.key")

    def load(self) -> TlsMaterial:
        """Read the three files; raise :class:`ConfigError` naming any missing/unreadable one."""
        return TlsMaterial(
            ca_pem=_read(self.ca_cert, "cluster CA certificate"),
            cert_pem=_read(self.cert, "party certificate"),
            key_pem=_read(self.key, "party private key"),
            files=self,
        )


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM bytes of a :class:`TlsFiles`, read once."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    files: TlsFiles

    def verify_for(self, party: str) -> None:
        """Check the material is usable by ``party``: parseable, signed by the CA, names ``party``,
        currently valid, and the key matches the certificate.

        Raises
        ------
        ConfigError
            With the file at fault and what to do.
        """
        f = self.files
        ca = _parse_cert(self.ca_pem, f.ca_cert)
        cert = _parse_cert(self.cert_pem, f.cert)
        try:
            key = serialization.load_pem_private_key(self.key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot parse private key {f.key} ({exc}); it must be an unencrypted PEM key; "
                + _HINT
            ) from None
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            raise ConfigError(
                f"certificate {f.cert} is not signed by the cluster CA {f.ca_cert}; "
                "use the files of one `veil certs init` run"
            ) from None
        names = cert_names(cert)
        if party not in names:
            raise ConfigError(
                f"certificate {f.cert} is for {sorted(names)}, not for party {party!r}; "
                f"point the config at {party}.pem / {party}.key"
            )
        now = _dt.datetime.now(_dt.UTC)
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise ConfigError(
                f"certificate {f.cert} is valid only from {cert.not_valid_before_utc:%Y-%m-%d} "
                f"to {cert.not_valid_after_utc:%Y-%m-%d}; " + _HINT
            )
        pub = serialization.PublicFormat.SubjectPublicKeyInfo
        enc = serialization.Encoding.DER
        if key.public_key().public_bytes(enc, pub) != cert.public_key().public_bytes(enc, pub):
            raise ConfigError(f"private key {f.key} does not belong to certificate {f.cert}")


def cert_names(cert: x509.Certificate) -> set[str]:
    """Names a certificate vouches for: its subject CN and DNS subject-alternative names."""
    names = {str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names.update(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    return names


def cert_common_name(cert: x509.Certificate) -> str | None:
    """The subject common name of ``cert`` (``None`` when it has none)."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else None


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist; " + _HINT) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} {path}: {exc.strerror}; check the path and its permissions"
        ) from None


def _parse_cert(pem: bytes, path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise ConfigError(f"cannot parse certificate {path} ({exc}); " + _HINT) from None


def _write(path: Path, data: bytes, private: bool) -> None:
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(path, 0o600)  # O_CREAT's mode is ignored when the file already existed
    else:
        path.write_bytes(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def init_cluster(
    parties: Sequence[str], out_dir: Path | str, *, days: int = 825
) -> dict[str, TlsFiles]:
    """Create a cluster CA and one key + certificate per party in ``out_dir``.

    Parameters
    ----------
    parties:
        Party names (``[A-Za-z0-9_-]{1,64}``, distinct ignoring case).
    out_dir:
        Folder to write into (created if missing). Existing files of the same names are replaced.
    days:
        Validity of every certificate, from now.

    Returns
    -------
    dict
        ``{party: TlsFiles}`` for each party.

    Notes
    -----
    Each party certificate has CN = SAN(DNS) = the party name and may act as TLS server and
    client; the CA has ``pathlen=0`` so a party certificate cannot sign others.
    """
    names = check_party_names(parties)
    if days < 1:
        raise ConfigError(f"certificate validity must be at least 1 day, got {days}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create certificate folder {out}: {exc.strerror}") from None
    now = _dt.datetime.now(_dt.UTC) - _dt.timedelta(minutes=5)  # tolerate small clock skew
    until = now + _dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "veil cluster CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(out / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(out / "ca.key", _key_pem(ca_key), private=True)

    result: dict[str, TlsFiles] = {}
    for party in names:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, party)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(party)]), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        files = TlsFiles.in_dir(out, party)
        _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
        _write(files.key, _key_pem(key), private=True)
        result[party] = files
    return result


__all__ = [
    "TlsFiles",
    "TlsMaterial",
    "cert_common_name",
    "cert_names",
    "check_party_name",
    "check_party_names",
    "init_cluster",
]
