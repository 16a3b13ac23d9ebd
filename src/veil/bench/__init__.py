"""Benchmarks behind ``veil bench NAME``: JSON lines in the format of DESIGN.md §6."""
