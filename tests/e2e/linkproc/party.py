"""One party of a link test, as its own process: builds a GrpcLink from the command line.

Modes
-----
exchange  send an array to every peer, receive one from every peer, check, close cleanly.
rounds    exchange small arrays with every peer in rounds until a peer fails.
answer    receive one array from ``--partner``, send it back doubled, close.
ask       send one array to ``--partner``, check the doubled answer, close; with ``--busy S``
          first wait for the streams, then compute in pure Python (holding the GIL) for S seconds.
serve     just listen for 30 s (an impostor that never fails on its own).
noclose   connect, then leave the process without closing the link (must not hang).
idle      connect, print READY, then do nothing for 60 s (to be killed or frozen by the test).

Output (stdout, one line each): ``READY``, ``DONE``, or ``PEERERROR <party> <unix time> <msg>``;
a ``ConfigError`` prints ``CONFIGERROR <msg>`` on stderr (exit 2). Log records of
``veil.transport`` go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from veil.errors import ConfigError, PeerError
from veil.transport.certs import TlsFiles
from veil.transport.grpc_link import GrpcLink, GrpcOptions


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _burn(seconds: float) -> None:
    """Compute in pure Python (the GIL held nearly all the time) for ``seconds``."""
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        for i in range(10_000):
            x = (x * 31 + i) % 1_000_003


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--party", required=True)
    ap.add_argument("--tls-dir", required=True, type=Path)
    ap.add_argument("--cert-of", help="use this party's cert/key instead of --party's")
    ap.add_argument("--addr", action="append", required=True, help="name=host:port")
    ap.add_argument(
        "--mode",
        choices=["exchange", "rounds", "answer", "ask", "serve", "noclose", "idle"],
        default="exchange",
    )
    ap.add_argument("--partner", default="")
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    ap.add_argument("--recv-timeout", type=float, default=20.0)
    ap.add_argument("--keepalive", type=float, default=GrpcOptions.keepalive_seconds)
    ap.add_argument("--keepalive-timeout", type=float, default=GrpcOptions.keepalive_timeout)
    ap.add_argument("--busy", type=float, default=0.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    addresses = {}
    for item in args.addr:
        name, hp = item.split("=", 1)
        host, port = hp.rsplit(":", 1)
        addresses[name] = (host, int(port))
    owner = args.cert_of or args.party
    tls = TlsFiles(
        args.tls_dir / "ca.pem", args.tls_dir / f"{owner}.pem", args.tls_dir / f"{owner}.key"
    )
    opts = GrpcOptions(
        connect_timeout=args.connect_timeout,
        recv_timeout=args.recv_timeout,
        retry_interval=0.1,
        keepalive_seconds=args.keepalive,
        keepalive_timeout=args.keepalive_timeout,
    )
    link: GrpcLink | None = None
    try:
        link = GrpcLink(args.party, addresses, tls, opts)
        if args.mode == "answer":
            x = link.recv_array(args.partner, "x")
            link.send_array(args.partner, "y", x * 2)
        elif args.mode == "noclose":
            link.wait_ready()
            _say("READY")
            return 0
        elif args.mode == "serve":
            _say("READY")
            time.sleep(30)
        elif args.mode == "idle":
            link.wait_ready()
            _say("READY")
            time.sleep(60)
        elif args.mode == "ask":
            if args.busy:
                link.wait_ready()
                _say("READY")
                _burn(args.busy)
            link.send_array(args.partner, "x", np.arange(1000))
            assert np.array_equal(link.recv_array(args.partner, "y"), 2 * np.arange(1000))
        else:
            link.wait_ready()
            _say("READY")
            rounds = 1 if args.mode == "exchange" else 10**9
            me = link.parties.index(args.party)
            for r in range(rounds):
                for p in link.peers:
                    link.send_array(p, f"r{r}", np.arange(10) + me)
                for p in link.peers:
                    got = link.recv_array(p, f"r{r}")
                    assert np.array_equal(got, np.arange(10) + link.parties.index(p)), got
                if args.mode == "rounds":
                    time.sleep(0.01)
        link.close()
        _say("DONE")
        return 0
    except ConfigError as exc:
        sys.stderr.write(f"CONFIGERROR {exc}\n")
        return 2
    except PeerError as exc:
        _say(f"PEERERROR {exc.party} {time.time():.3f} {exc}")
        if link is not None:
            link.abort(str(exc))
        return 4


if __name__ == "__main__":
    sys.exit(main())
