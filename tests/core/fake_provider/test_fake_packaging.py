"""Packaging of the fake provider: the pytest plugin and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
from fake_support import SRC


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def test_plugin_and_package_import_no_sdk() -> None:
    code = (
        "import sys, shekel.testing, shekel.testing._pytest_plugin; "
        "print(sorted(m for m in ('openai', 'anthropic') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_serves_until_interrupted() -> None:
    command = [sys.executable, "-m", "shekel.testing", "--port", "0"]
    with subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline().strip() for _ in range(3)]
            url = lines[0].rsplit(" ", 1)[-1]
            assert url.startswith("http://127.0.0.1:")
            assert lines[1:] == [f"OPENAI_BASE_URL={url}/v1", f"ANTHROPIC_BASE_URL={url}"]
            response = httpx.post(url + "/v1/embeddings", json={"model": "e", "input": "z"})
            assert response.json()["usage"]["prompt_tokens"] == 12
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
