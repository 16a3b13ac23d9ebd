"""The release policy inside the enclave: a malicious host talks to the simulated enclave
directly (no device) and tries to get results out that the owners did not agree to."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import veil
from veil.core.wire import decode_value, encode_value
from veil.devices.tee import ReleasePolicy, sim_policy
from veil.dp import DPSpec
from veil.errors import ConfigError, PartyFailed, ProtocolError, RevealDenied
from veil.tee import AttestedKey, ProgramBundle, TrustAnchors, attest, bind_key, new_nonce, seal
from veil.tee.channel import open_result, raw_public_key
from veil.tee.release import (
    RESULT_FORMAT,
    Governance,
    apply_lineage,
    approval_tag,
    check_release,
    governed_input,
    input_lineage,
    recipients_allowed,
    sealed_digest,
)
from veil.tee.sim import SimRoot
from veil.tee.sim_runtime import SimEnclave


def masked_sum(a: Any, b: Any) -> float:
    import numpy

    return float(numpy.sum(a) + numpy.sum(b))


def bigger(a: Any, b: Any) -> Any:
    import numpy

    return numpy.maximum(a, b)


FN = f"{__name__}.masked_sum"
BUNDLE = ProgramBundle.from_functions([masked_sum, bigger], veil_version="t")
ROOT = SimRoot.generate()
ANCHORS = TrustAnchors(sim_root_public_keys=frozenset({ROOT.public_key}))
SID = b"0123456789abcdef"
JOB = "job"


@pytest.fixture(scope="module")
def enclave() -> Iterator[SimEnclave]:
    with SimEnclave(ROOT, BUNDLE) as e:
        yield e


def attested(enclave: SimEnclave, sid: bytes) -> AttestedKey:
    nonce = new_nonce()
    evidence, pk = enclave.attest(sid, nonce)
    verdict = attest(
        "sim", evidence, None, sim_policy(BUNDLE), now=datetime.now(UTC), anchors=ANCHORS
    )
    return bind_key(
        verdict, session_id=sid, nonce=nonce, enclave_public_key=pk, program_hash=BUNDLE.digest()
    )


class World:
    """Two owners (bank, ext1) with governed inputs in one session; bank is the recipient."""

    def __init__(
        self,
        enclave: SimEnclave,
        dp: Any = None,
        dp_ext: Any = None,
        substitute: bool = False,
        max_releases: int | None = None,
    ) -> None:
        self.enclave = enclave
        self.sid = os.urandom(16)
        self.key = attested(enclave, self.sid)
        self.bank_key = X25519PrivateKey.generate()
        self.result_keys = {"bank": raw_public_key(self.bank_key)}
        self.approval = {"bank": os.urandom(32), "ext1": os.urandom(32)}
        self.a, self.b = np.arange(5.0), np.full(5, 2.0)
        dps = {"bank": dp, "ext1": dp if dp_ext is None else dp_ext}
        self.inputs: dict[str, bytes] = {}
        for owner, name, x in (("bank", "a", self.a), ("ext1", "b", self.b)):
            policy = ReleasePolicy(
                recipients=frozenset({"bank"}), dp=dps[owner], max_releases=max_releases
            )
            wire = policy.to_wire(self.result_keys, self.approval[owner])
            sealed = seal(
                self.key,
                encode_value(governed_input(x, wire)),
                job_id=JOB,
                input_name=name,
                owner=owner,
            )
            self.inputs[name] = input_lineage(JOB, name, owner, sealed_digest(sealed))
            if substitute and owner == "ext1":
                # The host drops ext1's ciphertext and seals its own data in ext1's name, with a
                # policy and approval key of its own.
                self.approval["host-as-ext1"] = os.urandom(32)
                fake = policy.to_wire(self.result_keys, self.approval["host-as-ext1"])
                sealed = seal(
                    self.key,
                    encode_value(governed_input(np.zeros(5), fake)),
                    job_id=JOB,
                    input_name=name,
                    owner=owner,
                )
            enclave.put(self.sid, sealed, job_id=JOB, input_name=name, owner=owner)
        self.public = encode_value({"args": [None, None], "kwargs": {}})
        enclave.apply(self.sid, FN, ["a", "b"], self.public, output_name="s")
        self.lineage = apply_lineage(
            FN,
            [self.inputs["a"], self.inputs["b"]],
            self.public,
        )

    def approvals(
        self, output: str = "out", recipients: tuple[str, ...] = ("bank",)
    ) -> dict[str, bytes]:
        return {
            o: approval_tag(k, lineage=self.lineage, output_name=output, recipients=recipients)
            for o, k in self.approval.items()
        }

    def release(
        self, recipients: dict[str, bytes], approvals: dict[str, bytes], output: str = "out"
    ) -> dict[str, bytes]:
        return self.enclave.release(
            self.sid,
            "s",
            job_id=JOB,
            output_name=output,
            recipients=recipients,
            approvals=approvals,
        )

    def open(self, sealed: bytes, output: str = "out") -> dict[str, Any]:
        env = decode_value(
            open_result(
                self.bank_key,
                sealed,
                key=self.key,
                job_id=JOB,
                output_name=output,
                recipient="bank",
            )
        )
        assert env["format"] == RESULT_FORMAT
        return env  # type: ignore[no-any-return]


def test_an_agreed_and_approved_release_opens_with_its_lineage(enclave: SimEnclave) -> None:
    w = World(enclave)
    env = w.open(w.release(w.result_keys, w.approvals())["bank"])
    assert env["value"] == pytest.approx(float(w.a.sum() + w.b.sum()))
    assert env["lineage"] == w.lineage and env["dp"] is None
    # The same approvals cannot be replayed for a second release (a second DP draw).
    with pytest.raises(RevealDenied, match="already released"):
        w.release(w.result_keys, w.approvals())


def test_host_cannot_substitute_its_key_or_add_recipients(enclave: SimEnclave) -> None:
    w = World(enclave)
    host_pk = raw_public_key(X25519PrivateKey.generate())
    with pytest.raises(RevealDenied, match="key substitution"):
        w.release({"bank": host_pk}, w.approvals())
    with pytest.raises(RevealDenied, match="does not list 'host'"):
        w.release({**w.result_keys, "host": host_pk}, w.approvals(recipients=("bank", "host")))


def test_every_owner_must_approve_this_exact_release(enclave: SimEnclave) -> None:
    w = World(enclave)
    approvals = w.approvals()
    with pytest.raises(RevealDenied, match="'ext1' did not approve"):
        w.release(w.result_keys, {"bank": approvals["bank"]})
    with pytest.raises(RevealDenied, match="did not approve"):  # approval of another output
        w.release(w.result_keys, w.approvals(output="other"))
    forged = {
        **approvals,
        "ext1": approval_tag(
            os.urandom(32), lineage=w.lineage, output_name="out", recipients=["bank"]
        ),
    }
    with pytest.raises(RevealDenied, match="'ext1' did not approve"):
        w.release(w.result_keys, forged)
    # An intermediate value the owners never asked for: other lineage, approvals do not fit.
    enclave.apply(w.sid, f"{__name__}.bigger", ["a", "b"], w.public, output_name="m")
    with pytest.raises(RevealDenied, match="did not approve"):
        enclave.release(
            w.sid, "m", job_id=JOB, output_name="out", recipients=w.result_keys, approvals=approvals
        )


def test_the_enclave_counts_releases_against_each_owners_limit(enclave: SimEnclave) -> None:
    w = World(enclave, max_releases=1)
    w.open(w.release(w.result_keys, w.approvals("first"), output="first")["bank"], "first")
    with pytest.raises(RevealDenied, match="at most 1 release"):
        w.release(w.result_keys, w.approvals("second"), output="second")


def test_a_substituted_input_is_never_approved(enclave: SimEnclave) -> None:
    w = World(enclave, substitute=True)
    approvals = w.approvals()
    # The host can approve for its fake input, but bank approved the lineage of ext1's real
    # ciphertext, which is not what the enclave computed on.
    approvals["ext1"] = approvals.pop("host-as-ext1")
    approvals["ext1"] = approval_tag(
        w.approval["host-as-ext1"],
        lineage=apply_lineage(
            FN,
            [w.inputs["a"], input_lineage(JOB, "b", "ext1", sealed_digest(b"whatever"))],
            w.public,
        ),
        output_name="out",
        recipients=["bank"],
    )
    with pytest.raises(RevealDenied, match="'bank' did not approve"):
        w.release(w.result_keys, approvals)


def test_governed_inputs_never_leave_through_the_low_level_call(enclave: SimEnclave) -> None:
    w = World(enclave)
    with pytest.raises(ProtocolError, match="only through 'release'"):
        enclave.call(w.sid, FN, ["a", "b"], job_id=JOB, output_name="o", recipients=w.result_keys)
    with pytest.raises(ProtocolError, match="already exists"):
        enclave.apply(w.sid, FN, ["a", "b"], w.public, output_name="s")


def test_dp_spec_sealed_by_the_owners_is_applied_inside(enclave: SimEnclave) -> None:
    spec = DPSpec.sum(epsilon=1.0, lower=0.0, upper=10.0)
    w = World(enclave, dp=spec)
    exact = float(w.a.sum() + w.b.sum())
    env = w.open(w.release(w.result_keys, w.approvals())["bank"])
    scale = 10.0 / 1.0  # Laplace b = sensitivity / epsilon
    assert env["value"] != exact and abs(env["value"] - exact) < 40 * scale  # P(fail) < e^-40
    assert env["dp"]["epsilon"] == pytest.approx(1.0, rel=1e-6)
    w2 = World(enclave, dp=spec, dp_ext=DPSpec.sum(epsilon=2.0, lower=0.0, upper=10.0))
    with pytest.raises(RevealDenied, match="different DP specs"):
        w2.release(w2.result_keys, w2.approvals())


def test_check_release_pure_rules() -> None:
    key = os.urandom(32)
    policy = {"recipients": {"bank": b"k" * 32}, "approval_key": key, "dp": None}
    g = Governance((("bank", policy),))
    tag = approval_tag(key, lineage=b"L", output_name="o", recipients=["bank"])
    assert (
        check_release(
            g, {"bank": b"k" * 32}, lineage=b"L", output_name="o", approvals={"bank": tag}
        )
        is None
    )
    with pytest.raises(RevealDenied, match="at least one recipient"):
        check_release(g, {}, lineage=b"L", output_name="o", approvals={"bank": tag})
    bad = Governance((("bank", {"recipients": ["bank"], "approval_key": key}),))
    with pytest.raises(RevealDenied, match="malformed"):
        check_release(
            bad, {"bank": b"k" * 32}, lineage=b"L", output_name="o", approvals={"bank": tag}
        )
    # No governance (public inputs only): nothing to protect.
    assert (
        check_release(Governance(), {"x": b"k" * 32}, lineage=b"L", output_name="o", approvals={})
        is None
    )
    assert Governance.union([g, g]).policies == g.policies
    rp = {"bank": ReleasePolicy(recipients=frozenset({"bank"}))}
    recipients_allowed(rp, ["bank"], ["bank"])
    with pytest.raises(RevealDenied, match="no release policy"):
        recipients_allowed(rp, ["ext1"], ["bank"])
    with pytest.raises(ConfigError, match="no result key"):
        rp["bank"].to_wire({}, key)
    with pytest.raises(ConfigError, match="DPSpec"):
        ReleasePolicy(recipients=frozenset({"bank"}), dp=1.0)


def test_lineage_digests_separate_computations() -> None:
    d = sealed_digest(b"ciphertext")
    a = input_lineage("j", "x", "bank", d)
    assert a != input_lineage("j", "x", "ext1", d) != input_lineage("j2", "x", "bank", d)
    assert a != input_lineage("j", "x", "bank", sealed_digest(b"other ciphertext"))
    p1, p2 = (
        encode_value({"args": [None], "kwargs": {}}),
        encode_value({"args": [None], "kwargs": {"k": 1}}),
    )
    assert apply_lineage("f", [a], p1) != apply_lineage("g", [a], p1)
    assert apply_lineage("f", [a], p1) != apply_lineage("f", [a], p2)
    assert apply_lineage("f", [a, None], p1) != apply_lineage("f", [None, a], p1)


DP_PROGRAM_BUNDLE = ProgramBundle.from_functions([masked_sum], dependencies=["numpy"])


def dp_job(ctx: veil.Context) -> Any:
    bank, ext1, _ = ctx.parties()
    release = ReleasePolicy(
        recipients=frozenset({"bank"}), dp=DPSpec.sum(epsilon=0.5, lower=0.0, upper=100.0)
    )
    with ctx.tee(
        bank,
        program=[masked_sum],
        dependencies=["numpy"],
        owners=[bank, ext1],
        release=release,
        policy=sim_policy(DP_PROGRAM_BUNDLE),
        sim_root=ROOT,
    ) as tee:
        s = tee(masked_sum)(bank(lambda: np.ones(10))(), ext1(lambda: np.ones(30))())
        return ctx.reveal(s, to=bank, tag="dp.sum")


def test_device_release_with_dp_is_noised_and_ledgered() -> None:
    res = veil.simulate_detailed(dp_job, ["bank", "ext1", "carol"])
    got = res.results["bank"]
    assert got != 40.0 and abs(got - 40.0) < 40 * (100.0 / 0.5)
    rel = next(e for e in res.ledgers["bank"] if e["event"] == "tee_release")
    assert rel["dp"]["epsilon"] == pytest.approx(0.5, rel=1e-6)
    other = next(e for e in res.ledgers["ext1"] if e["event"] == "tee_release")
    assert other["dp"] is None  # ext1 received nothing


def test_device_refuses_dp_spec_type_early() -> None:
    def job(ctx: veil.Context) -> Any:
        ReleasePolicy(recipients=frozenset({"bank"}), dp="laplace")

    with pytest.raises(PartyFailed, match="DPSpec"):
        veil.simulate(job, ["bank", "ext1"])


def test_device_enforces_max_releases_at_every_party() -> None:
    def job(ctx: veil.Context) -> Any:
        bank, ext1, _ = ctx.parties()
        with ctx.tee(
            bank,
            program=[masked_sum],
            dependencies=["numpy"],
            owners=[bank, ext1],
            release=ReleasePolicy(recipients={"bank"}, max_releases=1),
            policy=sim_policy(DP_PROGRAM_BUNDLE),
            sim_root=ROOT,
        ) as tee:
            s = tee(masked_sum)(bank(lambda: np.ones(3))(), ext1(lambda: np.ones(4))())
            first = ctx.reveal(s, to=bank)
            try:
                ctx.reveal(s, to=bank)
            except RevealDenied as exc:
                return first, str(exc)
            return first, None

    out = veil.simulate(job, ["bank", "ext1", "carol"])
    assert out["bank"][0] == 7.0 and out["ext1"][0] is None
    assert all("at most 1 release" in out[p][1] for p in out)
    with pytest.raises(ConfigError, match="max_releases"):
        ReleasePolicy(recipients={"bank"}, max_releases=0)
