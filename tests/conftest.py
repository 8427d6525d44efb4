"""Settings for every test run: how many processes ``-n auto`` starts."""

from __future__ import annotations

import os

import pytest


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    # Most tests wait on sockets (the fake provider, redis-server, subprocesses), so one worker
    # more than there are CPUs keeps them busy; measured on the 2-core CI machine.
    return (os.cpu_count() or 1) + 1
