"""Process entry point of one party (``python -m veil.runtime.worker``), used by ``simulate``.

Kept apart from :mod:`veil.runtime.node` so that running it with ``-m`` does not import the
module twice.
"""

from veil.runtime.node import main

if __name__ == "__main__":
    raise SystemExit(main())
