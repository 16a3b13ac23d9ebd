"""Explain why a TLS connection to a peer fails, in words a user can act on.

gRPC reports a failed handshake as an opaque "UNAVAILABLE". When a link cannot connect, it calls
:func:`diagnose`, which opens one plain TLS connection to the peer with the standard-library
``ssl`` module (presenting this party's certificate, as gRPC does), fetches the certificate the
peer presents, and checks it with ``cryptography`` against the cluster CA and the expected party
name. The verdict says whether the problem is permanent (a certificate problem: fail now, do not
wait for the connect timeout) or may go away (the peer is not listening yet: keep retrying), and
whether anything answered at the address at all (``reach``): the link takes that as evidence that
a peer is up, or, once it was seen up, that its process is gone.

Only diagnostics happen here; the real connection is always made and verified by gRPC.
"""

from __future__ import annotations

import datetime as _dt
import socket
import ssl
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from veil.transport.certs import TlsMaterial, cert_common_name, cert_names


@dataclass(frozen=True)
class Diagnosis:
    """Outcome of :func:`diagnose`.

    Attributes
    ----------
    permanent:
        ``True`` for a certificate problem that retrying cannot fix.
    message:
        What is wrong and what to do, without the party prefix (``PeerError`` adds it).
    reach:
        What the TCP connect saw: ``"up"`` (something accepted the connection, so a process
        listens there), ``"refused"`` (nothing listens: connection refused), ``"silent"`` (no
        answer within the timeout) or ``"error"`` (another network error, e.g. no route).
    """

    permanent: bool
    message: str
    reach: Literal["up", "refused", "silent", "error"] = "up"


_FIX_CERT = "re-create the certificates with one `veil certs init` and give each party its own"


def _peer_refused(exc: ssl.SSLError | None) -> Diagnosis:
    how = f" ({exc.reason or exc})" if exc is not None else ""
    return Diagnosis(
        True,
        f"refused our certificate during the TLS handshake{how}: it does not trust the CA that "
        f"signed it; {_FIX_CERT}",
    )


def diagnose(
    peer: str, host: str, port: int, material: TlsMaterial, *, timeout: float = 2.0
) -> Diagnosis:
    """Probe ``peer`` at ``host:port`` and explain why a mutual-TLS connection fails.

    Parameters
    ----------
    peer:
        The party expected at that address.
    host, port:
        Its address.
    material:
        This party's TLS material (CA to check the peer against, certificate to present).
    timeout:
        Seconds for the TCP connect and the handshake.
    """
    where = f"at {host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return Diagnosis(
            False,
            f"nothing listens {where} (not started yet, or a wrong address in the config)",
            "refused",
        )
    except TimeoutError:
        return Diagnosis(
            False, f"no answer {where} within {timeout:g} s (host down? firewall?)", "silent"
        )
    except OSError as exc:
        return Diagnosis(False, f"cannot connect {where}: {exc.strerror or exc}", "error")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # we verify the peer's certificate ourselves, below
    ctx.load_cert_chain(str(material.files.cert), str(material.files.key))
    ctx.set_alpn_protocols(["h2"])
    try:
        with ctx.wrap_socket(sock, server_hostname=peer) as tls:
            der = tls.getpeercert(binary_form=True)
            verdict = _check_cert(peer, where, der, material)
            if verdict is not None:
                return verdict
            # TLS 1.3: a server that rejects our certificate says so after the handshake, with
            # an alert or by closing; one that accepts it sends its HTTP/2 settings.
            tls.settimeout(min(timeout, 1.0))
            try:
                if tls.recv(1) == b"":
                    return _peer_refused(None)
            except ssl.SSLError as exc:
                return _peer_refused(exc)
            except ConnectionError:
                return _peer_refused(None)
            except (TimeoutError, OSError):
                pass
    except ssl.SSLError as exc:
        text = f"{exc.reason} {exc}".lower()
        if "alert" in text or "certificate" in text:
            return _peer_refused(exc)
        return Diagnosis(False, f"TLS handshake {where} failed: {exc.reason or exc}")
    except OSError as exc:
        return Diagnosis(False, f"connection {where} broke during the TLS handshake: {exc}")
    return Diagnosis(False, f"TLS and certificates {where} look right, but gRPC cannot connect")


def _check_cert(
    peer: str, where: str, der: bytes | None, material: TlsMaterial
) -> Diagnosis | None:
    if not der:
        return Diagnosis(True, f"presented no certificate {where}")
    try:
        cert = x509.load_der_x509_certificate(der)
        ca = x509.load_pem_x509_certificate(material.ca_pem)
    except ValueError as exc:
        return Diagnosis(True, f"presented an unreadable certificate {where} ({exc})")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return Diagnosis(
            True,
            f"the process {where} presented a certificate not signed by this cluster's CA (issuer "
            f"{cert.issuer.rfc4514_string()!r}); {_FIX_CERT}",
        )
    names = cert_names(cert)
    if peer not in names:
        shown = cert_common_name(cert) or ", ".join(sorted(names)) or "nobody"
        return Diagnosis(
            True,
            f"the process {where} presented a valid certificate for {shown!r}, not {peer!r}: "
            f"the config's address for {peer!r} points at another party, or that process uses "
            "the wrong certificate",
        )
    now = _dt.datetime.now(_dt.UTC)
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        return Diagnosis(
            True,
            f"the process {where} presented a certificate valid only from "
            f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}; "
            "issue new certificates",
        )
    return None


__all__ = ["Diagnosis", "diagnose"]
