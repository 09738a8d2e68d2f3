"""The HTTP LLM client's behaviour under failure and load, against a scripted OpenAI-compatible server.

The happy path runs against llama.cpp's real server (test_llm.py); what a real server cannot be
made to do on cue (fail once, drop a stream half way, stay slow) is scripted here, over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.components.llm import Message, OpenAICompatibleLLM
from core.errors import BackendError
from core.settings import LLMSettings

MESSAGES: list[Message] = [{"role": "user", "content": "Say three words."}]
USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def _chunk(content: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, object] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "scripted",
        "choices": []
        if content is None
        else [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


@dataclass
class Script:
    """What the server does for each request, in order; the last step repeats."""

    steps: list[str] = field(default_factory=lambda: ["stream"])
    requests: int = 0
    bodies: list[dict[str, object]] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        step = self.steps[min(self.requests, len(self.steps) - 1)]
        self.requests += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await self._reply(request, step)
        finally:
            self.in_flight -= 1

    async def _reply(self, request: web.Request, step: str) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        if step in ("503", "400"):
            return web.json_response({"error": {"message": f"scripted {step}"}}, status=int(step))
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "scripted",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "one two three"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": USAGE,
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for i, word in enumerate(("one", " two", " three")):
                await response.write(_chunk(word))
                if step == "drop" and i == 0:
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                if step == "slow":
                    await asyncio.sleep(0.5)
            await response.write(_chunk(usage=USAGE))
            await response.write(b"data: [DONE]\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response


@pytest.fixture
async def script() -> AsyncIterator[Script]:
    script = Script()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", script.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    script.base = f"http://127.0.0.1:{server.port}/v1"  # type: ignore[attr-defined]
    try:
        yield script
    finally:
        await server.close()


def client(script: Script, **settings: object) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(
        LLMSettings.model_validate({"base_url": script.base, "model": "scripted", "timeout_s": 5, **settings})  # type: ignore[attr-defined]
    )


async def collect(llm: OpenAICompatibleLLM, usage: dict[str, int] | None = None) -> list[str]:
    return [part async for part in llm.stream(MESSAGES, usage=usage)]


async def test_a_failure_before_the_first_token_is_retried(script: Script) -> None:
    script.steps = ["503", "stream"]
    llm = client(script)
    try:
        usage: dict[str, int] = {}
        assert await collect(llm, usage) == ["one", " two", " three"]
    finally:
        await llm.close()
    assert script.requests == 2
    # The server's own counts, from the stream's last chunk.
    assert usage == USAGE


async def test_a_failure_after_the_first_token_is_never_retried(script: Script) -> None:
    script.steps = ["drop", "stream"]
    llm = client(script)
    received: list[str] = []
    try:
        with pytest.raises(BackendError, match="failed"):
            async for part in llm.stream(MESSAGES):
                received.append(part)
    finally:
        await llm.close()
    # The client saw a token, so a retry would have repeated it: the failure is the caller's.
    assert received == ["one"]
    assert script.requests == 1


async def test_a_refused_request_is_not_retried(script: Script) -> None:
    script.steps = ["400"]
    llm = client(script)
    try:
        with pytest.raises(BackendError, match="scripted 400"):
            await llm.complete(MESSAGES)
    finally:
        await llm.close()
    assert script.requests == 1


async def test_retries_give_up_after_the_setting(script: Script) -> None:
    script.steps = ["503"]
    llm = client(script, retries=1)
    try:
        with pytest.raises(BackendError, match="scripted 503"):
            await llm.complete(MESSAGES)
    finally:
        await llm.close()
    assert script.requests == 2


async def test_requests_over_the_concurrency_limit_queue(script: Script) -> None:
    script.steps = ["slow"]
    llm = client(script, max_concurrency=1, queue_timeout_s=10)
    try:
        results = await asyncio.gather(collect(llm), collect(llm), collect(llm))
    finally:
        await llm.close()
    assert all("".join(r) == "one two three" for r in results)
    assert script.peak == 1 and script.requests == 3


async def test_a_request_that_waits_too_long_for_a_slot_fails_as_busy(script: Script) -> None:
    script.steps = ["slow"]
    llm = client(script, max_concurrency=1, queue_timeout_s=0.2)
    try:
        holder = asyncio.create_task(collect(llm))
        await asyncio.sleep(0.1)
        with pytest.raises(BackendError, match="busy"):
            await llm.complete(MESSAGES)
        assert "".join(await holder) == "one two three"
    finally:
        await llm.close()


async def test_a_consumer_that_leaves_closes_the_stream_and_frees_its_slot(script: Script) -> None:
    script.steps = ["slow", "stream"]
    llm = client(script, max_concurrency=1, queue_timeout_s=2)
    try:
        stream = llm.stream(MESSAGES)
        assert await anext(stream) == "one"
        await stream.aclose()  # what a client disconnect does to the answer's generator
        # The server notices at its next write: it stops generating.
        await asyncio.wait_for(script.disconnected.wait(), timeout=5)
        # And the slot is free again at once.
        assert (await llm.complete(MESSAGES)).text == "one two three"
    finally:
        await llm.close()


async def test_temperature_and_stop_are_sent_per_stream_and_stop_only_when_given(script: Script) -> None:
    llm = client(script, temperature=0.0)
    try:
        await collect(llm)
        parts = [p async for p in llm.stream(MESSAGES, temperature=0.7, stop=["three"])]
    finally:
        await llm.close()
    plain, asked = script.bodies
    assert plain["temperature"] == 0.0 and "stop" not in plain
    assert asked["temperature"] == 0.7 and asked["stop"] == ["three"]
    assert parts == ["one", " two", " three"]  # the scripted server ignores stop; a real one honours it
