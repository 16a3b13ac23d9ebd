"""Secure multi-party computation: secret tensors, protocols (ref, semi2k, aby3) and functions.

Use through a device (``mpc = ctx.mpc("aby3", parties=(a, b, c))``); the functions here take
and return :class:`SecretTensor` values and are collective (every party calls them in the same
order). Nothing is revealed except by ``ctx.reveal``.
"""

from veil.mpc.engine import Engine
from veil.mpc.ops.activation import sigmoid, softmax
from veil.mpc.ops.compare import (
    abs,
    argmax,
    equal,
    greater,
    less,
    max,
    maximum,
    minimum,
    relu,
    sign,
    where,
)
from veil.mpc.ops.exp import exp, log
from veil.mpc.ops.reciprocal import div, reciprocal, rsqrt, sqrt
from veil.mpc.protocols.registry import ProtocolKind
from veil.mpc.tensor import SecretTensor, concatenate, stack


def sum(x: SecretTensor, axis: int | None = None) -> SecretTensor:
    """Sum along ``axis`` (local)."""
    return x.sum(axis=axis)


def mean(x: SecretTensor, axis: int | None = None) -> SecretTensor:
    """Mean along ``axis``."""
    return x.mean(axis=axis)


def matmul(a: SecretTensor, b: SecretTensor) -> SecretTensor:
    """``a @ b``."""
    return a @ b


__all__ = [
    "Engine",
    "ProtocolKind",
    "SecretTensor",
    "abs",
    "argmax",
    "concatenate",
    "div",
    "equal",
    "exp",
    "greater",
    "less",
    "log",
    "matmul",
    "max",
    "maximum",
    "mean",
    "minimum",
    "reciprocal",
    "relu",
    "rsqrt",
    "sigmoid",
    "sign",
    "softmax",
    "sqrt",
    "stack",
    "sum",
    "where",
]
