"""What a store does when it cannot be reached: fail closed (the default) or open."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from ._errors import BudgetConfigError, BudgetStoreUnavailableError
from ._ledger import Hold, Link

T = TypeVar("T")

UNRECORDED: Final = "unrecorded"
"""The id of a hold a failing-open store handed out without recording it."""


class BudgetStoreWarning(UserWarning):
    """A budget store was unavailable and its budgets let calls go on unrecorded
    (``on_error="open"``)."""


class StoreErrors:
    """Turns a store's own exceptions into shekel's, by its failure policy."""

    def __init__(
        self, where: str, policy: str, kinds: type[BaseException] | tuple[type[BaseException], ...]
    ) -> None:
        if policy not in ("closed", "open"):
            raise BudgetConfigError(
                f"on_error must be 'closed' (refuse calls while the store is down) or 'open' "
                f"(let them go unrecorded), got {policy!r}"
            )
        self.where = where
        self.policy = policy
        self.kinds = kinds
        self._warned = False

    def run(self, fn: Callable[..., T], *args: Any, default: Callable[[], T]) -> T:
        try:
            return fn(*args)
        except self.kinds as exc:
            if self.policy == "closed":
                raise BudgetStoreUnavailableError(self.where, exc) from exc
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"the budget store {self.where} is unavailable ({exc}); calls go on "
                    "unrecorded (on_error='open')",
                    BudgetStoreWarning,
                    stacklevel=3,
                )
            return default()

    @staticmethod
    def unrecorded_hold(chain: Sequence[Link], amounts: Sequence[int]) -> Hold:
        accounts = tuple(a for a, _ in chain)
        caps = tuple(c for _, c in chain)
        usd, tokens, calls, tools = amounts
        return Hold(UNRECORDED, accounts, caps, usd, tokens, calls, tools, (0,) * len(chain), None)

    @staticmethod
    def is_unrecorded(hold: Hold) -> bool:
        return bool(hold.id == UNRECORDED)
