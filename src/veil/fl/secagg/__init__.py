"""Secure aggregation: SecAgg+ (Bell et al., CCS 2020) as sans-I/O state machines.

``n`` clients each hold a float vector; an aggregator (one party of the cluster) learns the sum
of the vectors of the clients that *survived* the round, and nothing else about any single
vector. Clients may vanish at any phase; the survivors' sum is still exact (in fixed point).

Protocol (per round; :mod:`.client`, :mod:`.aggregator`, :mod:`.messages`):

0. keys — every client sends two X25519 public keys (share encryption, mask agreement); the
   aggregator forwards each client the keys of its neighbours in a graph derived from a public
   seed (:mod:`.graph`: complete, or a random Harary graph of degree O(log n)).
1. shares — each client Shamir-shares (t of its group = neighbours + itself, :mod:`.shamir`)
   a fresh self-mask seed ``b_i`` and its mask private key, and sends each neighbour's shares
   sealed with AES-256-GCM (key from X25519 + HKDF, associated data = round, sender,
   recipient), plus a hash commitment to ``b_i``.
2. masked input — ``y_i = enc(w_i * clip(x_i)) + PRG(b_i) + sum_j ±PRG(s_ij) mod 2^k``
   (:mod:`.encoding`, :mod:`.masks`: AES-CTR expansion of X25519-agreed seeds).
3. unmasking — the aggregator names survivors and dropped clients; each survivor returns its
   shares of survivors' ``b_j`` and of dropped clients' mask keys; the aggregator rebuilds them
   (checked against the commitments / public keys), removes the masks and decodes.

Threat model (what is claimed, and what the tests show):

* Clients are semi-honest (follow the protocol; their inputs are not verified beyond shape,
  dtype, size, and their own NaN/Inf and clipping checks). A malicious client can still bias
  the sum within its clipping bound: there are no range proofs.
* The aggregator is semi-honest *and may lie about who dropped*, e.g. claim that a live client
  dropped after receiving its masked input, or tell different clients different stories. Honest
  clients answer one unmasking request per round, never reveal both kinds of share of one
  client, and refuse a request that lists themselves as dropped, lists a client as both, or
  leaves fewer than ``t`` of their group alive. With ``c`` clients of a group of ``g`` colluding
  with the aggregator, the threshold must exceed ``(g + c) / 2`` (enforced; ``colluders`` in
  :class:`SecAggConfig`, default 0): then the seed and the mask key of a live client can never
  both be rebuilt, since the honest "alive" and "dropped" answers come from disjoint sets. The
  tests play these attacks: false dropout and split view fail at ``g = 10, t = 6`` with ``c`` =
  0 or 1, and at ``c = 2`` (beyond the bound) the split view does unmask the victim — the test
  shows that too. By misreporting survivors a lying aggregator may still choose *which*
  survivors' sum it learns; no stronger claim is made (the malicious-model guarantees of
  Bonawitz et al. need signed consistency checks and a PKI, not implemented).
* The aggregator relays the public keys honestly: without a PKI binding keys to client
  identities, an actively malicious aggregator could substitute keys and impersonate clients;
  that is out of scope.
* Collusion with an aggregator that reports dropouts truthfully: it and up to ``t - 1`` clients
  of any share group learn nothing beyond the sum of the survivors' inputs (and which clients
  survived) — the SecAgg/SecAgg+ theorem; the tests check the flows it rests on (uniform
  ``t - 1`` shares, masks cancelling only in the full sum). With the sparse graph this holds
  with probability ``1 - 2^-sigma`` when at most a ``corrupt_rate`` fraction of clients is
  corrupted (:mod:`.graph`); with the complete graph, for any ``t - 1`` clients.
* Shares pass through the aggregator sealed: it can neither read nor alter them; a tampered
  share is detected and the recipient names its sender (AES-GCM authentication).
* If fewer than ``t`` holders remain for any client after the masked inputs, the round aborts
  (:class:`SecAggAborted`) before any share is requested: nothing is revealed. If holders vanish
  during the unmasking itself, the round fails with no sum; the shares already sent never
  include both the seed and the key of one client.
* Leaks by design: the set of survivors, the vector length, and message sizes and timing.

Entry points: :func:`secure_sum` (every party calls it over its link), :func:`run_aggregator`
(the full :class:`SecAggResult`), and :func:`veil.fl.secagg.inprocess.run_round` (all roles in
one process, for tests and benchmarks).
"""

from veil.fl.secagg.adapter import run_aggregator, run_client, secure_sum
from veil.fl.secagg.aggregator import SecAggAborted, SecAggAggregator, SecAggResult
from veil.fl.secagg.client import SecAggClient
from veil.fl.secagg.config import GraphKind, RoundPlan, SecAggConfig

__all__ = [
    "GraphKind",
    "RoundPlan",
    "SecAggAborted",
    "SecAggAggregator",
    "SecAggClient",
    "SecAggConfig",
    "SecAggResult",
    "run_aggregator",
    "run_client",
    "secure_sum",
]
