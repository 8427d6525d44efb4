"""Interception of LLM calls at the HTTP layer: adapters per wire protocol, the httpx patch,
streams and the per-call lifecycle. Loaded as a plugin, never at ``import shekel``."""

from ._adapter import ProtocolAdapter, RequestInfo, StreamTally
from ._call import UsageMissingWarning
from ._httpx_patch import install, uninstall

__all__ = [
    "ProtocolAdapter",
    "RequestInfo",
    "StreamTally",
    "UsageMissingWarning",
    "install",
    "uninstall",
]
