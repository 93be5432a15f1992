"""Interaction Hub: every customer contact as an immutable event, one timeline per customer."""

__version__ = "0.1.0"
