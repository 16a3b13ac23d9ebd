"""Private set intersection: ECDH-PSI over X25519, 2 or N parties, files or in-memory ids.

Start with :func:`align_file` (files) or :func:`intersect_ids` (in memory); the protocol, its
threat model and what each party learns are in :mod:`veil.psi.ecdh` and ``docs/psi.md``.
"""

from veil.psi.adapter import PsiOutcome, intersect_ids, run_psi
from veil.psi.align import align_file
from veil.psi.options import Backend, PsiOptions, PsiResult

__all__ = [
    "Backend",
    "PsiOptions",
    "PsiOutcome",
    "PsiResult",
    "align_file",
    "intersect_ids",
    "run_psi",
]
