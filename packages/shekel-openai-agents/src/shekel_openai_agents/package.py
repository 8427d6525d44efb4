"""The openai-agents releases this package supports (checked by ``shekel.integration``).
0.19 is the first that runs on the newest openai 2.x (earlier ones fail to build their usage
from it); 0.23 and later need openai 3."""

_instruments = ("openai-agents >= 0.19, < 0.25",)
