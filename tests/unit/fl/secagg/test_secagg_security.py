"""Attacks on a round: a dishonest aggregator lying about dropouts, tampered shares, malformed
inputs from clients. Each is detected (and named) or cannot succeed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import exact_sum, make_vectors, seeded

from veil.errors import DataError, PeerError, ProtocolError
from veil.fl.secagg import GraphKind, SecAggAggregator, SecAggClient, SecAggConfig, shamir
from veil.fl.secagg.client import SHARE_LEN, seed_commitment
from veil.fl.secagg.inprocess import run_round
from veil.fl.secagg.masks import KEY_BYTES, public_bytes
from veil.fl.secagg.messages import (
    EncryptedShares,
    ForwardedShares,
    MaskedInput,
    Message,
    UnmaskRequest,
    UnmaskResponse,
)

CFG = SecAggConfig(graph=GraphKind.COMPLETE)  # 10 clients: t = 6


def setup_round(
    n: int = 10,
) -> tuple[list[str], dict[str, SecAggClient], SecAggAggregator, dict[str, MaskedInput]]:
    """Run phases 0-2 honestly; return the clients, the aggregator and the masked inputs."""
    vecs = make_vectors(n, 16)
    names = list(vecs)
    rnd = seeded(99)
    clients = {
        c: SecAggClient(c, names, CFG, round_id="r", vector=v, randbytes=rnd)
        for c, v in vecs.items()
    }
    agg = SecAggAggregator(names, CFG, round_id="r")
    dirs = agg.receive_keys({c: cl.advertise_keys() for c, cl in clients.items()})
    fwd = agg.receive_shares({c: clients[c].share_keys(dirs[c]) for c in names})
    masked = {c: clients[c].masked_input(fwd[c]) for c in names}
    return names, clients, agg, masked


def rebuild(xs_owners: dict[str, np.ndarray], plan_index: dict[str, int]) -> bytes | None:
    """What a cheating aggregator can rebuild from the shares it collected (None: too few)."""
    if len(xs_owners) < CFG.plan("r", list(plan_index)).threshold:
        return None
    xs = [plan_index[h] for h in xs_owners]
    try:
        return shamir.field_to_bytes(
            shamir.reconstruct(xs, np.stack(list(xs_owners.values()))), KEY_BYTES
        )
    except ProtocolError:
        return None


def test_aggregator_claiming_a_live_client_dropped_cannot_unmask_it() -> None:
    names, clients, agg, masked = setup_round()
    victim = "c4"
    others = [c for c in names if c != victim]
    lie = UnmaskRequest(tuple(others), (victim,))
    # the victim itself is live and refuses to be declared dropped
    with pytest.raises(ProtocolError, match="claims it dropped"):
        clients[victim].unmask(lie)
    key_shares = {}
    for c in others:
        resp = clients[c].unmask(lie)
        assert victim not in resp.seed_shares
        key_shares[c] = resp.key_shares[victim]
    # the lie gets the victim's mask key (enough holders answered) ...
    sk = rebuild(key_shares, agg.plan.index)
    assert sk is not None
    # ... but a second request for the victim's self-mask seed is refused by everyone
    honest = UnmaskRequest(tuple(names), ())
    for c in others:
        with pytest.raises(ProtocolError, match="answered once"):
            clients[c].unmask(honest)
    assert all(victim not in cl.revealed_seed_of for cl in clients.values())
    # without the seed the victim's input stays masked: y - pairwise masks is still uniform-looking
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from veil.fl.secagg.client import pair_info, pair_sign
    from veil.fl.secagg.masks import agree, expand_mask

    key = X25519PrivateKey.from_private_bytes(sk)
    assert public_bytes(key) == agg._keys[victim].mask_pk
    y = masked[victim].y.copy()
    dt = agg.plan.fixed_point.dtype
    for j in others:
        pk = agg._keys[j].mask_pk
        m = expand_mask(agree(key, pk, pair_info("r", victim, j), peer=j), y.size, dt, b"pair")
        y = y - m if pair_sign(agg.plan.index, victim, j) > 0 else y + m
    guess = agg.plan.fixed_point.decode(y)
    truth = exact_sum({victim: make_vectors(10, 16)[victim]}, [victim], CFG)
    assert np.abs(guess).min() > 1e3 * np.abs(truth).max()  # nothing like the real update


def test_split_view_cannot_reach_threshold_for_both_shares() -> None:
    names, clients, agg, _ = setup_round()
    victim = "c0"
    rest = [c for c in names if c != victim]
    told_alive, told_dropped = rest[:4], rest[4:]  # 4 + victim = 5 and 5: both below t = 6
    seed_sh, key_sh = {}, {}
    for c in [victim, *told_alive]:
        seed_sh[c] = clients[c].unmask(UnmaskRequest(tuple(names), ())).seed_shares[victim]
    for c in told_dropped:
        req = UnmaskRequest(tuple(c2 for c2 in names if c2 != victim), (victim,))
        key_sh[c] = clients[c].unmask(req).key_shares[victim]
    assert rebuild(seed_sh, agg.plan.index) is None and rebuild(key_sh, agg.plan.index) is None
    # forcing a reconstruction from 5 shares yields neither secret
    xs = [agg.plan.index[c] for c in seed_sh]
    wrong = shamir.reconstruct(xs, np.stack(list(seed_sh.values())))
    try:
        guess: bytes | None = shamir.field_to_bytes(wrong, KEY_BYTES)
    except ProtocolError:
        guess = None
    assert guess is None or seed_commitment("r", guess) != agg._commit[victim]


def test_client_refuses_inconsistent_requests() -> None:
    names, clients, _, _ = setup_round()
    with pytest.raises(ProtocolError, match="both as survivors and as dropped"):
        clients["c1"].unmask(UnmaskRequest(tuple(names), ("c2",)))
    with pytest.raises(ProtocolError, match="claims it dropped"):
        clients["c2"].unmask(UnmaskRequest(("c0", "c1"), ()))
    with pytest.raises(ProtocolError, match="below the threshold"):
        clients["c3"].unmask(UnmaskRequest(("c3", "c4", "c5"), ()))


def test_tampered_share_is_detected_and_named() -> None:
    def flip(phase: int, client: str, msg: Message) -> Message:
        if phase == 1 and client == "c2" and isinstance(msg, EncryptedShares):
            blob = bytearray(msg.sealed["c5"])
            blob[20] ^= 1
            return replace(msg, sealed={**msg.sealed, "c5": bytes(blob)})
        return msg

    vecs = make_vectors(10, 16)
    r = run_round(vecs, CFG, tamper=flip)
    err = r.client_errors["c5"]
    assert isinstance(err, PeerError) and err.party == "c2" and "authentication" in str(err)
    assert r.result is not None and "c5" not in r.result.survivors
    assert "'c2'" in r.result.excluded["c5"]
    np.testing.assert_array_equal(r.result.total, exact_sum(vecs, r.result.survivors, CFG))


def test_rerouted_share_fails_authentication() -> None:
    """The aggregator forwards c1's share meant for c2 to c3: the associated data differs."""
    vecs = make_vectors(4, 8)
    names = list(vecs)
    clients = {c: SecAggClient(c, names, CFG, round_id="r", vector=v) for c, v in vecs.items()}
    agg = SecAggAggregator(names, CFG, round_id="r")
    dirs = agg.receive_keys({c: cl.advertise_keys() for c, cl in clients.items()})
    shares = {c: clients[c].share_keys(dirs[c]) for c in names}
    fwd = agg.receive_shares(shares)
    evil = ForwardedShares({**fwd["c3"].sealed, "c1": shares["c1"].sealed["c2"]})
    with pytest.raises(PeerError, match="authentication") as info:
        clients["c3"].masked_input(evil)
    assert info.value.party == "c1"


def _corrupt(phase: int, client: str, msg: Message) -> Message:
    """c0 sends a wrong share of c1's self-mask seed and of c9's mask key."""
    if phase == 3 and client == "c0" and isinstance(msg, UnmaskResponse):
        seed = {**msg.seed_shares, "c1": (msg.seed_shares["c1"] + 1) % shamir.PRIME}
        key = dict(msg.key_shares)
        if "c9" in key:
            key["c9"] = (key["c9"] + 7) % shamir.PRIME
        return replace(msg, seed_shares=seed, key_shares=key)
    return msg


def test_wrong_share_from_a_holder_is_named_and_discarded() -> None:
    vecs = make_vectors(10, 8)
    r = run_round(vecs, CFG, tamper=_corrupt, drop={2: ["c9"]})
    assert r.result is not None, r.error
    assert "wrong share" in r.result.excluded["c0"]
    assert "c0" in r.result.survivors  # its input is still summed; only its shares are dropped
    np.testing.assert_array_equal(r.result.total, exact_sum(vecs, r.result.survivors, CFG))


def test_wrong_share_that_cannot_be_pinned_refuses_the_round() -> None:
    # only t = 6 holders answer: a wrong share is detected but its sender cannot be isolated
    r = run_round(make_vectors(10, 8), CFG, tamper=_corrupt, drop={3: ["c5", "c6", "c7", "c8"]})
    assert r.result is None and isinstance(r.error, ProtocolError)
    assert "'c1'" in str(r.error) and "commitment" in str(r.error)


@pytest.mark.parametrize(
    "bad,reason",
    [
        (lambda y: np.full(y.shape, np.nan), "dtype float64"),
        (lambda y: y[:-1], "shape (15,)"),
        (lambda y: np.zeros(300_000, dtype=np.uint64), "over the limit"),
    ],
)
def test_malformed_masked_input_is_excluded(bad, reason) -> None:  # type: ignore[no-untyped-def]
    def swap(phase: int, client: str, msg: Message) -> Message:
        if phase == 2 and client == "c6" and isinstance(msg, MaskedInput):
            return MaskedInput(bad(msg.y))
        return msg

    vecs = make_vectors(10, 16)
    r = run_round(vecs, CFG, tamper=swap)
    assert r.result is not None, r.error
    assert "c6" not in r.result.survivors and reason in r.result.excluded["c6"]
    np.testing.assert_array_equal(r.result.total, exact_sum(vecs, r.result.survivors, CFG))


def test_nan_update_is_excluded_and_named() -> None:
    vecs = make_vectors(10, 16)
    vecs["c3"] = vecs["c3"].copy()
    vecs["c3"][5] = np.inf
    r = run_round(vecs, CFG)
    assert isinstance(r.client_errors["c3"], DataError)
    assert r.result is not None and "NaN/Inf" in r.result.excluded["c3"]
    assert "'c3'" in r.result.excluded["c3"]
    np.testing.assert_array_equal(r.result.total, exact_sum(vecs, r.result.survivors, CFG))
    assert r.result.survivors == tuple(c for c in vecs if c != "c3")


def test_wrong_length_is_excluded_at_keys() -> None:
    vecs = make_vectors(10, 16)
    vecs["c8"] = np.zeros(17)
    r = run_round(vecs, CFG)
    assert r.result is not None and "wrong shape" in r.result.excluded["c8"]
    np.testing.assert_array_equal(r.result.total, exact_sum(vecs, r.result.survivors, CFG))


def test_share_len_constant() -> None:
    assert SHARE_LEN == shamir.field_len(32) == 9


def _split_attack(
    colluders: list[str],
) -> tuple[bytes | None, bytes | None, MaskedInput, SecAggAggregator]:
    """A lying aggregator colluding with ``colluders`` tells 3 honest clients (and the victim)
    that the victim survived and the other honest clients that it dropped; the colluders hand
    over every share they hold. Returns what it can rebuild of the victim's seed and key."""
    names, clients, agg, masked = setup_round()
    victim = "c0"
    honest = [c for c in names if c != victim and c not in colluders]
    told_alive, told_dropped = honest[:3], honest[3:]
    seed_sh = {c: clients[c]._held[victim][0] for c in colluders}
    key_sh = {c: clients[c]._held[victim][1] for c in colluders}
    for c in [victim, *told_alive]:
        seed_sh[c] = clients[c].unmask(UnmaskRequest(tuple(names), ())).seed_shares[victim]
    for c in told_dropped:
        req = UnmaskRequest(tuple(x for x in names if x != victim), (victim,))
        key_sh[c] = clients[c].unmask(req).key_shares[victim]
    return rebuild(seed_sh, agg.plan.index), rebuild(key_sh, agg.plan.index), masked[victim], agg


def test_lying_aggregator_with_colluders_needs_threshold_above_half_of_g_plus_c() -> None:
    """The documented limit: a lying aggregator with c colluding clients is stopped from
    rebuilding both secrets of a live client iff t > (g + c) / 2. Here g = 10, t = 6."""
    g, t = 10, 6
    for c in range(0, 5):
        # best split of the g - 1 - c other honest clients: b-side gets the victim and c colluders,
        # key-side the c colluders
        possible = any(a + 1 + c >= t and (g - 1 - c - a) + c >= t for a in range(g - c))
        assert possible == (t <= (g + c) / 2)
    # c = 1: the split above gets at most one of the two secrets
    seed, key, _, _ = _split_attack(["c9"])
    assert seed is None or key is None
    # c = 2 is beyond the bound (6 <= 12 / 2): the attack works and the victim's input leaks
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from veil.fl.secagg.client import pair_info, pair_sign, self_domain
    from veil.fl.secagg.masks import agree, expand_mask

    seed, key, y_msg, agg = _split_attack(["c8", "c9"])
    assert seed is not None and key is not None
    sk = X25519PrivateKey.from_private_bytes(key)
    dt, y = agg.plan.fixed_point.dtype, y_msg.y.copy()
    y -= expand_mask(seed, y.size, dt, self_domain("r", "c0"))
    for j in agg.plan.neighbours["c0"]:
        m = expand_mask(
            agree(sk, agg._keys[j].mask_pk, pair_info("r", "c0", j), peer=j), y.size, dt, b"pair"
        )
        y = y - m if pair_sign(agg.plan.index, "c0", j) > 0 else y + m
    leaked = agg.plan.fixed_point.decode(y)
    np.testing.assert_array_equal(leaked, exact_sum(make_vectors(10, 16), ["c0"], CFG))
