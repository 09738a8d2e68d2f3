"""Requests and responses of the OpenAI-compatible API, in OpenAI's shapes plus the ``lore`` extension.

Parameters OpenAI defines that Lore has no use for (``top_p``, ``seed``, ``user``, ``tools``...)
are accepted and ignored, as unknown fields are.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas import CitationPublic, UnsupportedSentencePublic

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ContentPart(BaseModel):
    """One part of a message's content; only text parts carry anything Lore reads."""

    type: str = Field(description="text (others, such as image_url, are refused in the question).")
    text: str | None = None


class ChatMessage(BaseModel):
    role: Role
    content: str | list[ContentPart] | None = Field(
        default=None, description="The message's text, or a list of content parts."
    )

    def text(self) -> str:
        """The message's text: its string, or its text parts joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content or () if part.type == "text")

    def has_other_parts(self) -> bool:
        return isinstance(self.content, list) and any(part.type != "text" for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = Field(
        default=False, description="Send a last chunk with the usage (and no choices) before [DONE]."
    )


class ChatCompletionRequest(BaseModel):
    model: str = Field(
        description="lore: every corpus you may read; lore:<corpus>: that corpus (GET /v1/models lists them)."
    )
    messages: list[ChatMessage] = Field(
        min_length=1,
        description=(
            "The conversation: the last message is the question (from the user); earlier user and "
            "assistant messages are its history. System and developer messages are ignored."
        ),
    )
    stream: bool = Field(
        default=False, description="Stream chat.completion.chunk objects as Server-Sent Events."
    )
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(
        default=None, ge=1, description="Most tokens the draft may have (at most the setting llm.max_tokens)."
    )
    max_completion_tokens: int | None = Field(default=None, ge=1, description="max_tokens' newer name; wins.")
    temperature: float | None = Field(
        default=None,
        ge=0,
        le=2,
        description="Sampling temperature, lowered to the setting llm.max_temperature.",
    )
    stop: str | list[str] | None = Field(
        default=None, description="Up to 4 sequences that end the draft (not included in it)."
    )
    n: int | None = Field(default=None, ge=1, description="Choices to generate: only 1 is supported.")


class LoreExtension(BaseModel):
    """Lore's own account of the answer, beside OpenAI's fields."""

    citations: list[CitationPublic] = Field(
        description="The sources the answer cites, as /v1/query gives them; `n` is the answer's [n]."
    )
    refused: bool = Field(description="True when the answer says the documents do not contain it.")
    unsupported_sentences: list[UnsupportedSentencePublic] = Field(
        description="Sentences of the draft no source supports, with why (never in the content when dropped)."
    )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None
    lore: LoreExtension


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int = Field(description="Tokens of the question and the history turns used.")
    completion_tokens: int = Field(description="Tokens of the content returned, sources list included.")
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="When the corpus was created (Unix seconds); for lore, the oldest one.")
    owned_by: Literal["lore"] = "lore"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class OpenAIErrorBody(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, requests (rate limited) or server_error.")
    param: str | None = Field(description="The request field at fault, when one is.")
    code: str | None = Field(
        description="model_not_found, invalid_api_key, rate_limit_exceeded, or Lore's own error code."
    )


class OpenAIErrorResponse(BaseModel):
    error: OpenAIErrorBody
