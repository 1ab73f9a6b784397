"""Use cases: one function per state change, each one transaction with its audit row."""
