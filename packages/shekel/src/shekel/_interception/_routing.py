"""Which adapter reads a request, from its host and path, whatever client sent it.

The adapters come from the ``shekel_protocol_adapters`` hook and match on the URL path. The host
only chooses the provider whose prices apply to a protocol many providers speak (OpenAI's chat
completions: Groq, DeepSeek, Mistral, OpenRouter, Ollama's ``/v1``...), and tells a request
shekel cannot read from one that is none of its business: a POST to a known LLM API that no
adapter understands warns once (:class:`UncountedCallWarning`) instead of passing unseen.

Answers are cached per host and path, so a call pays one dictionary look-up.
"""

from __future__ import annotations

import copy
import re
import threading
import warnings
from typing import Final

from .._plugins import CHANGE_LISTENERS, plugin_manager
from ._adapter import ProtocolAdapter


class UncountedCallWarning(UserWarning):
    """A request went to a known LLM API that shekel cannot read: its cost is not in the budget."""


LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
"""Hosts whose port is part of the route (two local servers may speak one protocol)."""

OLLAMA_PORT: Final = 11434

# Hosts of LLM APIs whose ``api_pattern`` in genai-prices is broader than the API itself (every
# googleapis.com host, token refreshes included), given here by name instead.
_GOOGLE_LLM_HOSTS: Final = re.compile(
    r"(?:generativelanguage|(?:[a-z0-9-]+-)?aiplatform)\.googleapis\.com$"
)
_BROAD_PATTERNS: Final = frozenset({"google"})
# Known LLM API hosts genai-prices has no pattern for.
_MORE_LLM_HOSTS: Final = re.compile(
    r"(?:api\.replicate\.com|api-inference\.huggingface\.co|router\.huggingface\.co"
    r"|api\.ai21\.com|api\.writer\.com|api\.anyscale\.com|api\.endpoints\.anyscale\.com)$"
)
# Paths that cost money on any host, whatever the host (an OpenAI-compatible proxy).
_PAID_PATHS: Final = (
    "/images/generations",
    "/images/edits",
    "/images/variations",
    "/audio/speech",
    "/audio/transcriptions",
    "/audio/translations",
    "/v1/completions",
    "/v1/complete",
    "/rerank",
    ":predict",
    ":generateImages",
    ":generateVideos",
)
# Paths of known hosts that cost nothing and are no LLM call (shekel need not count them).
_FREE_PATHS: Final = ("/count_tokens", ":countTokens", "/moderations", "/tokenize", "/detokenize")

_lock = threading.Lock()
_adapters: list[ProtocolAdapter] = []
_by_path: dict[str, ProtocolAdapter | None] = {}
_generation = -1
ROUTES: dict[tuple[str, str], ProtocolAdapter | str | None] = {}
"""(host, path) -> the adapter, ``None`` (no LLM call), or why an LLM call cannot be counted."""
_MAX_ROUTES: Final = 4096
_warned: set[str] = set()
_provider_patterns: list[tuple[str, re.Pattern[str]]] | None = None


def adapter_for(path: str) -> ProtocolAdapter | None:
    """The adapter for a request path, whatever the host (rebuilt when plugins change)."""
    global _generation
    manager = plugin_manager()
    generation = manager.generation
    if _generation != generation:
        adapters = [a for group in manager.hook.shekel_protocol_adapters() for a in group]
        with _lock:
            _adapters[:] = adapters
            _by_path.clear()
            ROUTES.clear()
            _generation = generation
    try:
        return _by_path[path]
    except KeyError:
        found = next((a for a in _adapters if a.matches(path)), None)
        with _lock:  # not an answer from adapters that a plugin change replaced meanwhile
            if len(_by_path) < _MAX_ROUTES and _generation == generation:
                _by_path[path] = found
        return found


def route(host: str, path: str) -> ProtocolAdapter | str | None:
    """The adapter for a POST to ``host`` (with ``:port`` for local hosts) and ``path``; else
    ``None``, or a message when the request is an LLM call shekel cannot count."""
    try:
        return ROUTES[host, path]
    except KeyError:
        pass
    generation = _generation
    adapter = adapter_for(path)
    found: ProtocolAdapter | str | None = adapter
    if adapter is None:
        found = _uncounted(host, path)
    elif adapter.priced_by_host:
        provider = provider_of(host, path)
        if provider is not None and provider != adapter.provider:
            found = _variant(adapter, provider)
    with _lock:
        if len(ROUTES) < _MAX_ROUTES and generation == _generation:
            ROUTES[host, path] = found
    return found


_variants: dict[tuple[int, str], ProtocolAdapter] = {}


def _variant(adapter: ProtocolAdapter, provider: str) -> ProtocolAdapter:
    """``adapter`` pricing its calls as ``provider``'s (one copy per adapter and provider)."""
    key = (id(adapter), provider)
    found = _variants.get(key)
    if found is None or found.path_suffixes is not adapter.path_suffixes:
        found = copy.copy(adapter)
        found.provider = provider
        _variants[key] = found
    return found


def provider_of(host: str, path: str) -> str | None:
    """The genai-prices provider id of the API at ``host`` (``None``: not a known provider's)."""
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    if name in LOCAL_HOSTS:
        return "ollama" if port == str(OLLAMA_PORT) else None
    url = f"https://{host}{path}"
    for provider, pattern in _patterns():
        if pattern.match(url):
            return provider
    return None


def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    global _provider_patterns
    if _provider_patterns is None:
        from genai_prices import data  # imported when the first budget was entered

        found: list[tuple[str, re.Pattern[str]]] = []
        for provider in data.providers:
            pattern = getattr(provider, "api_pattern", None)
            if isinstance(pattern, str) and provider.id not in _BROAD_PATTERNS:
                try:
                    found.append((provider.id, re.compile(pattern)))
                except re.error:
                    continue
        found.append(("google", re.compile(r"https://" + _GOOGLE_LLM_HOSTS.pattern)))
        _provider_patterns = found
    return _provider_patterns


def _uncounted(host: str, path: str) -> str | None:
    """Why a POST no adapter reads is an LLM call shekel cannot count, or ``None``."""
    if path.endswith(_FREE_PATHS):
        return None
    name = host.rpartition(":")[0] if host.count(":") == 1 else host
    known = (
        _GOOGLE_LLM_HOSTS.search(name) is not None
        or _MORE_LLM_HOSTS.search(name) is not None
        or (name not in LOCAL_HOSTS and provider_of(host, path) is not None)
    )
    if not known and not path.endswith(_PAID_PATHS):
        return None
    where = "a known LLM API" if known else "an LLM API path"
    return (
        f"shekel cannot read the POST to {host}{path} ({where}): its cost and tokens are not "
        "in the budget, and the budget cannot refuse it. If it is a paid call, record it with "
        "budget.record(...), or teach shekel its protocol with a plugin "
        "(shekel_protocol_adapters)"
    )


def warn_uncounted(message: str) -> None:
    """Warn once per host and path that a call went by uncounted."""
    if message in _warned:
        return
    with _lock:
        if len(_warned) >= _MAX_ROUTES or message in _warned:
            return
        _warned.add(message)
    warnings.warn(message, UncountedCallWarning, stacklevel=4)


def forget() -> None:
    """A plugin came or went: its adapters may route paths differently."""
    global _generation
    with _lock:
        _by_path.clear()
        ROUTES.clear()
        _generation = -1


CHANGE_LISTENERS.append(forget)
