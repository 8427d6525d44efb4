"""What the LlamaIndex tests share besides fixtures: the fake provider's usage per reply and
the documents indexed."""

from __future__ import annotations

INPUT, OUTPUT = 1000, 100  # every fake reply's usage (embeddings: INPUT tokens)

DOCUMENTS = [
    "Paul Graham wrote essays and founded Y Combinator.",
    "Before that he wrote Lisp code for Viaweb, an early web store builder.",
    "He also painted, and studied art in Florence.",
]
