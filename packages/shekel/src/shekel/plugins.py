"""For plugin and adapter authors: shekel's pluggy hooks and the interception contract.

A plugin is a module or object with ``@hookimpl`` functions named after the hooks in
``shekel._hookspecs`` (each documented there: when it is called, what it may return),
registered through the ``shekel`` entry-point group or with ``plugin_manager().register()``.
``ProtocolAdapter`` teaches the interceptor another wire protocol (returned from the
``shekel_protocol_adapters`` hook); ``CallRoute`` is what ``shekel_route_call`` answers;
``ModelPrice`` what ``shekel_model_price`` answers. Framework integrations build on
``shekel.integration`` instead.
"""

from __future__ import annotations

from ._hookspecs import CallRoute
from ._interception import PathInfo, ProtocolAdapter, RequestInfo, StreamTally
from ._plugins import hookimpl, plugin_manager
from ._pricing import ModelPrice, TokenUsage

__all__ = [
    "CallRoute",
    "ModelPrice",
    "PathInfo",
    "ProtocolAdapter",
    "RequestInfo",
    "StreamTally",
    "TokenUsage",
    "hookimpl",
    "plugin_manager",
]
