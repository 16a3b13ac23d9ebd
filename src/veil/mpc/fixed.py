"""A secret matrix multiplied many times by fresh operands (SGD's ``X w`` and ``Xᵀ g``).

:class:`FixedMatrix` prepares a 2-D secret once (:meth:`Protocol.fix`) so that every later
product with a row selection of it costs only the other operand's traffic. In semi2k the
parties open ``X − A`` once for a dealer mask ``A`` and reuse ``A`` in every product's Beaver
triple ("matrix triple reuse", SecureML §4.2; SPU's Beaver cache): a step of mini-batch
logistic regression then opens ``|w|`` and ``|g|`` elements instead of ``2·|X_batch|``, and the
dealer draws ``b`` and ``r`` only. This is as secure as fresh triples: ``A`` masks ``X`` in one
opening only, and every product's other operand and result are masked by fresh uniform values.
Other protocols keep the shares and run ordinary products (aby3's replicated products need no
triple).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from veil.errors import DataError
from veil.mpc.protocols.base import Rows, matmul_shape, selected_shape
from veil.mpc.tensor import FXP, SecretTensor


class FixedMatrix:
    """A fixed-point secret matrix prepared for repeated products (collective, SPMD).

    Parameters
    ----------
    x:
        A 2-D secret tensor (integers are converted to fixed point).
    """

    def __init__(self, x: SecretTensor) -> None:
        if x.ndim != 2:
            raise DataError(f"FixedMatrix needs a 2-D secret, got shape {x.shape}")
        x = x.to_fxp()
        self.engine = x.engine
        self.shape = x.shape
        self._fixed = x.engine.protocol.fix(x.shares, x.shape)

    def _rows(self, rows: Any) -> Rows:
        n = self.shape[0]
        if rows is None:
            return slice(0, n)
        if isinstance(rows, slice):
            if rows.step not in (None, 1):
                raise DataError("FixedMatrix rows must be a contiguous slice or an index array")
            return slice(*rows.indices(n)[:2])
        idx = np.asarray(rows)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise DataError("FixedMatrix rows must be a 1-D integer index array or a slice")
        if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise DataError(f"FixedMatrix row index out of range for {n} rows")
        return idx.astype(np.intp)

    def matmul(
        self, y: SecretTensor, rows: Any = None, *, transpose: bool = False, extra_bits: int = 0
    ) -> SecretTensor:
        """``x[rows] @ y`` (``x[rows].T @ y`` with ``transpose``), divided by ``2^extra_bits``.

        The division is folded into the product's truncation (exact floor, ±1 in the last
        place), so a mean over a power-of-two batch costs nothing extra.
        """
        if y.engine is not self.engine:
            raise DataError("operands live on different MPC devices")
        if extra_bits < 0:
            raise DataError("extra_bits must be >= 0")
        y = y.to_fxp()
        sel = self._rows(rows)
        sx = selected_shape(self.shape, sel, transpose)
        if y.ndim not in (1, 2) or y.shape[0] != sx[1]:
            raise DataError(f"matmul shape mismatch: {sx} @ {y.shape}")
        eng = self.engine
        bits = eng.fxp.frac_bits + extra_bits
        out = eng.protocol.fixed_matmul_trunc(self._fixed, sel, transpose, y.shares, y.shape, bits)
        return SecretTensor(eng, out, matmul_shape(sx, y.shape), FXP)


__all__ = ["FixedMatrix"]
