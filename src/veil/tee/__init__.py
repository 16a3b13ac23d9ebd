"""Trusted execution: evidence → verifier → claims → fail-closed appraisal → attested key.

- :func:`verify_evidence` / :func:`attest`: Intel SGX and TDX (DCAP, via ``dcap-qvl``), AMD
  SEV-SNP (VCEK/ASK/ARK), AWS Nitro (COSE_Sign1); pure functions of the evidence, the
  collateral, the pinned :class:`TrustAnchors` and an injected clock.
- :class:`AppraisalPolicy` / :func:`appraise`: what a data owner accepts; refusals raise
  :class:`AttestationError` with a :class:`Reason`.
- :func:`report_data` / :func:`bind_key`: bind evidence to a session, a nonce, an enclave key and
  a program; :func:`seal` / :class:`EnclaveInbox`: encrypt inputs to the attested key;
  :func:`seal_result` / :func:`open_result`: results back to one recipient, authenticated.
- :class:`ProgramBundle`: program identity from source, dependency lock and veil version.
- :class:`SimRoot`, :mod:`veil.tee.sim_runtime`: the simulated enclave (a local subprocess; as
  trusted as a third party; refused unless the policy sets ``allow_simulated``).

Optional dependencies (``pip install 'veil[tee]'``) are imported only when a verifier needs them.
"""

from veil.tee.anchors import TrustAnchors
from veil.tee.binding import AttestedKey, bind_key, new_nonce, report_data
from veil.tee.channel import EnclaveInbox, open_result, raw_public_key, seal, seal_result
from veil.tee.claims import Claims, Platform
from veil.tee.errors import AttestationError, ChannelError, Reason
from veil.tee.policy import AppraisalPolicy, Verdict, appraise
from veil.tee.program import ProgramBundle
from veil.tee.sim import SimRoot, expected_sim_measurement
from veil.tee.verify import attest, verify_evidence

__all__ = [
    "AppraisalPolicy",
    "AttestationError",
    "AttestedKey",
    "ChannelError",
    "Claims",
    "EnclaveInbox",
    "Platform",
    "ProgramBundle",
    "Reason",
    "SimRoot",
    "TrustAnchors",
    "Verdict",
    "appraise",
    "attest",
    "bind_key",
    "expected_sim_measurement",
    "new_nonce",
    "open_result",
    "raw_public_key",
    "report_data",
    "seal",
    "seal_result",
    "verify_evidence",
]
