"""The releases of the frameworks shekel-langchain supports (checked by ``shekel.integration``)."""

_instruments = ("langchain-core >= 1.0, < 2",)
