"""Nonlinear functions built on the protocols' kernels (comparison, exp/log, reciprocal, ...)."""
