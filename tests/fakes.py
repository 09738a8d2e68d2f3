"""Test doubles shared by several test modules."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence

from core.components.llm import LLM, Completion, Message
from core.errors import BackendError

Reply = str | Callable[[Sequence[Message]], str] | None


class ScriptedLLM(LLM):
    """Replies with a fixed text, or one made from the prompt; fails when the reply is None.

    Keeps every prompt it was given, so a test can count and read the calls, and the options of
    every stream (``streams``); a stop sequence ends the streamed reply, as a backend's would.
    """

    def __init__(self, reply: Reply, *, model: str = "scripted") -> None:
        self.reply = reply
        self.model = model
        self.prompts: list[Sequence[Message]] = []
        self.streams: list[dict[str, object]] = []

    @property
    def calls(self) -> int:
        return len(self.prompts)

    async def complete(self, messages: Sequence[Message], *, max_tokens: int | None = None) -> Completion:
        self.prompts.append(messages)
        if self.reply is None:
            raise BackendError("endpoint down")
        text = self.reply(messages) if callable(self.reply) else self.reply
        return Completion(text, self.model)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        usage: dict[str, int] | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> AsyncIterator[str]:
        self.streams.append({"max_tokens": max_tokens, "temperature": temperature, "stop": tuple(stop)})
        text = (await self.complete(messages)).text
        for sequence in stop:
            text = text.split(sequence, 1)[0]
        # Word by word, as a real model streams: sentences end mid-stream.
        for piece in re.findall(r"\S+\s*|\s+", text):
            yield piece

    async def close(self) -> None:
        return None
