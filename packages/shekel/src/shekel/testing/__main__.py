"""``python -m shekel.testing``: run the fake provider until interrupted."""

from __future__ import annotations

import argparse
import threading

from shekel.testing._model import STREAM_FRAMINGS
from shekel.testing._server import FakeProvider


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shekel.testing",
        description="Serve a fake OpenAI/Anthropic API on this machine until Ctrl-C.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--echo", action="store_true", help="answer with the last user message")
    parser.add_argument("--log", action="store_true", help="log each request to stderr")
    parser.add_argument(
        "--stream-framing",
        choices=STREAM_FRAMINGS,
        default="coalesced",
        help="how streamed bodies are cut into HTTP chunks (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    fake = FakeProvider(
        host=args.host,
        port=args.port,
        echo=args.echo,
        log_requests=args.log,
        stream_framing=args.stream_framing,
    )
    print(f"fake provider listening on {fake.url}")
    print(f"  OPENAI_BASE_URL={fake.openai_base_url}")
    print(f"  ANTHROPIC_BASE_URL={fake.anthropic_base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
