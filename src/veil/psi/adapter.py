"""Run the ECDH-PSI state machines (:mod:`veil.psi.ecdh`) over a :class:`~veil.transport.base.Link`.

Every message key starts with the caller's ``key_prefix`` (the runtime makes it unique per
operation), followed by ``/psi/<message>``. Control messages travel as bytes, points as
``uint8`` arrays of shape ``(k, 32)`` or ``(k, 16)`` in chunks of ``chunk_rows``.

Messages, for a leader with set size ``n_L`` and a follower with ``n_F`` (``c = chunk_rows``)::

    F → L  hello    1 message, ~150 B
    L → F  welcome  1 message, ~40 + 34·N B
    L → F  points   ceil(n_L / c) arrays, 32·n_L B in all
    F → L  points   ceil(n_F / c) arrays, 32·n_F B
    F → L  answers  ceil(n_L / c) arrays, 16·n_L B
    L → F  result   1 array, 8·|I| B (not in receiver-only mode)

(:func:`declared_messages` returns exactly this list; the tests compare it with the link.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veil.errors import ConfigError
from veil.psi.curve import POINT_BYTES
from veil.psi.ecdh import Follower, Leader
from veil.psi.ids import IdDigests, digest_ids
from veil.psi.messages import Hello, Points, Result, Welcome
from veil.psi.options import COMPARE_BYTES, PsiOptions
from veil.psi.parallel import Masker
from veil.transport.base import Link


@dataclass(frozen=True)
class PsiOutcome:
    """What one party learned.

    Attributes
    ----------
    rows:
        This party's row indices (into its input) of the intersection in the common order, or
        ``None`` if it learns nothing (receiver-only mode, not the leader).
    backend:
        The X25519 implementation this party used.
    worker_peak_rss_mb:
        Largest peak RSS of its worker processes (MB; 0 if none ran or unknown).
    """

    rows: np.ndarray[Any, Any] | None
    backend: str = ""
    worker_peak_rss_mb: float = 0.0

    @property
    def n_intersection(self) -> int | None:
        """Size of the intersection, if learned."""
        return None if self.rows is None else int(self.rows.size)


def check_parties(link: Link, party: str, parties: Sequence[str]) -> tuple[str, ...]:
    """Validate the PSI party list against the link; the first party is the leader."""
    ps = tuple(parties)
    if party != link.party:
        raise ConfigError(f"PSI called as {party!r} on the link of {link.party!r}")
    if len(ps) < 2 or len(set(ps)) != len(ps):
        raise ConfigError(f"PSI needs at least two distinct parties, got {list(ps)}")
    if party not in ps:
        raise ConfigError(f"party {party!r} is not among the PSI parties {list(ps)}")
    unknown = [p for p in ps if p not in link.parties]
    if unknown:
        raise ConfigError(f"PSI parties {unknown} are not in the cluster {list(link.parties)}")
    return ps


def _keys(prefix: str) -> dict[str, str]:
    return {m: f"{prefix}/psi/{m}" for m in ("hello", "welcome", "points", "answers", "result")}


def _run_leader(
    link: Link, k: dict[str, str], sm: Leader, timeout: float | None
) -> np.ndarray[Any, Any]:
    for f in sm.followers:
        sm.on_hello(f, Hello.decode(link.recv_bytes(f, k["hello"], timeout), f))
    welcome = sm.welcome().encode()
    for f in sm.followers:
        link.send_bytes(f, k["welcome"], welcome)
    # Interleaved: send one own chunk, mask one chunk of each follower, take the answers to our
    # chunks sent before this one. Both sides compute at once and at most about two chunks per
    # direction wait in the link, so memory stays bounded however large the sets.
    own = iter(sm.own_points())
    unsent = sm.n
    while True:
        chunk = next(own, None)
        if chunk is not None:
            for f in sm.followers:
                link.send_array(f, k["points"], chunk.data)
            unsent -= chunk.rows
        lag = 0 if chunk is None else chunk.rows  # the answer to the chunk just sent can wait
        busy = chunk is not None
        for f in sm.followers:
            if (left := sm.follower_points_left(f)) > 0:
                arr = link.recv_array(f, k["points"], timeout)
                sm.on_follower_points(f, Points.check(arr, POINT_BYTES, f, left))
                busy = True
            if (left := sm.answers_left(f)) > unsent + lag:
                arr = link.recv_array(f, k["answers"], timeout)
                sm.on_answer(f, Points.check(arr, COMPARE_BYTES, f, left))
                busy = True
        if not busy:
            break
    rows, results = sm.finish()
    for f, res in results.items():
        link.send_array(f, k["result"], res.positions)
    return rows


def _run_follower(
    link: Link, k: dict[str, str], sm: Follower, timeout: float | None
) -> np.ndarray[Any, Any] | None:
    link.send_bytes(sm.leader, k["hello"], sm.hello().encode())
    sm.on_welcome(Welcome.decode(link.recv_bytes(sm.leader, k["welcome"], timeout), sm.leader))
    own = iter(sm.own_points())
    while True:  # one own chunk, then one answer (see _run_leader)
        chunk = next(own, None)
        if chunk is not None:
            link.send_array(sm.leader, k["points"], chunk.data)
        if (left := sm.leader_points_left()) > 0:
            arr = link.recv_array(sm.leader, k["points"], timeout)
            reply = sm.on_leader_points(Points.check(arr, POINT_BYTES, sm.leader, left))
            link.send_array(sm.leader, k["answers"], reply.data)
        elif chunk is None:
            break
    if sm.receiver_only:
        return None
    arr = link.recv_array(sm.leader, k["result"], timeout)
    return sm.on_result(Result.check(arr, sm.n, sm.leader))


def run_psi(
    link: Link,
    key_prefix: str,
    party: str,
    parties: Sequence[str],
    ids: IdDigests,
    options: PsiOptions,
) -> PsiOutcome:
    """Run ECDH-PSI for ``party`` on checked id digests; see :mod:`veil.psi.ecdh` for leakage.

    Returns the intersection's input rows (``ids.rows`` mapping applied) in the common order.
    """
    ps = check_parties(link, party, parties)
    agreed = options.agreed(ps)
    k = _keys(key_prefix)
    with Masker(options.n_workers(), options.parallel_min_rows, options.backend) as masker:
        if party == ps[0]:
            leader = Leader(party, ps[1:], ids.digests, agreed, masker, options.chunk_rows)
            rows: np.ndarray[Any, Any] | None = _run_leader(link, k, leader, options.timeout)
        else:
            follower = Follower(party, ps[0], ids.digests, agreed, masker, options.chunk_rows)
            rows = _run_follower(link, k, follower, options.timeout)
    return PsiOutcome(
        None if rows is None else ids.rows[rows], masker.backend_name, masker.worker_peak_rss_mb
    )


def intersect_ids(
    link: Link,
    key_prefix: str,
    party: str,
    parties: Sequence[str],
    ids: Sequence[str] | np.ndarray[Any, Any],
    options: PsiOptions | None = None,
) -> np.ndarray[Any, Any]:
    """Private set intersection of in-memory ids; every party calls it with its own ids.

    Parameters
    ----------
    link:
        This party's link; ``link.party`` must be ``party``.
    key_prefix:
        Prefix of every message key (unique per operation, the same on every party).
    party, parties:
        This party and all PSI parties; ``parties[0]`` is the leader (the receiver).
    ids:
        This party's ids (``str``), one per row.
    options:
        Normalisation and protocol options; must agree across parties.

    Returns
    -------
    numpy.ndarray
        ``int64`` indices into ``ids`` of the rows whose ids every party holds, in the common
        order (the same order at every party). In receiver-only mode the non-leaders learn
        nothing and get an empty array (use :func:`run_psi` to tell the cases apart).

    Raises
    ------
    DataError
        Empty input, empty/missing ids, or duplicates (unless ``options.dedupe``).
    ConfigError
        Bad party list or options that differ between parties.
    PeerError
        A peer failed, timed out, or sent a malformed message.
    """
    opts = options or PsiOptions()
    digests = digest_ids(ids, party, opts)
    rows = run_psi(link, key_prefix, party, parties, digests, opts).rows
    return rows if rows is not None else np.empty(0, dtype=np.int64)


def declared_messages(
    sizes: Sequence[int], n_intersection: int, options: PsiOptions
) -> list[tuple[int, int, str, int]]:
    """The point/answer/result messages of one run: ``(from, to, kind, payload bytes)``.

    ``sizes`` are the (deduplicated) set sizes in party order (index 0 is the leader); parties
    are given by index. Hello and welcome (small msgpack control messages) are not listed.
    """
    c = options.chunk_rows
    out: list[tuple[int, int, str, int]] = []

    def chunks(n: int, width: int) -> list[int]:
        return [width * min(c, n - s) for s in range(0, n, c)]

    n_l = sizes[0]
    for i in range(1, len(sizes)):
        out += [(0, i, "points", b) for b in chunks(n_l, POINT_BYTES)]
        out += [(i, 0, "points", b) for b in chunks(sizes[i], POINT_BYTES)]
        out += [(i, 0, "answers", b) for b in chunks(n_l, COMPARE_BYTES)]
        if not options.receiver_only:
            out.append((0, i, "result", 8 * n_intersection))
    return out
