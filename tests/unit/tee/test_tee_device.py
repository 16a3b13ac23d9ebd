"""The TEE device in the SPMD style over the in-memory link, with the simulated runtime.

Three parties: ``bank`` (hosts the enclave, owns features and labels), ``ext1`` (owns more
features) and ``carol`` (takes no part unless a test says so). Every check runs a whole job with
``veil.simulate``; the enclave is a real subprocess (``veil.tee.sim_worker``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import veil
from veil.devices.tee import ReleasePolicy, TEEObject, sim_policy
from veil.errors import ConfigError, PartyFailed, RevealDenied
from veil.tee import ProgramBundle
from veil.tee.sim import ASSURANCE, SimRoot

PARTIES = ["bank", "ext1", "carol"]
ROOT = SimRoot.generate()


def joint_least_squares(x_bank: Any, x_ext: Any, y: Any, ridge: float = 0.0) -> Any:
    import numpy

    x = numpy.hstack([x_bank, x_ext, numpy.ones((len(y), 1))])
    return numpy.linalg.solve(x.T @ x + ridge * numpy.eye(x.shape[1]), x.T @ y)


def joint_count_above(x_bank: Any, x_ext: Any, threshold: float) -> float:

    return float(((x_bank[:, 0] + x_ext[:, 0]) > threshold).sum())


def exfiltrate(x: Any) -> Any:
    return x


PROGRAM = [joint_least_squares, joint_count_above]
BUNDLE = ProgramBundle.from_functions(PROGRAM, dependencies=["numpy"])
OPT_IN = sim_policy(BUNDLE)
RELEASE_TO_BANK = ReleasePolicy(recipients=frozenset({"bank"}))


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x_bank, x_ext = rng.normal(size=(200, 3)), rng.normal(size=(200, 2))
    w = np.array([0.5, -1.0, 2.0, 0.3, -0.7])
    y = np.hstack([x_bank, x_ext]) @ w + 0.1 + 0.01 * rng.normal(size=200)
    return x_bank, x_ext, y


def device(ctx: veil.Context, **overrides: Any) -> Any:
    bank, ext1 = ctx.parties("bank", "ext1")
    options: dict[str, Any] = {
        "program": PROGRAM,
        "dependencies": ["numpy"],
        "owners": [bank, ext1],
        "release": RELEASE_TO_BANK,
        "policy": {"bank": OPT_IN, "ext1": OPT_IN},
        "sim_root": ROOT,
    }
    options.update(overrides)
    return ctx.tee(bank, **options)


def regression_job(ctx: veil.Context, **overrides: Any) -> Any:
    bank, ext1, carol = ctx.parties()
    x_bank, x_ext, y = data()
    with device(ctx, **overrides) as tee:
        xb = bank(lambda: x_bank)().to(tee)
        yb = bank(lambda: y)().to(tee)
        xe = ext1(lambda: x_ext)().to(tee)
        # Every party learns an import's shape and dtype (like an MPC import), not its values.
        assert (xb.shape, xb.dtype, xe.shape, yb.shape) == ((200, 3), "float64", (200, 2), (200,))
        w = tee(joint_least_squares)(xb, xe, yb, ridge=0.0)
        assert isinstance(w, TEEObject) and w.shape == (6,) and w.dtype == "float64"
        assert w.assurance == ASSURANCE and w.owners == {"bank", "ext1"}
        return ctx.reveal(w, to=bank, tag="model.weights")


def test_joint_computation_equals_numpy() -> None:
    res = veil.simulate_detailed(regression_job, PARTIES)
    x_bank, x_ext, y = data()
    x = np.hstack([x_bank, x_ext, np.ones((200, 1))])
    expected = np.linalg.lstsq(x, y, rcond=None)[0]
    np.testing.assert_allclose(res.results["bank"], expected, rtol=1e-9, atol=1e-9)
    assert res.results["ext1"] is None and res.results["carol"] is None
    # Ledger: one tee_job entry per party, labelled simulated; the release recorded.
    for party in PARTIES:
        entries = res.ledgers[party]
        jobs = [e for e in entries if e["event"] == "tee_job"]
        assert len(jobs) == 1
        job = jobs[0]
        assert job["simulated"] is True and job["assurance"] == ASSURANCE
        assert {"platform", "measurement", "tcb_status", "advisories"} <= set(job)
        releases = [e for e in entries if e["event"] == "tee_release"]
        assert len(releases) == 1 and releases[0]["assurance"] == ASSURANCE
        assert releases[0]["to"] == ["bank"] and releases[0]["owners"] == ["bank", "ext1"]
        reveal = next(e for e in entries if e["event"] == "reveal")
        assert reveal["value"]["kind"] == "tee" and reveal["value"]["shape"] == [6]
    bank_job = next(e for e in res.ledgers["bank"] if e["event"] == "tee_job")
    assert bank_job["verified"] is True and bank_job["platform"] == "sim"
    assert bank_job["role"] == "host+owner+recipient"
    assert "simulated enclave: as trusted as a third party" in bank_job["waivers"]
    carol_job = next(e for e in res.ledgers["carol"] if e["event"] == "tee_job")
    assert carol_job["role"] == "bystander" and carol_job["verified"] is False


def test_simulation_refused_without_every_owners_opt_in() -> None:
    with pytest.raises(PartyFailed) as info:
        veil.simulate(regression_job, PARTIES, params={"policy": {"bank": OPT_IN}})
    assert info.value.party == "ext1"
    assert info.value.error_type == "AttestationError"
    assert "[simulated]" in str(info.value)


def test_unpinned_development_root_is_refused() -> None:
    # The host signs with a root the owners did not pin.
    params = {
        "bank": {"sim_root": SimRoot.generate()},
        "ext1": {"sim_root": ROOT},
        "carol": {"sim_root": ROOT},
    }
    with pytest.raises(PartyFailed) as info:
        veil.simulate(regression_job, PARTIES, params=params, per_party_params=True)
    assert info.value.party == "ext1" and "[root_not_pinned]" in str(info.value)


def test_program_outside_the_allow_list_is_refused() -> None:
    # The host starts an enclave with another program than the one the owners reviewed.
    evil = ProgramBundle.from_functions([exfiltrate], dependencies=["numpy"])
    params = {"bank": {"program": evil, "policy": {"bank": sim_policy(evil), "ext1": OPT_IN}}}
    with pytest.raises(PartyFailed) as info:
        veil.simulate(regression_job, PARTIES, params=params, per_party_params=True)
    assert info.value.party == "ext1" and "[measurement_mismatch]" in str(info.value)


def test_changed_program_source_changes_measurement_and_is_refused() -> None:
    changed = ProgramBundle(
        functions=tuple(
            (name, src.replace("ridge * numpy.eye", "0.0 * numpy.eye"))
            for name, src in BUNDLE.functions
        ),
        dependencies=BUNDLE.dependencies,
        veil_version=BUNDLE.veil_version,
    )
    assert changed.digest() != BUNDLE.digest()
    assert sim_policy(changed).measurements != OPT_IN.measurements
    params = {"bank": {"program": changed, "policy": {"bank": sim_policy(changed), "ext1": OPT_IN}}}
    with pytest.raises(PartyFailed) as info:
        veil.simulate(regression_job, PARTIES, params=params, per_party_params=True)
    assert info.value.party == "ext1" and "[measurement_mismatch]" in str(info.value)


def test_release_to_a_recipient_no_owner_agreed_is_refused() -> None:
    def job(ctx: veil.Context) -> Any:
        bank, ext1, carol = ctx.parties()
        x_bank, x_ext, _ = data()
        with device(ctx) as tee:
            n = tee(joint_count_above)(bank(lambda: x_bank)(), ext1(lambda: x_ext)(), 0.0)
            return ctx.reveal(n, to=[bank, carol], tag="count")

    with pytest.raises(PartyFailed) as info:
        veil.simulate(job, PARTIES)
    assert info.value.error_type == "RevealDenied"
    assert "carol" in str(info.value)


def test_each_owners_own_release_policy_governs_its_data() -> None:
    # ext1 agreed to release to carol as well, bank did not: a value computed from ext1's data
    # alone may go to carol, one computed from both may not.
    policies = {
        "bank": RELEASE_TO_BANK,
        "ext1": ReleasePolicy(recipients=frozenset({"bank", "carol"})),
    }

    def job(ctx: veil.Context) -> Any:
        bank, ext1, carol = ctx.parties()
        x_bank, x_ext, _ = data()
        with device(ctx, release=policies, policy=OPT_IN) as tee:
            xe = ext1(lambda: x_ext)().to(tee)
            zeros = bank(lambda: np.zeros_like(x_ext))().to(tee)
            only_ext = tee(joint_count_above)(xe, x_ext * 0, 0.5)  # public second argument
            joint = tee(joint_count_above)(zeros, xe, 0.5)
            got = ctx.reveal(only_ext, to=carol, tag="count")
            try:
                ctx.reveal(joint, to=carol, tag="count")
            except RevealDenied as exc:
                return got, str(exc)
            return got, None

    out = veil.simulate(job, PARTIES)
    _, x_ext, _ = data()
    assert out["carol"][0] == float((x_ext[:, 0] > 0.5).sum())
    assert out["bank"][0] is None
    for p in PARTIES:
        assert "'bank' agreed only to ['bank']" in out[p][1]


def test_chained_computation_stays_inside() -> None:
    def job(ctx: veil.Context) -> Any:
        bank, ext1, _ = ctx.parties()
        x_bank, x_ext, y = data()
        with device(ctx) as tee:
            w = tee(joint_least_squares)(
                bank(lambda: x_bank)(), ext1(lambda: x_ext)(), bank(lambda: y)()
            )
            w2 = tee(joint_least_squares)(
                bank(lambda: x_bank)(), ext1(lambda: x_ext)(), bank(lambda: y)(), 1e3
            )
            return ctx.reveal(w, to=bank), ctx.reveal(w2, to=bank)

    out = veil.simulate(job, PARTIES)["bank"]
    assert not np.allclose(out[0], out[1])  # the public ridge argument reached the enclave


def test_program_functions_only() -> None:
    def job(ctx: veil.Context) -> Any:
        with device(ctx) as tee:
            tee(exfiltrate)

    with pytest.raises(PartyFailed) as info:
        veil.simulate(job, PARTIES)
    assert info.value.error_type == "ConfigError" and "not part of this TEE device" in str(
        info.value
    )


def test_release_policy_and_owner_validation() -> None:
    with pytest.raises(ConfigError, match="name its recipients"):
        ReleasePolicy(recipients=frozenset())
    with pytest.raises(ConfigError, match="collection"):
        ReleasePolicy(recipients="bank")  # type: ignore[arg-type]

    def job(ctx: veil.Context) -> Any:
        device(ctx, release={"bank": RELEASE_TO_BANK})

    with pytest.raises(PartyFailed, match="no release policy for owner 'ext1'"):
        veil.simulate(job, PARTIES)

    def job2(ctx: veil.Context) -> Any:
        with device(ctx) as tee:
            ctx.parties("carol")[0](lambda: 1)().to(tee)

    with pytest.raises(PartyFailed, match="not a data owner"):
        veil.simulate(job2, PARTIES)


def test_program_bundle_source_is_what_the_measurement_covers() -> None:
    names = dict(BUNDLE.functions)
    assert f"{__name__}.joint_least_squares" in names
    assert "numpy.linalg.solve" in names[f"{__name__}.joint_least_squares"]
    assert (
        inspect.getsource(joint_least_squares).strip() in names[f"{__name__}.joint_least_squares"]
    )


def test_job_file_functions_have_a_location_independent_identity(tmp_path: Path) -> None:
    # Two institutions keep the same job file in different folders: same program identity.
    from veil.runtime.jobs import JobRef, load_job

    source = "def fit(x):\n    return x * 2\n"
    fns = []
    for folder in ("bank_site", "ext_site"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "job.py").write_text(source)
        fns.append(load_job(JobRef(str(tmp_path / folder / "job.py"), "fit")))
    assert fns[0].__module__ != fns[1].__module__
    bundles = [ProgramBundle.from_functions([f], veil_version="t") for f in fns]
    assert bundles[0].digest() == bundles[1].digest()
    assert bundles[0].functions[0][0] == "job.fit"


def test_recipient_refuses_a_result_of_another_computation() -> None:
    # bank hosts the enclave and is the only owner, so it can approve anything computed from its
    # own data; ext1 (the recipient) still refuses a value other than the one the program asked
    # for: here the host swaps in another value's name and lineage at release time.
    def job(ctx: veil.Context) -> Any:
        bank, ext1, _ = ctx.parties()
        x_bank, _, y = data()
        with device(
            ctx, owners=[bank], release=ReleasePolicy(recipients={"ext1"}), policy=OPT_IN
        ) as tee:
            xb = bank(lambda: x_bank)().to(tee)
            wanted = tee(joint_count_above)(xb, x_bank * 0, 0.0)
            other = tee(joint_count_above)(xb, x_bank * 0, -10.0)
            if ctx.party == "bank":
                wanted.name, wanted.lineage = other.name, other.lineage
            return ctx.reveal(wanted, to=ext1)

    with pytest.raises(PartyFailed) as info:
        veil.simulate(job, PARTIES)
    assert info.value.party == "ext1" and "lineage mismatch" in str(info.value)
