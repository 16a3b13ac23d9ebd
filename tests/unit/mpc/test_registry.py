import pytest

from veil.errors import ConfigError
from veil.mpc.protocols.ref.protocol import Ref
from veil.mpc.protocols.registry import ProtocolKind, Registry, default_registry


def test_known_protocols_and_unknown_name() -> None:
    assert set(default_registry().kinds()) == {
        ProtocolKind.REF,
        ProtocolKind.SEMI2K,
        ProtocolKind.ABY3,
    }
    assert ProtocolKind.parse("aby3") is ProtocolKind.ABY3
    with pytest.raises(ConfigError, match="known protocols: ref, semi2k, aby3"):
        ProtocolKind.parse("cheetah")


def test_duplicate_and_unregistered() -> None:
    reg = Registry()
    reg.register(ProtocolKind.REF, Ref)
    with pytest.raises(ConfigError, match="twice"):
        reg.register(ProtocolKind.REF, Ref)
    with pytest.raises(ConfigError, match="not registered"):
        reg.create("aby3", None, ("a",), 18)  # type: ignore[arg-type]


def test_comm_refuses_mismatched_frames() -> None:
    import numpy as np

    from veil.errors import PeerError
    from veil.mpc.comm import Comm
    from veil.mpc.local import KeyCounter
    from veil.transport.memory import MemoryHub

    hub = MemoryHub(["a", "b"])
    ca = Comm(hub.link("a"), KeyCounter(), "t")
    cb = Comm(hub.link("b"), KeyCounter(), "t")
    ca.send("b", "k", np.zeros(3, np.uint64))
    with pytest.raises(PeerError, match="expected 4 uint64"):
        cb.recv("a", "k", (4,))
