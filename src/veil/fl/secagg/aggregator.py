"""The aggregator role of SecAgg+ as a sans-I/O state machine.

Each ``receive_*`` call takes the messages that arrived in one phase (a client missing from the
mapping dropped out in that phase) and returns the messages to send back. A client whose message
is malformed — wrong length or dtype of the masked input, an oversized or garbled message, an
:class:`Abort` — is *excluded* with its reason recorded (and is then treated as dropped: its
pairwise masks are removed from the survivors' sum, so it can never corrupt it).

The aggregator sums the masked inputs as they arrive (memory is one vector, not ``n``), then
rebuilds each survivor's self-mask seed and each dropped client's mask key from ``t`` shares,
checks them (seed against its commitment, key against its public key) and removes the masks. A
holder whose share fails the check is identified (the one whose removal makes it pass), named in
``excluded`` and its shares discarded; if none can be singled out the round is refused.
When a phase leaves too few clients to unmask someone, it raises :class:`SecAggAborted`
*before* asking anyone for shares, so a failed round reveals nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from veil.errors import ProtocolError
from veil.fl.secagg import masks, shamir
from veil.fl.secagg.client import pair_info, pair_sign, seed_commitment, self_domain
from veil.fl.secagg.config import SecAggConfig
from veil.fl.secagg.messages import (
    MAX_SEALED,
    Abort,
    AdvertiseKeys,
    EncryptedShares,
    ForwardedShares,
    KeyDirectory,
    MaskedInput,
    RoundOutcome,
    UnmaskRequest,
    UnmaskResponse,
)


class SecAggAborted(ProtocolError):
    """The round cannot complete (too few clients left); no sum and no input was revealed."""


@dataclass(frozen=True)
class SecAggResult:
    """What the aggregator obtains from a successful round.

    Attributes
    ----------
    total:
        The decoded sum over ``survivors`` of ``w * clip(x)`` (of ``clip(x)`` when unweighted),
        exact in fixed point: within ``len(survivors) * 2^-(frac_bits+1)`` of the float sum.
    weight_total:
        The sum of the survivors' weights (``None`` when unweighted).
    survivors:
        Clients whose inputs are in ``total``.
    dropped:
        Clients not in the sum, with the phase they vanished in or why they were excluded.
    excluded:
        Clients whose message was rejected, with the reason (a subset of ``dropped``, plus
        survivors whose unmasking response was unusable).
    """

    total: np.ndarray
    weight_total: float | None
    survivors: tuple[str, ...]
    dropped: dict[str, str] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)


class SecAggAggregator:
    """The aggregator's side of a SecAgg+ round (sans-I/O).

    Parameters
    ----------
    clients, config, round_id:
        As every client has them.
    dim:
        Length of the clients' float vectors, if known; otherwise the length advertised by a
        strict majority of clients is used and the others are excluded.
    """

    def __init__(
        self,
        clients: Sequence[str],
        config: SecAggConfig,
        *,
        round_id: str,
        dim: int | None = None,
    ) -> None:
        self.plan = config.plan(round_id, clients)
        self.config = config
        self.weighted = config.max_weight is not None
        self.dim = None if dim is None else dim + int(self.weighted)
        self.dropped: dict[str, str] = {}
        self.excluded: dict[str, str] = {}
        self._phase = 0
        self._live: list[str] = list(self.plan.clients)
        self._keys: dict[str, AdvertiseKeys] = {}
        self._commit: dict[str, bytes] = {}
        self._fwd: dict[str, frozenset[str]] = {}  # client -> whose shares it was forwarded
        self._acc: np.ndarray | None = None
        self._survivors: tuple[str, ...] = ()
        self._gone: tuple[str, ...] = ()

    @property
    def expected(self) -> tuple[str, ...]:
        """Clients whose message the current phase waits for."""
        return self._survivors if self._phase == 3 else tuple(self._live)

    def message_limit(self, phase: int) -> int:
        """Largest acceptable client message in ``phase`` (bytes): the config's bound plus room
        for one sealed share per neighbour, plus the masked vector in phase 2."""
        degree = max((len(v) for v in self.plan.neighbours.values()), default=0)
        room = self.config.max_message_bytes + 2 * MAX_SEALED * (degree + 1)
        if phase == 2:
            room += int(self.dim or 0) * self.plan.fixed_point.dtype.itemsize
        return room

    # ----------------------------------------------------------------- helpers
    def _enter(self, phase: int) -> None:
        if self._phase != phase:
            raise ProtocolError(f"aggregator: phase {phase} called at phase {self._phase}")
        self._phase = phase + 1

    def _arrived(self, msgs: Mapping[str, Any], kind: type, phase: str) -> dict[str, Any]:
        """Messages of live clients that are of ``kind``; record the rest as dropped/excluded."""
        got: dict[str, Any] = {}
        for c in self._live:
            m = msgs.get(c)
            if m is None:
                self.dropped.setdefault(c, f"dropped out in phase {phase}")
            elif isinstance(m, Abort):
                self.exclude(c, f"aborted in phase {phase}: {m.reason}")
            elif not isinstance(m, kind):
                self.exclude(c, f"sent a {type(m).__name__} in phase {phase}")
            else:
                got[c] = m
        return got

    def exclude(self, client: str, reason: str) -> None:
        """Record ``client`` as excluded (and dropped) with ``reason``."""
        self.excluded.setdefault(client, reason)
        self.dropped.setdefault(client, f"excluded: {reason}")

    def _need(self, count: int, what: str) -> None:
        if count < self.plan.threshold:
            raise SecAggAborted(
                f"secure aggregation aborted: {what} ({count} < threshold {self.plan.threshold}); "
                "nothing was revealed. Dropped: "
                + (", ".join(f"{c} ({r})" for c, r in sorted(self.dropped.items())) or "none")
            )

    # ----------------------------------------------------------------- phase 0
    def receive_keys(self, msgs: Mapping[str, AdvertiseKeys | Abort]) -> dict[str, KeyDirectory]:
        """Phase 0: collect public keys; return each live client's neighbours' keys."""
        self._enter(0)
        got = self._arrived(msgs, AdvertiseKeys, "0 (keys)")
        if self.dim is None and got:
            dims = [m.dim for m in got.values()]
            best = max(set(dims), key=dims.count)
            if 2 * dims.count(best) <= len(dims):
                raise SecAggAborted(f"clients disagree on the vector length: {sorted(set(dims))}")
            self.dim = best
        for c, m in list(got.items()):
            if m.dim != self.dim:
                self.exclude(c, f"wrong shape: encoded length {m.dim}, expected {self.dim}")
                del got[c]
        live = set(got)
        while True:  # drop clients whose live share group is below the threshold, to a fixpoint
            size = {c: sum(1 for o in self.plan.group(c) if o in live) for c in live}
            short = {c for c, g in size.items() if g < self.plan.threshold}
            if not short:
                break
            for c in short:
                self.dropped.setdefault(c, f"only {size[c]} of its share group live after phase 0")
            live -= short
        self._live = [c for c in self.plan.clients if c in live]
        self._need(len(self._live), "too few clients advertised keys")
        self._keys = {c: got[c] for c in self._live}
        return {
            c: KeyDirectory(
                int(self.dim or 0),
                {
                    j: (self._keys[j].enc_pk, self._keys[j].mask_pk)
                    for j in self.plan.neighbours[c]
                    if j in live
                },
            )
            for c in self._live
        }

    # ----------------------------------------------------------------- phase 1
    def receive_shares(
        self, msgs: Mapping[str, EncryptedShares | Abort]
    ) -> dict[str, ForwardedShares]:
        """Phase 1: collect sealed shares; route each to its recipient."""
        self._enter(1)
        got = self._arrived(msgs, EncryptedShares, "1 (shares)")
        live1 = set(self._live)
        for c, m in list(got.items()):
            expect = {j for j in self.plan.neighbours[c] if j in live1}
            if set(m.sealed) != expect:
                self.exclude(c, "sealed shares are not addressed to exactly its live neighbours")
                del got[c]
        self._live = [c for c in self._live if c in got]
        self._need(len(self._live), "too few clients shared their keys")
        self._commit = {c: got[c].seed_commitment for c in self._live}
        out: dict[str, ForwardedShares] = {}
        for k in self._live:
            sealed = {i: got[i].sealed[k] for i in self.plan.neighbours[k] if i in got}
            self._fwd[k] = frozenset(sealed)
            out[k] = ForwardedShares(sealed)
        return out

    # ----------------------------------------------------------------- phase 2
    def check_masked(self, client: str, msg: MaskedInput) -> str | None:
        """Why ``msg`` is not a valid masked input (``None`` if it is)."""
        y = msg.y
        dt = self.plan.fixed_point.dtype
        if not isinstance(y, np.ndarray) or y.dtype != dt or y.shape != (self.dim,):
            shape = getattr(y, "shape", None)
            dtype = getattr(y, "dtype", None)
            return (
                f"masked input has shape {shape} and dtype {dtype}; expected ({self.dim},) {dt} "
                "(wrong shape, or a float vector with NaN/Inf — never summed)"
            )
        return None

    def receive_masked(
        self,
        msgs: Mapping[str, MaskedInput | Abort] | Iterable[tuple[str, MaskedInput | Abort]],
    ) -> dict[str, UnmaskRequest]:
        """Phase 2: sum the valid masked inputs; ask the survivors for the unmasking shares.

        ``msgs`` may be a mapping or an iterable of ``(client, message)`` pairs consumed one at a
        time, so only one masked vector needs to be in memory besides the running sum.
        """
        self._enter(2)
        pairs = msgs.items() if isinstance(msgs, Mapping) else msgs
        acc = np.zeros(int(self.dim or 0), dtype=self.plan.fixed_point.dtype)
        live, got = set(self._live), set()
        for c, m in pairs:
            if c not in live or c in got:
                continue
            if isinstance(m, Abort):
                self.exclude(c, f"aborted in phase 2 (masked input): {m.reason}")
                continue
            why = self.check_masked(c, m) if isinstance(m, MaskedInput) else "not a masked input"
            if why is not None:
                self.exclude(c, why)
                continue
            acc += m.y
            got.add(c)
        for c in self._live:
            if c not in got:
                self.dropped.setdefault(c, "dropped out in phase 2 (masked input)")
        survivors = tuple(c for c in self._live if c in got)
        gone = tuple(c for c in self._live if c not in got)
        holders = dict.fromkeys((*survivors, *gone), 0)
        for k in survivors:  # k holds its own shares and those it was forwarded
            for j in (k, *self._fwd[k]):
                holders[j] += 1
        for j, count in holders.items():
            self._need(count, f"only {count} surviving holders of {j!r}'s shares")
        self._acc, self._survivors, self._gone = acc, survivors, gone
        # each client hears only about its own group: O(degree) bytes, not O(n)
        alive, lost = set(survivors), set(gone)
        return {
            k: UnmaskRequest(
                tuple(c for c in self.plan.group(k) if c in alive),
                tuple(c for c in self.plan.group(k) if c in lost),
            )
            for k in survivors
        }

    # ----------------------------------------------------------------- phase 3
    @staticmethod
    def _to_secret(elems: np.ndarray) -> bytes | None:
        """The 32-byte secret a field vector encodes, or ``None`` (wrong shares give garbage)."""
        try:
            return shamir.field_to_bytes(elems, masks.KEY_BYTES)
        except ProtocolError:
            return None

    def _rebuild(
        self, shares: dict[str, dict[str, np.ndarray]], what: str
    ) -> dict[str, bytes | None]:
        """Secrets of each owner from ``t`` of its shares (owners sharing holders in one batch)."""
        t, index = self.plan.threshold, self.plan.index
        batches: dict[tuple[str, ...], list[str]] = {}
        for owner, sh in shares.items():
            if len(sh) < t:
                raise SecAggAborted(
                    f"secure aggregation aborted: only {len(sh)} shares of {owner!r}'s {what} "
                    f"arrived (threshold {t}); the sum cannot be unmasked"
                )
            batches.setdefault(tuple(sorted(sh, key=index.__getitem__)[:t]), []).append(owner)
        out: dict[str, bytes | None] = {}
        for holders, owners in batches.items():
            rows = np.stack([np.stack([shares[o][h] for o in owners]) for h in holders])
            secrets = shamir.reconstruct([index[h] for h in holders], rows)
            for o, sec in zip(owners, secrets, strict=True):
                out[o] = self._to_secret(sec)
        return out

    def _valid(self, owner: str, secret: bytes | None, kind: str) -> bool:
        """Does a rebuilt secret match what ``owner`` committed to (seed hash / public key)?"""
        if secret is None:
            return False
        if kind == "seed":
            return seed_commitment(self.plan.round_id, secret) == self._commit[owner]
        sk = X25519PrivateKey.from_private_bytes(secret)
        return masks.public_bytes(sk) == self._keys[owner].mask_pk

    def _culprit(self, owner: str, shares: dict[str, np.ndarray], kind: str) -> str | None:
        """The one holder whose share of ``owner``'s secret is wrong, if dropping it fixes it."""
        t, index = self.plan.threshold, self.plan.index
        holders = sorted(shares, key=index.__getitem__)
        for h in holders:
            rest = [x for x in holders if x != h][:t]
            if len(rest) < t:
                return None
            rows = np.stack([shares[x] for x in rest])
            secret = self._to_secret(shamir.reconstruct([index[x] for x in rest], rows))
            if self._valid(owner, secret, kind):
                return h
        return None

    def _rebuild_checked(
        self, seed_sh: dict[str, dict[str, np.ndarray]], key_sh: dict[str, dict[str, np.ndarray]]
    ) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """Rebuild every seed and key and check each against its commitment / public key. A
        holder whose share is wrong is named, its response discarded, and the rest retried;
        if that is not possible the round is refused (never a wrong sum)."""
        names = {"seed": "self-mask seed", "key": "mask key"}
        while True:
            found = [
                (owner, kind, secret)
                for sh, kind in ((seed_sh, "seed"), (key_sh, "key"))
                for owner, secret in self._rebuild(sh, names[kind]).items()
            ]
            bad = next(((o, k) for o, k, sec in found if not self._valid(o, sec, k)), None)
            if bad is None:
                seeds = {o: sec for o, k, sec in found if k == "seed" and sec is not None}
                return seeds, {o: sec for o, k, sec in found if k == "key" and sec is not None}
            owner, kind = bad
            shares = (seed_sh if kind == "seed" else key_sh)[owner]
            culprit = self._culprit(owner, shares, kind)
            what = names[kind]
            if culprit is None:
                raise ProtocolError(
                    f"the shares of {owner!r}'s {what} do not match its "
                    f"{'commitment' if kind == 'seed' else 'public key'} and no single wrong "
                    "holder can be identified; the round is refused"
                )
            self.excluded[culprit] = f"sent a wrong share of {owner!r}'s {what}; response discarded"
            for per_owner in (*seed_sh.values(), *key_sh.values()):
                per_owner.pop(culprit, None)

    def receive_unmask(
        self, msgs: Mapping[str, UnmaskResponse | Abort]
    ) -> tuple[SecAggResult, dict[str, RoundOutcome]]:
        """Phase 3: rebuild the secrets, remove every mask, decode the survivors' sum."""
        self._enter(3)
        assert self._acc is not None
        plan, surv, gone = self.plan, self._survivors, self._gone
        seed_sh: dict[str, dict[str, np.ndarray]] = {j: {} for j in surv}
        key_sh: dict[str, dict[str, np.ndarray]] = {j: {} for j in gone}
        surv_set, gone_set = frozenset(surv), frozenset(gone)
        for k in surv:
            m = msgs.get(k)
            if not isinstance(m, UnmaskResponse):
                why = m.reason if isinstance(m, Abort) else "no response"
                self.excluded.setdefault(k, f"gave no unmasking shares ({why}); input still summed")
                continue
            held = self._fwd[k] | {k}
            if not (
                m.seed_shares.keys() <= held & surv_set and m.key_shares.keys() <= held & gone_set
            ):
                self.excluded.setdefault(k, "unmasking response names clients it holds no share of")
                continue
            for j, s in m.seed_shares.items():
                seed_sh[j][k] = s
            for j, s in m.key_shares.items():
                key_sh[j][k] = s
        seeds, keys = self._rebuild_checked(seed_sh, key_sh)
        acc = self._acc.copy()
        dt, dim = plan.fixed_point.dtype, int(self.dim or 0)
        for j in surv:
            acc -= masks.expand_mask(seeds[j], dim, dt, self_domain(plan.round_id, j))
        for j in gone:
            sk = X25519PrivateKey.from_private_bytes(keys[j])
            for k in surv:
                if j in self._fwd[k]:
                    info = pair_info(plan.round_id, k, j)
                    seed = masks.agree(sk, self._keys[k].mask_pk, info, peer=k)
                    m_kj = masks.expand_mask(seed, dim, dt, b"pair")
                    # k added sign * m_kj to its input; take it back out
                    if pair_sign(plan.index, k, j) > 0:
                        acc -= m_kj
                    else:
                        acc += m_kj
        decoded = plan.fixed_point.decode(acc)
        wsum: float | None = None
        if self.weighted:
            decoded, wsum = decoded[:-1].copy(), float(decoded[-1])
        result = SecAggResult(decoded, wsum, surv, dict(self.dropped), dict(self.excluded))
        total = decoded if self.config.broadcast_sum else None
        return result, {c: RoundOutcome(surv, total) for c in surv}
