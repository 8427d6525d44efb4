"""Fixtures of the tests in this folder."""

from fake_support import claude, oai

__all__ = ["claude", "oai"]
