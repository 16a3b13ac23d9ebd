"""Jobs the e2e tests run as separate processes (importable by path or module name)."""

import os
import signal
import sys
import time

import numpy as np

import veil


def example_job(ctx: veil.Context):
    alice, bob, carol = ctx.parties("alice", "bob", "carol")
    x = alice(np.arange)(10)
    y = x.to(bob)
    s = bob(np.sum)(y)
    return ctx.reveal(s, to=[alice, bob, carol])


def failing_job(ctx: veil.Context):
    alice, bob, carol = ctx.parties()
    if ctx.party == "carol":
        raise ValueError("carol's input is broken")
    return ctx.reveal(carol(lambda: 1)())


def killed_job(ctx: veil.Context, victim: str = "bob"):
    """The victim exchanges one message, then its process is killed mid-job (SIGKILL)."""
    parties = ctx.parties()
    v = ctx.parties(victim)[0]
    ctx.reveal(v(lambda: 1)())
    if ctx.party == victim:
        os.kill(os.getpid(), signal.SIGKILL)
    start = time.monotonic()
    try:
        return ctx.reveal(v(lambda: 2)(), to=parties)
    finally:
        ctx.ledger.append("waited", seconds=time.monotonic() - start)


def big_array_job(ctx: veil.Context, n: int = 10_000_000):
    alice, bob = ctx.parties("alice", "bob")
    x = alice(lambda: np.arange(n, dtype=np.float64))()
    y = x.to(bob)
    return ctx.reveal(bob(lambda v: float(v.sum()))(y), to=alice)


def weights_job(ctx: veil.Context):
    alice, bob = ctx.parties("alice", "bob")
    w = alice(lambda: np.zeros(3))()
    return ctx.reveal(w, to=bob, tag="model.weights")


def crashing_job(ctx: veil.Context):
    """bob writes its last words to stderr, then its process exits at once, leaving no result
    (as a segfault or an out-of-memory kill would)."""
    parties = ctx.parties()
    if ctx.party == "bob":
        print("bob: scratch disk full, giving up", file=sys.stderr, flush=True)
        os._exit(3)
    return ctx.reveal(ctx.parties("bob")[0](lambda: 1)(), to=parties)


def chatty_job(ctx: veil.Context):
    """Prints progress on stdout and a warning on stderr, then succeeds."""
    print(f"{ctx.party}: progress 1/1", flush=True)
    print(f"{ctx.party}: a warning on stderr", file=sys.stderr, flush=True)
    alice = ctx.parties()[0]
    return ctx.reveal(alice(lambda: 7)())
