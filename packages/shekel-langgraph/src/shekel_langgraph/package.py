"""The LangGraph releases this package supports (checked by its ``Integration`` in ``_node``)."""

_instruments = ("langgraph >= 1.0, < 2",)
