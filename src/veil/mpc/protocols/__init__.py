"""MPC protocols: one folder each (``ref``, ``semi2k``, ``aby3``), chosen through the registry."""
