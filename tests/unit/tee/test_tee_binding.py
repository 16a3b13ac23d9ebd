"""Binding evidence to session, nonce, key and program; the channel to the attested key.

Replay, key substitution, cross-session decryption and wrong AAD must all fail."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from veil.errors import ConfigError
from veil.tee import (
    AppraisalPolicy,
    AttestationError,
    ChannelError,
    Claims,
    EnclaveInbox,
    Platform,
    Reason,
    appraise,
    bind_key,
    new_nonce,
    raw_public_key,
    report_data,
    seal,
)
from veil.tee.binding import AttestedKey

NOW = datetime(2026, 1, 1, tzinfo=UTC)
M = b"\x33" * 48
PROGRAM = hashlib.sha256(b"program v1").digest()
POLICY = AppraisalPolicy(measurements=frozenset({M}))


class Enclave:
    """The enclave side of a session: a fresh key, evidence binding it, an inbox."""

    def __init__(self, session: bytes, nonce: bytes, program: bytes = PROGRAM) -> None:
        self.key = X25519PrivateKey.generate()
        self.public = raw_public_key(self.key)
        self.claims = Claims(
            platform=Platform.TDX,
            measurement=M,
            report_data=report_data(session, nonce, self.public, program),
            debug=False,
            tcb_status="UpToDate",
        )
        self.inbox = EnclaveInbox(self.key, session, program, M)


def owner_accepts(enclave: Enclave, session: bytes, nonce: bytes) -> AttestedKey:
    verdict = appraise(enclave.claims, POLICY, NOW)
    return bind_key(
        verdict,
        session_id=session,
        nonce=nonce,
        enclave_public_key=enclave.public,
        program_hash=PROGRAM,
    )


def test_report_data_known_answer() -> None:
    rd = report_data(b"session-1", b"\x00" * 16, b"\x01" * 32, b"\x02" * 32)
    assert len(rd) == 64
    assert (
        rd.hex()
        == hashlib.sha512(
            b"veil/tee/report-data/v1"
            + b"\x00\x00\x00\x09session-1"
            + b"\x00\x00\x00\x10"
            + b"\x00" * 16
            + b"\x00\x00\x00\x20"
            + b"\x01" * 32
            + b"\x00\x00\x00\x20"
            + b"\x02" * 32
        ).hexdigest()
    )
    assert report_data("session-1", b"\x00" * 16, b"\x01" * 32, b"\x02" * 32) == rd


def test_report_data_fields_are_unambiguous() -> None:
    a = report_data(b"ab", b"c" * 16, b"\x01" * 32, b"\x02" * 32)
    b = report_data(b"a", b"bc" + b"c" * 15, b"\x01" * 32, b"\x02" * 32)
    assert a != b


def test_bad_binding_inputs_are_usage_errors() -> None:
    with pytest.raises(ConfigError, match="nonce"):
        report_data(b"s", b"short", b"\x01" * 32, PROGRAM)
    with pytest.raises(ConfigError, match="X25519"):
        report_data(b"s", new_nonce(), b"\x01" * 31, PROGRAM)
    with pytest.raises(ConfigError, match="program hash"):
        report_data(b"s", new_nonce(), b"\x01" * 32, b"\x02" * 31)
    with pytest.raises(ConfigError, match="session"):
        report_data(b"", new_nonce(), b"\x01" * 32, PROGRAM)


def test_owner_seals_and_only_the_enclave_opens() -> None:
    session, nonce = b"job-42", new_nonce()
    enclave = Enclave(session, nonce)
    key = owner_accepts(enclave, session, nonce)
    assert key.measurement == M and key.platform is Platform.TDX
    sealed = seal(key, b"bank rows", job_id="risk", input_name="x1", owner="bank")
    assert b"bank rows" not in sealed
    assert enclave.inbox.open(sealed, job_id="risk", input_name="x1", owner="bank") == b"bank rows"


def test_replayed_evidence_is_refused() -> None:
    session = b"job-42"
    old_nonce, fresh_nonce = new_nonce(), new_nonce()
    enclave = Enclave(session, old_nonce)  # evidence recorded for an earlier challenge
    with pytest.raises(AttestationError) as info:
        owner_accepts(enclave, session, fresh_nonce)
    assert info.value.reason is Reason.REPORT_DATA_MISMATCH


def test_substituted_key_is_refused() -> None:
    session, nonce = b"job-42", new_nonce()
    enclave = Enclave(session, nonce)
    verdict = appraise(enclave.claims, POLICY, NOW)
    host_key = raw_public_key(X25519PrivateKey.generate())  # the host swaps in its own key
    with pytest.raises(AttestationError) as info:
        bind_key(
            verdict,
            session_id=session,
            nonce=nonce,
            enclave_public_key=host_key,
            program_hash=PROGRAM,
        )
    assert info.value.reason is Reason.REPORT_DATA_MISMATCH


def test_another_program_or_session_is_refused() -> None:
    session, nonce = b"job-42", new_nonce()
    enclave = Enclave(session, nonce)
    verdict = appraise(enclave.claims, POLICY, NOW)
    for sid, prog in ((b"job-43", PROGRAM), (session, hashlib.sha256(b"program v2").digest())):
        with pytest.raises(AttestationError):
            bind_key(
                verdict,
                session_id=sid,
                nonce=nonce,
                enclave_public_key=enclave.public,
                program_hash=prog,
            )


def test_ciphertext_of_another_session_does_not_open() -> None:
    nonce = new_nonce()
    a = Enclave(b"session-A", nonce)
    key_a = owner_accepts(a, b"session-A", nonce)
    sealed = seal(key_a, b"secret", job_id="j", input_name="x", owner="bank")
    # The same enclave key, reused in another session: the context differs.
    b_inbox = EnclaveInbox(a.key, b"session-B", PROGRAM, M)
    with pytest.raises(ChannelError):
        b_inbox.open(sealed, job_id="j", input_name="x", owner="bank")
    # Another enclave (another key) cannot open it either.
    other = Enclave(b"session-A", nonce)
    with pytest.raises(ChannelError):
        other.inbox.open(sealed, job_id="j", input_name="x", owner="bank")


@pytest.mark.parametrize(
    "context",
    [
        {"job_id": "other", "input_name": "x", "owner": "bank"},
        {"job_id": "j", "input_name": "y", "owner": "bank"},
        {"job_id": "j", "input_name": "x", "owner": "ext1"},
    ],
)
def test_wrong_aad_does_not_open(context: dict[str, str]) -> None:
    session, nonce = b"s", new_nonce()
    enclave = Enclave(session, nonce)
    sealed = seal(
        owner_accepts(enclave, session, nonce), b"v", job_id="j", input_name="x", owner="bank"
    )
    with pytest.raises(ChannelError):
        enclave.inbox.open(sealed, **context)
    assert enclave.inbox.open(sealed, job_id="j", input_name="x", owner="bank") == b"v"


def test_other_program_or_measurement_inside_does_not_open() -> None:
    session, nonce = b"s", new_nonce()
    enclave = Enclave(session, nonce)
    sealed = seal(
        owner_accepts(enclave, session, nonce), b"v", job_id="j", input_name="x", owner="bank"
    )
    for program, measurement in ((hashlib.sha256(b"evil").digest(), M), (PROGRAM, b"\x44" * 48)):
        inbox = EnclaveInbox(enclave.key, session, program, measurement)
        with pytest.raises(ChannelError):
            inbox.open(sealed, job_id="j", input_name="x", owner="bank")


def test_replayed_ciphertext_and_tampering_are_refused() -> None:
    session, nonce = b"s", new_nonce()
    enclave = Enclave(session, nonce)
    sealed = seal(
        owner_accepts(enclave, session, nonce), b"value", job_id="j", input_name="x", owner="bank"
    )
    for i in (0, 5, 40, len(sealed) - 1):
        bad = bytearray(sealed)
        bad[i] ^= 1
        with pytest.raises(ChannelError):
            enclave.inbox.open(bytes(bad), job_id="j", input_name="x", owner="bank")
    with pytest.raises(ChannelError):
        enclave.inbox.open(sealed[:20], job_id="j", input_name="x", owner="bank")
    assert enclave.inbox.open(sealed, job_id="j", input_name="x", owner="bank") == b"value"
    with pytest.raises(ChannelError, match="replay"):
        enclave.inbox.open(sealed, job_id="j", input_name="x", owner="bank")
