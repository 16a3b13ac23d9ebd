"""The simulated runtime end to end: a real subprocess "enclave", real evidence checks, real
channel — refused without every owner's opt-in, and every tampering by the host fails."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from veil.core.wire import decode_value, encode_value
from veil.errors import ProtocolError
from veil.tee import (
    AppraisalPolicy,
    AttestationError,
    AttestedKey,
    ChannelError,
    Platform,
    ProgramBundle,
    Reason,
    TrustAnchors,
    attest,
    bind_key,
    new_nonce,
    raw_public_key,
    seal,
)
from veil.tee.channel import open_result
from veil.tee.sim import ASSURANCE, SimRoot, expected_sim_measurement, sign_sim_evidence
from veil.tee.sim_runtime import SimEnclave


def joint_mean(a: object, b: object) -> float:
    import numpy

    return float(numpy.concatenate([a, b]).mean())


def joint_max(a: object, b: object) -> float:
    import numpy

    return float(numpy.concatenate([a, b]).max())


FN = f"{__name__}.joint_mean"
BUNDLE = ProgramBundle.from_functions([joint_mean], dependencies={"numpy": "2"}, veil_version="t")
ROOT = SimRoot.generate()
ANCHORS = TrustAnchors(sim_root_public_keys=frozenset({ROOT.public_key}))


def policy(bundle: ProgramBundle = BUNDLE, **kw: object) -> AppraisalPolicy:
    return AppraisalPolicy(
        measurements=frozenset({expected_sim_measurement(bundle)}),
        allow_simulated=True,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def enclave() -> Iterator[SimEnclave]:
    with SimEnclave(ROOT, BUNDLE) as e:
        yield e


def owner_key(enclave: SimEnclave, session: bytes, p: AppraisalPolicy | None = None) -> AttestedKey:
    """What each data owner does: challenge, verify, appraise, bind."""
    nonce = new_nonce()
    evidence, pk = enclave.attest(session, nonce)
    verdict = attest("sim", evidence, None, p or policy(), now=datetime.now(UTC), anchors=ANCHORS)
    return bind_key(
        verdict,
        session_id=session,
        nonce=nonce,
        enclave_public_key=pk,
        program_hash=BUNDLE.digest(),
    )


def test_a_job_runs_in_the_simulated_enclave(enclave: SimEnclave) -> None:
    session = b"session-ok"
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=70)
    for owner, name, x in (("bank", "a", a), ("ext1", "b", b)):
        key = owner_key(enclave, session)
        assert key.verdict.assurance == ASSURANCE
        assert key.verdict.claims.platform is Platform.SIM
        sealed = seal(key, encode_value(x), job_id="j", input_name=name, owner=owner)
        enclave.put(session, sealed, job_id="j", input_name=name, owner=owner)
    bank = X25519PrivateKey.generate()
    results = enclave.call(
        session,
        FN,
        ["a", "b"],
        job_id="j",
        output_name="mean",
        recipients={"bank": raw_public_key(bank)},
    )
    key = owner_key(enclave, session)
    got = decode_value(
        open_result(
            bank, results["bank"], key=key, job_id="j", output_name="mean", recipient="bank"
        )
    )
    assert got == pytest.approx(float(np.concatenate([a, b]).mean()), abs=1e-12)
    # The result does not open for anyone else, nor under another output name.
    with pytest.raises(ChannelError):
        open_result(
            X25519PrivateKey.generate(),
            results["bank"],
            key=key,
            job_id="j",
            output_name="mean",
            recipient="bank",
        )
    with pytest.raises(ChannelError):
        open_result(bank, results["bank"], key=key, job_id="j", output_name="max", recipient="bank")


def test_the_enclave_really_measures_its_program(enclave: SimEnclave) -> None:
    assert enclave.measurement == expected_sim_measurement(BUNDLE)
    assert enclave.program_hash == BUNDLE.digest()
    changed = ProgramBundle(
        functions=((FN, inspect.getsource(joint_mean).replace("mean()", "sum()")),),
        dependencies=BUNDLE.dependencies,
        veil_version=BUNDLE.veil_version,
    )
    assert expected_sim_measurement(changed) != expected_sim_measurement(BUNDLE)


def test_simulation_is_refused_without_opt_in(enclave: SimEnclave) -> None:
    strict = AppraisalPolicy(measurements=frozenset({expected_sim_measurement(BUNDLE)}))
    with pytest.raises(AttestationError) as info:
        owner_key(enclave, b"s-optin", strict)
    assert info.value.reason is Reason.SIMULATED


def test_an_unpinned_development_root_is_refused(enclave: SimEnclave) -> None:
    evidence, _ = enclave.attest(b"s-root", new_nonce())
    for anchors in (TrustAnchors(), TrustAnchors(sim_root_public_keys=frozenset({b"\1" * 32}))):
        with pytest.raises(AttestationError) as info:
            attest("sim", evidence, None, policy(), now=datetime.now(UTC), anchors=anchors)
        assert info.value.reason is Reason.ROOT_NOT_PINNED


def test_a_program_outside_the_allow_list_never_receives_a_key() -> None:
    other = ProgramBundle.from_functions([joint_max], veil_version="t")
    with SimEnclave(ROOT, other) as e, pytest.raises(AttestationError) as info:
        owner_key(e, b"s-other")  # the owner expects BUNDLE's measurement
    assert info.value.reason is Reason.MEASUREMENT_MISMATCH


def test_replayed_and_substituted_evidence_fail(enclave: SimEnclave) -> None:
    session = b"s-replay"
    old_nonce = new_nonce()
    evidence, pk = enclave.attest(session, old_nonce)
    verdict = attest("sim", evidence, None, policy(), now=datetime.now(UTC), anchors=ANCHORS)
    with pytest.raises(AttestationError) as info:  # replayed against a fresh challenge
        bind_key(
            verdict,
            session_id=session,
            nonce=new_nonce(),
            enclave_public_key=pk,
            program_hash=BUNDLE.digest(),
        )
    assert info.value.reason is Reason.REPORT_DATA_MISMATCH
    host_pk = raw_public_key(X25519PrivateKey.generate())
    with pytest.raises(AttestationError):  # the host substitutes its own key
        bind_key(
            verdict,
            session_id=session,
            nonce=old_nonce,
            enclave_public_key=host_pk,
            program_hash=BUNDLE.digest(),
        )
    with pytest.raises(AttestationError) as info:  # stale evidence
        attest(
            "sim",
            evidence,
            None,
            policy(),
            now=datetime.now(UTC) + timedelta(hours=1),
            anchors=ANCHORS,
        )
    assert info.value.reason is Reason.EVIDENCE_TOO_OLD


def test_forged_or_garbled_sim_evidence_is_refused(enclave: SimEnclave) -> None:
    evidence, _ = enclave.attest(b"s-forge", new_nonce())
    flipped = bytearray(evidence)
    flipped[40] ^= 1
    reasons = set()
    for bad in (bytes(flipped), evidence[:-1], b"VEILSIM1" + b"\0" * 80, b"", b"garbage"):
        with pytest.raises(AttestationError) as info:
            attest("sim", bad, None, policy(), now=datetime.now(UTC), anchors=ANCHORS)
        reasons.add(info.value.reason)
    assert reasons <= {Reason.SIGNATURE_INVALID, Reason.MALFORMED_EVIDENCE}
    forged = sign_sim_evidence(
        SimRoot.generate(),
        measurement=expected_sim_measurement(BUNDLE),
        report_data=b"\0" * 64,
        timestamp_ms=int(datetime.now(UTC).timestamp() * 1000),
    )
    with pytest.raises(AttestationError) as info:
        attest("sim", forged, None, policy(), now=datetime.now(UTC), anchors=ANCHORS)
    assert info.value.reason is Reason.ROOT_NOT_PINNED


def test_other_sessions_ciphertext_and_wrong_aad_fail(enclave: SimEnclave) -> None:
    key_a = owner_key(enclave, b"s-A")
    owner_key(enclave, b"s-B")
    sealed = seal(key_a, encode_value(np.ones(3)), job_id="j", input_name="a", owner="bank")
    with pytest.raises(ProtocolError, match="does not open"):
        enclave.put(b"s-B", sealed, job_id="j", input_name="a", owner="bank")
    with pytest.raises(ProtocolError, match="does not open"):
        enclave.put(b"s-A", sealed, job_id="j", input_name="a", owner="ext1")
    enclave.put(b"s-A", sealed, job_id="j", input_name="a", owner="bank")
    with pytest.raises(ProtocolError, match="replay"):
        enclave.put(b"s-A", sealed, job_id="j", input_name="a", owner="bank")
    with pytest.raises(ProtocolError, match="not in the program"):
        enclave.call(b"s-A", "os.system", ["a"], job_id="j", output_name="o", recipients={})
