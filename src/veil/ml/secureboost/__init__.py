"""Vertical SecureBoost: gradient-boosted trees across a label holder and feature holders.

* :mod:`.binning` — quantile bins at each owner; :mod:`.tree` — party-free gain/leaf math;
* :mod:`.objective` — logistic vs squared error (standardised target) at the label holder;
* :mod:`.protocol` — training roles over a link (threat model and leakage there);
* :mod:`.predict` — joint prediction; :mod:`.model` — :class:`SecureBoost`, the user API.

See ``docs/secureboost.md``.
"""

from veil.ml.secureboost.model import SecureBoost
from veil.ml.secureboost.params import BoostParams

__all__ = ["BoostParams", "SecureBoost"]
