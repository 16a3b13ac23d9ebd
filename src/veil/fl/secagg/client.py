"""The client role of SecAgg+ as a sans-I/O state machine.

A :class:`SecAggClient` is driven by four calls, each taking the aggregator's last message and
returning the client's next one; a call out of order, or a second answer to the same phase,
raises :class:`~veil.errors.ProtocolError`.

1. :meth:`~SecAggClient.advertise_keys` — two fresh X25519 key pairs: ``enc`` (to seal shares)
   and ``mask`` (to agree pairwise masks).
2. :meth:`~SecAggClient.share_keys` — draws a self-mask seed ``b``; Shamir-shares ``b`` and the
   ``mask`` private key among its live group (neighbours + itself) with threshold ``t``; seals
   each neighbour's pair of shares with AES-256-GCM under a key derived (X25519 + HKDF) from
   the ``enc`` keys, with associated data binding round, sender and recipient; commits to ``b``.
3. :meth:`~SecAggClient.masked_input` — opens the shares it was forwarded (a tampered one raises
   :class:`~veil.errors.PeerError` naming the sender), and sends
   ``y = encode(w * clip(x)) + PRG(b) + sum_j ±PRG(s_ij)`` over the neighbours ``j`` whose shares
   arrived (``+`` if this client comes first in the client list, ``-`` otherwise).
4. :meth:`~SecAggClient.unmask` — for an :class:`UnmaskRequest` naming survivors and dropped
   clients, reveals its share of ``b_j`` for each survivor ``j`` and its share of ``j``'s mask
   key for each dropped ``j`` — **never both kinds for one client, and only once per round**.
   It refuses (``ProtocolError``) when the lists overlap, when it is itself listed as dropped or
   missing from the survivors (it sent its input, so that is a lie), or when fewer than ``t``
   members of its group are said to survive.

What a client learns: its neighbours' public keys and the names of live clients. What it
reveals: its masked input (uniform to anyone lacking ``b`` or a pairwise key) and, on request,
shares as above. See :mod:`veil.fl.secagg` for the full threat model.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from veil.core.wire import decode_value, encode_value
from veil.errors import ConfigError, DataError, PeerError, ProtocolError
from veil.fl.secagg import masks, shamir
from veil.fl.secagg.config import SecAggConfig
from veil.fl.secagg.encoding import clip_l2
from veil.fl.secagg.messages import (
    AdvertiseKeys,
    EncryptedShares,
    ForwardedShares,
    KeyDirectory,
    MaskedInput,
    RoundOutcome,
    UnmaskRequest,
    UnmaskResponse,
)

SHARE_LEN = shamir.field_len(masks.KEY_BYTES)


def share_info(round_id: str, sender: str, recipient: str) -> bytes:
    """HKDF info and AES-GCM associated data of sealed shares ``sender`` -> ``recipient``."""
    return encode_value(["veil-secagg/v1/share", round_id, sender, recipient])


def pair_info(round_id: str, a: str, b: str) -> bytes:
    """HKDF info of the pairwise mask seed of clients ``a`` and ``b`` (order-free)."""
    lo, hi = sorted((a, b))
    return encode_value(["veil-secagg/v1/pair", round_id, lo, hi])


def self_domain(round_id: str, client: str) -> bytes:
    """PRG domain of ``client``'s self mask."""
    return encode_value(["veil-secagg/v1/self", round_id, client])


def seed_commitment(round_id: str, seed: bytes) -> bytes:
    """SHA-256 commitment to a self-mask seed (the seed is 32 random bytes, so it hides it)."""
    return hashlib.sha256(encode_value(["veil-secagg/v1/commit", round_id, seed])).digest()


def pair_sign(plan_index: dict[str, int], me: str, other: str) -> int:
    """+1 if ``me`` adds the pairwise mask with ``other``, -1 if it subtracts it."""
    return 1 if plan_index[me] < plan_index[other] else -1


class SecAggClient:
    """One client's side of a SecAgg+ round (sans-I/O).

    Parameters
    ----------
    party:
        This client's name (must be in ``clients``).
    clients:
        Every client of the round, in the same order at every party.
    config:
        The round's options (same at every party).
    round_id:
        A string unique to this round (binds keys, shares and masks to it).
    vector:
        The float update; clipped to ``config.clip`` (L2) and checked for NaN/Inf here. It is
        kept by reference (no copy of large updates): do not modify it until the round ends.
    weight:
        Required iff ``config.max_weight`` is set; ``0 < weight <= max_weight``.
    randbytes:
        Source of randomness (``os.urandom``; tests pass a seeded one).

    Raises
    ------
    DataError
        The vector holds NaN/Inf, is not 1-D, or the weight is invalid (names the client).
    ConfigError
        The configuration could overflow or is inconsistent.
    """

    def __init__(
        self,
        party: str,
        clients: Sequence[str],
        config: SecAggConfig,
        *,
        round_id: str,
        vector: np.ndarray[Any, Any],
        weight: float | None = None,
        randbytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.plan = config.plan(round_id, clients)
        if party not in self.plan.index:
            raise ConfigError(f"client {party!r} is not one of the round's clients")
        self.party = party
        self.config = config
        self._rand = randbytes
        self._x = clip_l2(vector, config.clip, party=party)  # no copy unless it is clipped
        self._weight: float | None = None
        if config.max_weight is None:
            if weight is not None:
                raise ConfigError(
                    f"client {party!r} passed a weight but the SecAggConfig has no max_weight"
                )
        else:
            if weight is None or not (np.isfinite(weight) and 0 < weight <= config.max_weight):
                raise DataError(
                    f"client {party!r}: weight {weight} must be in (0, {config.max_weight}]"
                )
            self._weight = float(weight)
        #: Length of the encoded vector (the float vector, plus one entry for the weight).
        self.dim = int(self._x.shape[0]) + int(self._weight is not None)
        self._enc_sk = masks.new_private_key(randbytes)
        self._mask_sk = masks.new_private_key(randbytes)
        self._seed = randbytes(masks.KEY_BYTES)
        self._phase = 0
        self._keys: dict[str, tuple[bytes, bytes]] = {}
        self._enc_shared: dict[str, bytes] = {}  # X25519(enc) with each neighbour, for both ways
        self._held: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # owner -> (seed, key) shares
        self.masked_with: tuple[str, ...] = ()
        #: Clients whose self-mask seed share / mask-key share this client revealed.
        self.revealed_seed_of: frozenset[str] = frozenset()
        self.revealed_key_of: frozenset[str] = frozenset()

    def _enter(self, phase: int, what: str) -> None:
        if self._phase != phase:
            raise ProtocolError(
                f"client {self.party!r}: {what} is phase {phase} but the client is at phase "
                f"{self._phase}; each phase is answered once, in order"
            )
        self._phase = phase + 1

    # ------------------------------------------------------------------ phase 0
    def advertise_keys(self) -> AdvertiseKeys:
        """Phase 0: the two public keys and the encoded vector length."""
        self._enter(0, "advertising keys")
        return AdvertiseKeys(
            masks.public_bytes(self._enc_sk), masks.public_bytes(self._mask_sk), self.dim
        )

    # ------------------------------------------------------------------ phase 1
    def share_keys(self, directory: KeyDirectory) -> EncryptedShares:
        """Phase 1: Shamir-share the self-mask seed and mask key; seal each neighbour's shares."""
        self._enter(1, "sharing keys")
        me, plan = self.party, self.plan
        if directory.dim != self.dim:
            raise ProtocolError(
                f"client {me!r}: the aggregator agreed on length {directory.dim} but this "
                f"client's encoded vector has {self.dim}"
            )
        nbrs = set(plan.neighbours[me])
        stray = sorted(set(directory.keys) - nbrs)
        if stray:
            raise ProtocolError(
                f"client {me!r}: the aggregator sent keys of non-neighbours {stray}"
            )
        live = [me, *(c for c in plan.neighbours[me] if c in directory.keys)]
        if len(live) < plan.threshold:
            raise ProtocolError(
                f"client {me!r}: only {len(live)} of its share group are live, below the "
                f"threshold {plan.threshold}; the round cannot protect this client"
            )
        self._keys = dict(directory.keys)
        secret = np.stack(
            [
                shamir.bytes_to_field(self._seed),
                shamir.bytes_to_field(masks.private_bytes(self._mask_sk)),
            ]
        )
        shares = shamir.split(secret, [plan.index[c] for c in live], plan.threshold, self._rand)
        self._held[me] = (shares[0, 0], shares[0, 1])
        sealed: dict[str, bytes] = {}
        for row, j in zip(shares[1:], live[1:], strict=True):
            info = share_info(plan.round_id, me, j)
            shared = masks.exchange(self._enc_sk, self._keys[j][0], peer=j)
            self._enc_shared[j] = shared
            key = masks.derive(shared, info)
            body = encode_value({"from": me, "to": j, "seed": row[0], "key": row[1]})
            sealed[j] = masks.seal(key, body, info, self._rand)
        return EncryptedShares(sealed, seed_commitment(plan.round_id, self._seed))

    # ------------------------------------------------------------------ phase 2
    def _open(self, sender: str, blob: bytes) -> tuple[np.ndarray, np.ndarray]:
        info = share_info(self.plan.round_id, sender, self.party)
        key = masks.derive(self._enc_shared[sender], info)
        body = masks.open_sealed(key, blob, info, sender=sender)
        obj = decode_value(body, max_bytes=4096)
        ok = (
            isinstance(obj, dict)
            and obj.get("from") == sender
            and obj.get("to") == self.party
            and all(
                isinstance(obj.get(k), np.ndarray)
                and obj[k].dtype == np.uint64
                and obj[k].shape == (SHARE_LEN,)
                and bool(np.all(obj[k] < shamir.PRIME))
                for k in ("seed", "key")
            )
        )
        if not ok:
            raise PeerError(sender, f"sealed share for {self.party!r} is malformed")
        return obj["seed"], obj["key"]

    def masked_input(self, forwarded: ForwardedShares) -> MaskedInput:
        """Phase 2: open the forwarded shares and return the masked encoded vector."""
        self._enter(2, "masking the input")
        me, plan = self.party, self.plan
        stray = sorted(set(forwarded.sealed) - set(self._keys))
        if stray:
            raise ProtocolError(f"client {me!r}: forwarded shares from non-neighbours {stray}")
        for sender, blob in forwarded.sealed.items():
            self._held[sender] = self._open(sender, blob)
        senders = tuple(c for c in plan.neighbours[me] if c in forwarded.sealed)
        if len(senders) + 1 < plan.threshold:
            raise ProtocolError(
                f"client {me!r}: only {len(senders)} neighbours shared keys, below the threshold "
                f"{plan.threshold} - 1; the round cannot protect this client"
            )
        dt = plan.fixed_point.dtype
        x = self._x if self._weight is None else np.append(self._x * self._weight, self._weight)
        y = plan.fixed_point.encode(x, self.config.coordinate_bound)
        y += masks.expand_mask(self._seed, self.dim, dt, self_domain(plan.round_id, me))
        for j in senders:
            seed = masks.agree(
                self._mask_sk, self._keys[j][1], pair_info(plan.round_id, me, j), peer=j
            )
            m = masks.expand_mask(seed, self.dim, dt, b"pair")
            if pair_sign(plan.index, me, j) > 0:
                y += m
            else:
                y -= m
        self.masked_with = senders
        return MaskedInput(y)

    # ------------------------------------------------------------------ phase 3
    def unmask(self, request: UnmaskRequest) -> UnmaskResponse:
        """Phase 3: reveal shares for the unmasking, after the honesty checks (module docstring)."""
        self._enter(3, "unmasking")
        me, plan = self.party, self.plan
        surv, drop = set(request.survivors), set(request.dropped)
        if surv & drop:
            raise ProtocolError(
                f"client {me!r} refuses to unmask: {sorted(surv & drop)} are listed both as "
                "survivors and as dropped (revealing both shares would expose their inputs)"
            )
        if me in drop or me not in surv:
            raise ProtocolError(
                f"client {me!r} refuses to unmask: the aggregator claims it dropped, but it sent "
                "its masked input (an aggregator lying about dropouts)"
            )
        live_group = [c for c in plan.group(me) if c in surv]
        if len(live_group) < plan.threshold:
            raise ProtocolError(
                f"client {me!r} refuses to unmask: only {len(live_group)} of its group survived, "
                f"below the threshold {plan.threshold}"
            )
        seed_of = {j: self._held[j][0] for j in sorted(surv) if j in self._held}
        key_of = {j: self._held[j][1] for j in sorted(drop) if j in self._held}
        self.revealed_seed_of = frozenset(seed_of)
        self.revealed_key_of = frozenset(key_of)
        return UnmaskResponse(seed_of, key_of)

    def finish(self, outcome: RoundOutcome) -> np.ndarray | None:
        """Phase 4: the round's outcome; returns the decoded sum if it was broadcast."""
        self._enter(4, "finishing")
        return outcome.total
