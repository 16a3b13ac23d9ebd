"""Models trained across parties: secret-shared logistic regression (and later GLM, trees)."""

from veil.ml.sslr import SSLogisticRegression

__all__ = ["SSLogisticRegression"]
