"""Models trained across parties: secret-shared logistic and ridge regression, SecureBoost."""

from veil.ml.secureboost import SecureBoost
from veil.ml.sslr import SSLogisticRegression

__all__ = ["SSLogisticRegression", "SecureBoost"]
