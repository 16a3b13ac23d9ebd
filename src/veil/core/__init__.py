"""Pure, party-free building blocks: ring math, fixed point, sharing, PRG, wire codecs."""
