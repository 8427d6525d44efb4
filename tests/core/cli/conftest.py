"""Fixtures of the tests in this folder."""

from cli_support import clean_env

__all__ = ["clean_env"]
