"""A real ``redis-server`` for the store tests, on a free loopback port.

There is no fake: if ``redis-server`` is not installed the Redis tests fail and say how to
install it (``.ci/run`` installs it on CI).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

INSTALL = (
    "redis-server is not on PATH: the store tests run a real Redis server. Install it "
    "(Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis); "
    ".ci/run installs it on CI"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1 (no persistence unless asked), stoppable and
    startable again on the same port."""

    def __init__(self, directory: Path, *, persist: bool = False) -> None:
        self.directory = directory
        self.persist = persist
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(INSTALL, pytrace=False)
        self.directory.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else []
        command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            *persistence,
        ]
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    text = (self.directory / "redis.log").read_text(errors="replace")
                    pytest.fail(f"redis-server did not start on port {self.port}:\n{text}")
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)
