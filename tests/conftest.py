"""Settings for every test run: how many processes ``-n auto`` starts, and the garbage
collector's view of what collection imported."""

from __future__ import annotations

import gc
import os

import pytest


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    # Most tests wait on sockets (the fake provider, redis-server, subprocesses), so one worker
    # more than there are CPUs keeps them busy; measured on the 2-core CI machine.
    return (os.cpu_count() or 1) + 1


def pytest_configure(config: pytest.Config) -> None:
    # Collection imports the SDKs and frameworks: objects that live as long as the process.
    # The collector walked them all again at each full pass (about 0.3 s each, 18 s of a run's
    # CPU on three workers). It rests while they are imported, and then they are frozen: it
    # looks only at what tests create.
    gc.disable()


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()
    gc.enable()
