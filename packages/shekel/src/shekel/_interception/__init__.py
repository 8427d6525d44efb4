"""Interception of LLM calls at the HTTP layer: adapters per wire protocol, the httpx patch,
streams and the per-call lifecycle. Loaded as a plugin, never at ``import shekel``."""

from ._adapter import PathInfo, ProtocolAdapter, RequestInfo, StreamTally
from ._call import UsageMissingWarning
from ._httpx_patch import install, uninstall
from ._routing import UncountedCallWarning

__all__ = [
    "PathInfo",
    "ProtocolAdapter",
    "RequestInfo",
    "StreamTally",
    "UncountedCallWarning",
    "UsageMissingWarning",
    "install",
    "uninstall",
]
