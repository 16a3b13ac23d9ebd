"""The showcase jobs, each a CLI command and a ``veil demo``."""
