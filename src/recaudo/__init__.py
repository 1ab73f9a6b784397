"""Recaudo: an open-source collections hub."""

__version__ = "0.1.0"
