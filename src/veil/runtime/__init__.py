"""The SPMD runtime: per-party context, reveal policy, audit ledger, simulation and nodes."""
