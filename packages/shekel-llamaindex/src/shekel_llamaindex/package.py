"""The LlamaIndex releases this package supports (checked by ``shekel.integration``)."""

_instruments = ("llama-index-core >= 0.14.5, < 0.15",)
