"""ref: the plaintext oracle with the protocols' API (no privacy)."""
