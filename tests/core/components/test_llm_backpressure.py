"""The in-process LLM queues at most ``llm.max_queue`` requests, each for at most
``llm.queue_timeout_s``; past either bound a request is refused at once as overloaded (503 with
Retry-After), and the requests within the bound still complete."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.errors import install_error_handlers
from core.components.llm import LlamaCppLLM, Message
from core.errors import OverloadedError
from core.settings import LLMSettings

GENERATION_S = 0.4
QUESTION: list[Message] = [{"role": "user", "content": "hello"}]


class SlowLlama:
    """Stands in for ``llama_cpp.Llama``: each generation takes GENERATION_S of a worker thread."""

    def __init__(self, **_: Any) -> None:
        pass

    def create_chat_completion(self, *, stream: bool = False, **_: Any) -> Any:
        time.sleep(GENERATION_S)
        if stream:
            return iter([{"choices": [{"delta": {"content": "hi"}}]}])
        return {"choices": [{"message": {"content": "hi"}}], "usage": {}}


@pytest.fixture
def make_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import llama_cpp

    monkeypatch.setattr(llama_cpp, "Llama", SlowLlama)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"")

    def factory(**overrides: Any) -> LlamaCppLLM:
        return LlamaCppLLM(LLMSettings(model_path=str(model), **overrides))

    return factory


async def _ask(llm: LlamaCppLLM) -> str:
    return (await llm.complete(QUESTION)).text


async def test_requests_beyond_the_queue_bound_are_refused_at_once_and_the_rest_complete(
    make_llm: Any,
) -> None:
    # Given an in-process LLM that lets two requests wait behind the one generating
    llm = make_llm(max_queue=2, queue_timeout_s=30)

    # when four clients ask at once
    started = time.monotonic()
    outcomes = await asyncio.gather(*(_ask(llm) for _ in range(4)), return_exceptions=True)

    # then three are answered and the fourth is refused as overloaded, with a retry hint
    refused = [o for o in outcomes if isinstance(o, OverloadedError)]
    assert [o for o in outcomes if not isinstance(o, OverloadedError)] == ["hi", "hi", "hi"]
    assert len(refused) == 1 and refused[0].retry_after_s == 30
    assert time.monotonic() - started < 3 * GENERATION_S + 1.5


async def test_a_request_that_waits_past_the_queue_timeout_is_refused(make_llm: Any) -> None:
    llm = make_llm(max_queue=8, queue_timeout_s=0.1)

    first, second = await asyncio.gather(_ask(llm), _ask(llm), return_exceptions=True)

    assert first == "hi"
    assert isinstance(second, OverloadedError) and "busy" in second.message


async def test_a_stream_holds_its_slot_until_it_ends(make_llm: Any) -> None:
    llm = make_llm(max_queue=0, queue_timeout_s=30)

    async def stream() -> str:
        return "".join([part async for part in llm.stream(QUESTION)])

    outcomes = await asyncio.gather(stream(), _ask(llm), return_exceptions=True)

    assert outcomes[0] == "hi"
    assert isinstance(outcomes[1], OverloadedError)
    # The slot is free again once the stream ended.
    assert await _ask(llm) == "hi"


async def test_an_overloaded_llm_answers_503_with_retry_after() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/ask")
    async def ask() -> None:
        raise OverloadedError("the LLM is busy", retry_after_s=2.5)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/ask")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"
    assert response.json()["error"]["code"] == "overloaded"
