"""shekel's hooks for LangChain, loaded through the ``shekel`` entry point.

- ``shekel_install`` registers the zero-config handler with LangChain, once per process,
  before the first budget becomes active (nothing, with a warning, on an unsupported
  langchain-core);
- ``shekel_budget_entered`` / ``shekel_budget_exited`` turn it on in the thread or task where a
  budget is entered, and off when the last one there ends;
- ``shekel_route_call`` tells the interceptor which run's budget pays for a request.
"""

from __future__ import annotations

import shekel
from shekel import Budget, CallRoute

from . import _runs, _zero_config


@shekel.hookimpl
def shekel_install() -> None:
    _zero_config.install()


@shekel.hookimpl
def shekel_budget_entered(budget: Budget) -> None:
    _zero_config.arm()


@shekel.hookimpl
def shekel_budget_exited(budget: Budget, error: BaseException | None) -> None:
    _zero_config.disarm()


@shekel.hookimpl
def shekel_route_call(active: Budget | None) -> CallRoute | None:
    return _runs.route(active)
