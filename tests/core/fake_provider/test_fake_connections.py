"""The fake provider's connections and concurrency."""

from __future__ import annotations

import threading

import anthropic
import openai
from fake_support import CHAT

from shekel.testing import FakeProvider, Reply


def test_keepalive_reuses_one_connection(
    fake_llm: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    for _ in range(4):
        oai.chat.completions.create(model="m", messages=CHAT)
        oai.embeddings.create(model="e", input="x")
    assert len(fake_llm.requests) == 8
    assert fake_llm.connections_accepted == 1
    # anthropic's stream reads the body to its end, so its connection goes back to the pool
    for _ in range(3):
        with claude.messages.stream(model="c", max_tokens=9, messages=CHAT) as stream:
            stream.get_final_message()
        claude.messages.create(model="c", max_tokens=9, messages=CHAT)
    assert fake_llm.connections_accepted == 2


def test_twenty_concurrent_requests(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(*(Reply(text=f"reply {i}", chunk_delay=0.01) for i in range(20)))
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)
    lock = threading.Lock()

    def worker(index: int) -> None:
        try:
            barrier.wait()
            if index % 2:
                text = oai.chat.completions.create(model="m", messages=CHAT).choices[0].message
                content = text.content or ""
            else:
                stream = oai.chat.completions.create(model="m", messages=CHAT, stream=True)
                content = "".join(c.choices[0].delta.content or "" for c in stream)
            with lock:
                results.append(content)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    assert sorted(results) == sorted(f"reply {i}" for i in range(20))
    assert len(fake_llm.requests) == 20
    assert fake_llm.pending == 0
