"""ECDH-PSI as sans-I/O state machines: a :class:`Leader` and one :class:`Follower` per other party.

Two parties are the case of one follower; N parties are a star around the leader (the first
party). The machines do no I/O: each method takes the message a party received and returns the
messages it must send (:mod:`veil.psi.messages`); :mod:`veil.psi.adapter` carries them over a
:class:`~veil.transport.base.Link`, tests can pipe them by hand.

Protocol (leader L with secret key ``a``, follower F_i with key ``b_i``; ``H`` hashes a salted id
digest to an X25519 u-coordinate, :mod:`veil.psi.curve`)
-------------------------------------------------------------------------------------------
1. F_i → L  ``Hello``: agreed options, a 32-byte nonce, ``|Y_i|``. L checks the options agree.
2. L → F_i  ``Welcome``: all nonces, ``|X|``. Everyone derives ``salt = SHA-256(nonces)``.
3. L → F_i  ``a·H(x)`` for x ∈ X, in a secret random order π_L (the same chunks to every F_i).
   F_i → L  ``b_i·H(y)`` for y ∈ Y_i, in a secret random order π_i.
4. F_i → L  ``b_i·(a·H(x))`` truncated to 16 bytes, in the order received.
   L computes ``a·(b_i·H(y))`` truncated to 16 bytes.
5. L matches: its rows in every pairwise intersection form the intersection I. Unless
   ``receiver_only``, L → F_i ``Result``: the ascending positions (in π_i order) of F_i's
   points whose ids are in I.
6. Every party that learned its rows of I orders them by the salted hash ``H(salt, id)``: a
   canonical order that every party computes alone, so rows line up for a vertical join.

Threat model and leakage (semi-honest parties; DDH on Curve25519 and its twist; random oracle)
------------------------------------------------------------------------------------------
* **Leader** learns every ``|Y_i|``, every pairwise intersection ``X ∩ Y_i`` (as its own rows)
  and hence I; it sees only pseudorandom points of the followers' non-matching ids.
* **Follower F_i** learns ``|X|`` and, unless ``receiver_only``, ``|I|`` and which of its own
  rows are in I. It learns nothing about ``X ∩ Y_i`` beyond I, nor other followers' sets or
  sizes. In ``receiver_only`` mode it learns only ``|X|``.
* Row order leaks nothing: points travel in secret random orders, and the output order is a
  function of the intersection alone.
* Collusion: L colluding with F_i learns nothing more about F_j than L alone; followers
  colluding among themselves learn nothing more than their union of outputs. Not secure against
  malicious deviation (e.g. a leader can lie about I; a party can insert ids).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from veil.errors import ConfigError, PeerError, ProtocolError
from veil.psi import curve, matching
from veil.psi.messages import NONCE_BYTES, Hello, Points, Result, Welcome
from veil.psi.options import COMPARE_BYTES
from veil.psi.parallel import Masker

DIGEST_BYTES = 16
_ORDER_CHUNK = 1 << 16


def common_order(salt: bytes, digests: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Indices that put rows into the canonical order: ascending salted hash ``H(salt, id)``.

    Every party computes it from its own intersection rows alone, and all get the same order.
    """
    n = digests.shape[0]
    keys = np.empty((n, DIGEST_BYTES), dtype=np.uint8)
    for start in range(0, n, _ORDER_CHUNK):  # chunked: transient memory stays small
        block = digests[start : start + _ORDER_CHUNK]
        keys[start : start + block.shape[0]] = curve.hash_to_points(salt, block)[:, :DIGEST_BYTES]
    return matching.sort_order(keys)


def _permutation(n: int) -> np.ndarray[Any, Any]:
    """A secret uniformly random permutation of ``range(n)``: argsort of OS-CSPRNG words.

    (Ties among 64-bit random words, probability ≈ n²/2^65, only make it slightly non-uniform.)
    """
    if n == 0:
        return np.empty(0, dtype=np.int64)
    words = np.frombuffer(os.urandom(8 * n), dtype=np.uint64)
    return np.argsort(words, kind="stable").astype(np.int64)


def _check_digests(digests: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    d = np.ascontiguousarray(digests, dtype=np.uint8)
    if d.ndim != 2 or d.shape[1] != DIGEST_BYTES:
        raise ProtocolError(f"id digests must be (n, {DIGEST_BYTES}) uint8, got {d.shape}")
    return d


class _Party:
    """State shared by both roles: own digests, key, secret order, salt."""

    def __init__(
        self, party: str, digests: np.ndarray[Any, Any], masker: Masker, chunk_rows: int
    ) -> None:
        self.party = party
        self.digests = _check_digests(digests)
        self.n = int(self.digests.shape[0])
        self.masker = masker
        self.chunk_rows = max(1, chunk_rows)
        self._key = curve.new_key()
        self._perm = _permutation(self.n)
        self._salt: bytes | None = None

    @property
    def salt(self) -> bytes:
        if self._salt is None:
            raise ProtocolError(f"{self.party}: the salt is not agreed yet (no welcome)")
        return self._salt

    def own_points(self) -> Iterator[Points]:
        """This party's singly-masked points ``k·H(id)`` in its secret order, chunk by chunk."""
        salt = self.salt
        for start in range(0, self.n, self.chunk_rows):
            rows = self._perm[start : start + self.chunk_rows]
            yield Points(self.masker.hash_and_mask(self._key, salt, self.digests[rows]))

    def mask_peer(self, frm: str, chunk: Points) -> np.ndarray[Any, Any]:
        """``k·P`` truncated to the comparison width for each point of ``frm``'s chunk."""
        try:
            return self.masker.mask(self._key, chunk.data, COMPARE_BYTES)
        except ProtocolError as exc:
            raise PeerError(frm, f"sent an invalid PSI point: {exc}") from None

    def rows_in_order(self, positions: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Own row indices for ``positions`` (in the sent order), in the canonical order."""
        rows: np.ndarray[Any, Any] = self._perm[positions.astype(np.int64)]
        ordered: np.ndarray[Any, Any] = rows[common_order(self.salt, self.digests[rows])]
        return ordered


class Follower(_Party):
    """The follower side of one leader–follower session.

    Parameters
    ----------
    party, leader:
        Names of this party and of the leader.
    digests:
        ``(n, 16)`` uint8 id digests of this party's rows (duplicate-free).
    agreed:
        :meth:`PsiOptions.agreed` of this party.
    masker:
        Where scalar multiplications run.
    chunk_rows:
        Points per chunk sent.
    """

    def __init__(
        self,
        party: str,
        leader: str,
        digests: np.ndarray[Any, Any],
        agreed: dict[str, Any],
        masker: Masker,
        chunk_rows: int = 1 << 16,
    ) -> None:
        super().__init__(party, digests, masker, chunk_rows)
        self.leader = leader
        self.agreed = agreed
        self.receiver_only = bool(agreed["receiver_only"])
        self._nonce = os.urandom(NONCE_BYTES)
        self.n_leader: int | None = None
        self._answered = 0

    def hello(self) -> Hello:
        """Step 1: the hello for the leader."""
        return Hello(self.agreed, self._nonce, self.n)

    def on_welcome(self, msg: Welcome) -> None:
        """Step 2: take the nonces (check ours is among them) and derive the salt."""
        if self._nonce not in msg.nonces:
            raise PeerError(self.leader, "PSI welcome does not carry this party's nonce")
        self._salt = msg.salt()
        self.n_leader = msg.n_leader

    def leader_points_left(self) -> int:
        """How many of the leader's points still have to be answered."""
        if self.n_leader is None:
            raise ProtocolError(f"{self.party}: no welcome from the leader yet")
        return self.n_leader - self._answered

    def on_leader_points(self, chunk: Points) -> Points:
        """Step 4: answer a chunk of the leader's points with ``b·(a·H(x))`` in the same order."""
        if chunk.rows > self.leader_points_left():
            raise PeerError(self.leader, "sent more PSI points than its declared set size")
        self._answered += chunk.rows
        return Points(self.mask_peer(self.leader, chunk))

    def on_result(self, msg: Result) -> np.ndarray[Any, Any]:
        """Step 6: own row indices of the intersection, in the canonical order."""
        if self.receiver_only:
            raise ProtocolError(f"{self.party}: no result is sent in receiver-only mode")
        return self.rows_in_order(msg.positions)


class Leader(_Party):
    """The leader (receiver) of a star of sessions with ``followers``.

    Parameters
    ----------
    party:
        This party (the leader).
    followers:
        The other parties, in the cluster's party order.
    digests, agreed, masker, chunk_rows:
        As for :class:`Follower`.
    """

    def __init__(
        self,
        party: str,
        followers: Sequence[str],
        digests: np.ndarray[Any, Any],
        agreed: dict[str, Any],
        masker: Masker,
        chunk_rows: int = 1 << 16,
    ) -> None:
        super().__init__(party, digests, masker, chunk_rows)
        self.followers = tuple(followers)
        self.agreed = agreed
        self.receiver_only = bool(agreed["receiver_only"])
        self._nonce = os.urandom(NONCE_BYTES)
        self._hellos: dict[str, Hello] = {}
        # per follower: a·(b_i·H(y)) in follower order; b_i·(a·H(x)) in our sent order
        # filled chunk by chunk (allocated once the sizes are known: no copies at the end)
        self._theirs: dict[str, np.ndarray[Any, Any]] = {}
        self._ours = {f: np.empty((self.n, COMPARE_BYTES), dtype=np.uint8) for f in self.followers}
        self._got_theirs = dict.fromkeys(self.followers, 0)
        self._got_ours = dict.fromkeys(self.followers, 0)

    def on_hello(self, frm: str, msg: Hello) -> None:
        """Step 1: record a follower's hello; refuse differing options."""
        if frm not in self.followers or frm in self._hellos:
            raise PeerError(frm, "sent an unexpected PSI hello")
        if msg.agreed != self.agreed:
            diff = sorted(
                k
                for k in set(msg.agreed) | set(self.agreed)
                if msg.agreed.get(k) != self.agreed.get(k)
            )
            raise ConfigError(
                f"party {frm!r} runs PSI with different settings for {diff}: "
                f"{ {k: msg.agreed.get(k) for k in diff} } vs leader {self.party!r}'s "
                f"{ {k: self.agreed.get(k) for k in diff} }; use the same options on every party"
            )
        self._hellos[frm] = msg
        self._theirs[frm] = np.empty((msg.n_items, COMPARE_BYTES), dtype=np.uint8)

    def welcome(self) -> Welcome:
        """Step 2: the welcome for every follower (after all hellos); fixes the salt."""
        missing = [f for f in self.followers if f not in self._hellos]
        if missing:
            raise ProtocolError(f"{self.party}: no PSI hello yet from {missing}")
        nonces = (self._nonce, *(self._hellos[f].nonce for f in self.followers))
        msg = Welcome(nonces, self.n)
        self._salt = msg.salt()
        return msg

    def n_of(self, follower: str) -> int:
        """Set size declared by ``follower``."""
        return self._hellos[follower].n_items

    def follower_points_left(self, follower: str) -> int:
        """Singly-masked points still expected from ``follower``."""
        return self.n_of(follower) - self._got_theirs[follower]

    def answers_left(self, follower: str) -> int:
        """Doubly-masked answers (to our points) still expected from ``follower``."""
        return self.n - self._got_ours[follower]

    def on_follower_points(self, frm: str, chunk: Points) -> None:
        """Step 4: mask a chunk of ``frm``'s points with our key and keep the result."""
        if chunk.rows > self.follower_points_left(frm):
            raise PeerError(frm, "sent more PSI points than its declared set size")
        got = self._got_theirs[frm]
        self._theirs[frm][got : got + chunk.rows] = self.mask_peer(frm, chunk)
        self._got_theirs[frm] = got + chunk.rows

    def on_answer(self, frm: str, chunk: Points) -> None:
        """Step 4: keep a chunk of ``frm``'s doubly-masked answers to our points."""
        if chunk.rows > self.answers_left(frm):
            raise PeerError(frm, "sent more PSI answers than the points it was sent")
        got = self._got_ours[frm]
        self._ours[frm][got : got + chunk.rows] = chunk.data
        self._got_ours[frm] = got + chunk.rows

    def finish(self) -> tuple[np.ndarray[Any, Any], dict[str, Result]]:
        """Step 5: own intersection rows in canonical order, and each follower's result.

        In receiver-only mode the result dict is empty (nothing is sent back).
        """
        for f in self.followers:
            if self.follower_points_left(f) or self.answers_left(f):
                raise ProtocolError(f"{self.party}: PSI with {f!r} is not complete")
        theirs, ours = self._theirs, self._ours
        in_all = np.ones(self.n, dtype=bool)
        their_hits: dict[str, np.ndarray[Any, Any]] = {}
        for f in self.followers:
            mine, their_hits[f] = matching.match(ours[f], theirs[f])
            in_all &= mine
        results: dict[str, Result] = {}
        if not self.receiver_only:
            for f in self.followers:
                hits = (
                    their_hits[f]  # with one follower, its hits are the intersection
                    if len(self.followers) == 1
                    else matching.isin(theirs[f], ours[f][in_all])
                )
                results[f] = Result(np.flatnonzero(hits).astype(np.uint64))
        self._theirs, self._ours = {}, {}
        return self.rows_in_order(np.flatnonzero(in_all)), results
