"""Declared cost of a SecAgg+ round for one client: the bytes it sends and receives.

:func:`client_bytes` encodes placeholder messages of exactly the shapes a round without
dropouts uses (same names, key sizes, share sizes and vector length), so it is the exact wire
size a link must count; the tests compare it with the link's counters. In closed form, for a
client with ``k`` neighbours and a vector of ``d`` entries of ``b`` bytes:

* sent: ``b * d + k * (~250 + 2 * name)`` — the masked vector plus one sealed pair of Shamir
  shares per neighbour, plus ``(k + 1) * (~95 + name)`` of unmasking shares;
* received: ``k * (~330 + 3 * name)`` — neighbours' keys, the sealed shares addressed to it and
  the survivor list of its group — plus the final notice (``n`` names; ``8 * d`` more bytes when
  the sum is broadcast).

Four round trips. The ``k``-dependent part is what the sparse graph keeps at ``O(log n)``.
"""

from __future__ import annotations

import numpy as np

from veil.core.wire import encode_value
from veil.fl.secagg.client import SHARE_LEN
from veil.fl.secagg.config import RoundPlan
from veil.fl.secagg.masks import KEY_BYTES, NONCE_BYTES, TAG_BYTES
from veil.fl.secagg.messages import (
    AdvertiseKeys,
    EncryptedShares,
    ForwardedShares,
    KeyDirectory,
    MaskedInput,
    Message,
    RoundOutcome,
    UnmaskRequest,
    UnmaskResponse,
    encode_message,
)

#: Messages each way per round (keys, shares, masked input / unmask request, unmask / outcome).
ROUND_TRIPS = 4


def sealed_len(sender: str, recipient: str) -> int:
    """Bytes of one sealed pair of shares from ``sender`` to ``recipient``."""
    share = np.zeros(SHARE_LEN, dtype=np.uint64)
    body = encode_value({"from": sender, "to": recipient, "seed": share, "key": share})
    return NONCE_BYTES + len(body) + TAG_BYTES


def client_bytes(
    plan: RoundPlan, client: str, dim: int, *, weighted: bool = False, broadcast: bool = False
) -> tuple[int, int]:
    """(bytes sent, bytes received) by ``client`` in a round where nobody drops out, for float
    vectors of length ``dim``."""
    dim += int(weighted)  # the weight travels as one more ring element
    key = bytes(KEY_BYTES)
    nbrs = plan.neighbours[client]
    ring = plan.fixed_point.dtype
    up: list[Message] = [
        AdvertiseKeys(key, key, dim),
        EncryptedShares({j: bytes(sealed_len(client, j)) for j in nbrs}, bytes(32)),
        MaskedInput(np.zeros(dim, dtype=ring)),
        UnmaskResponse({j: np.zeros(SHARE_LEN, dtype=np.uint64) for j in plan.group(client)}, {}),
    ]
    total = np.zeros(dim - int(weighted), dtype=np.float64) if broadcast else None
    down: list[Message] = [
        KeyDirectory(dim, {j: (key, key) for j in nbrs}),
        ForwardedShares({j: bytes(sealed_len(j, client)) for j in nbrs}),
        UnmaskRequest(plan.group(client), ()),
        RoundOutcome(plan.clients, total),
    ]
    return sum(len(encode_message(m)) for m in up), sum(len(encode_message(m)) for m in down)
