"""semi2k: N-party additive sharing over Z_2^64 with a trusted dealer (see ``protocol``)."""
