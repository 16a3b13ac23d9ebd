"""Devices: virtual places a value can live on (MPC, HE, TEE)."""
