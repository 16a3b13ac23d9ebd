"""Sources of correlated randomness (Beaver triples, truncation pairs, masked bits)."""
