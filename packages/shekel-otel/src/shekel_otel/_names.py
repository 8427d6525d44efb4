"""Every name shekel-otel reports: instruments, attributes and span events.

GenAI names follow OpenTelemetry's semantic conventions for generative AI (development status:
``gen_ai.provider.name`` replaced ``gen_ai.system``). shekel's own are in the ``shekel.``
namespace, named in the same style. Attribute values are bounded: budget paths are the
budgets' dotted names (never their store keys, which carry random ids for unnamed budgets),
models and providers come from the price table's world, axes are four words.
"""

from __future__ import annotations

from typing import Final

METER_NAME: Final = "shekel_otel"
"""The instrumentation scope of every instrument (``meter_name`` in a View)."""

# -- instruments ---------------------------------------------------------------------------

TOKEN_USAGE: Final = "gen_ai.client.token.usage"
COST: Final = "shekel.cost"
TOOL_CALLS: Final = "shekel.tool.calls"
EXCEEDED: Final = "shekel.budget.exceeded"
WARNINGS: Final = "shekel.budget.warnings"
FALLBACKS: Final = "shekel.budget.fallbacks"
REMAINING: Final = "shekel.budget.remaining"
UTILIZATION: Final = "shekel.budget.utilization"

TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
"""The bucket boundaries the GenAI conventions give for token counts (powers of 4)."""

# -- attributes ----------------------------------------------------------------------------

OPERATION: Final = "gen_ai.operation.name"
PROVIDER: Final = "gen_ai.provider.name"
TOKEN_TYPE: Final = "gen_ai.token.type"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
TOOL_NAME: Final = "gen_ai.tool.name"

BUDGET_PATH: Final = "shekel.budget.path"
LIMIT_AXIS: Final = "shekel.limit.axis"
LIMIT_SPENT: Final = "shekel.limit.spent"
LIMIT_VALUE: Final = "shekel.limit.value"
LIMIT_WINDOW: Final = "shekel.limit.window"
RETRY_AFTER: Final = "shekel.limit.retry_after"
CALL_SENT: Final = "shekel.call.sent"
FALLBACK_MODEL: Final = "shekel.fallback.model"

# On the span of a call (or the current span): totals of the calls recorded there.
SPAN_COST: Final = "shekel.cost_usd"
SPAN_CALLS: Final = "shekel.calls"
SPAN_ESTIMATED: Final = "shekel.estimated"
SPAN_PRICED: Final = "shekel.priced"

# -- span events ---------------------------------------------------------------------------

EVENT_EXCEEDED: Final = "shekel.budget.exceeded"
EVENT_WARNING: Final = "shekel.budget.warning"
EVENT_FALLBACK: Final = "shekel.budget.fallback"

# -- values --------------------------------------------------------------------------------

DEFAULT_OPERATION: Final = "chat"
"""For usage a framework reported (``budget.record``), which does not say what it was."""

EMBEDDINGS: Final = "embeddings"

_PROVIDERS: Final = {
    # genai-prices ids whose convention name differs; the others are the same word, or have
    # none in the conventions (a custom value is allowed then).
    "aws": "aws.bedrock",
    "google": "gcp.gen_ai",
    "mistral": "mistral_ai",
    "moonshotai": "moonshot_ai",
    "x-ai": "x_ai",
}


def provider_name(provider: str) -> str:
    """The ``gen_ai.provider.name`` for one of shekel's provider ids."""
    return _PROVIDERS.get(provider, provider)
