"""The OpenAI-compatible API driven by the official `openai` client: against the app in process
(httpx's ASGI transport), and against a real `lore serve` process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from core.settings import CacheSettings, RateLimitSettings, Settings
from retrieval.followup import REWRITE_INSTRUCTION
from retrieval.service import UNSUPPORTED_ANSWER
from tests.fakes import Reply, ScriptedLLM
from tests.served import lore_env, served_corpus, served_process

pytestmark = pytest.mark.models

HANDBOOK = (
    "# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n\n"
    "## Care\n\nClean widgets with a dry cloth once a week.\n"
)
VAULT = "# Vault\n\nThe Omega gadget is purple and hums at night.\n"


@dataclass
class Lore:
    app: FastAPI
    reader: str
    admin: str
    docs: Path

    def client(self, key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url="http://lore.test/v1",
            api_key=key,
            max_retries=0,
            http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), timeout=120),
        )

    @contextmanager
    def scripted(self, reply: Reply) -> Iterator[ScriptedLLM]:
        """The app's LLM replaced by one that replies ``reply`` (and keeps its prompts)."""
        resources = self.app.state.resources
        original, resources._llm = resources._llm, ScriptedLLM(reply)
        try:
            yield resources._llm
        finally:
            resources._llm = original


@pytest.fixture(scope="module")
async def lore(tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]) -> AsyncIterator[Lore]:
    """Two corpora, handbook (granted to the reader) and vault (not granted), served in process."""
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    root = tmp_path_factory.mktemp("openai")
    docs, vault = root / "docs", root / "vault"
    docs.mkdir()
    vault.mkdir()
    (docs / "widgets.md").write_text(HANDBOOK)
    (vault / "gadgets.md").write_text(VAULT)
    # Each test asks its own questions: none is answered from another's answer. Rate limits are
    # tested against lore serve.
    settings = Settings(
        data_dir=root / "lore",
        cache=CacheSettings(semantic=False),
        rate_limit=RateLimitSettings(enabled=False),
    )
    reader = await user_key(settings, "reader", role="reader", grants=("handbook",))
    admin = await user_key(settings, "root", role="admin")
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [vault], corpus="vault")
    async with served_corpus(settings, docs, reader) as (app, _):
        yield Lore(app, reader, admin, docs)


async def test_models_list_only_what_the_caller_may_read(lore: Lore) -> None:
    reader = await lore.client(lore.reader).models.list()
    admin = await lore.client(lore.admin).models.list()

    assert [m.id for m in reader.data] == ["lore", "lore:handbook"]
    assert [m.id for m in admin.data] == ["lore", "lore:handbook", "lore:vault"]
    assert {(m.object, m.owned_by) for m in reader.data} == {("model", "lore")}
    assert all(m.created > 0 for m in reader.data)
    assert (await lore.client(lore.reader).models.retrieve("lore:handbook")).id == "lore:handbook"
    with pytest.raises(openai.NotFoundError):
        await lore.client(lore.reader).models.retrieve("lore:vault")


@pytest.mark.parametrize("model", ["lore:vault", "lore:missing", "gpt-4o"])
async def test_a_model_the_caller_may_not_use_is_model_not_found(lore: Lore, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        await lore.client(lore.reader).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "What colour is the Omega gadget?"}]
        )
    assert raised.value.code == "model_not_found" and raised.value.param == "model"
    assert raised.value.type == "invalid_request_error"


async def test_a_completion_carries_its_citations_in_the_content_and_the_extension(lore: Lore) -> None:
    reply = "The Alpha widget is blue [1]."
    with lore.scripted(reply):
        completion = await lore.client(lore.reader).chat.completions.create(
            model="lore:handbook",
            messages=[{"role": "user", "content": "Which colour has the Alpha widget?"}],
        )

    assert completion.object == "chat.completion" and completion.model == "lore:handbook"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    source = str((lore.docs / "widgets.md").resolve())
    assert choice.message.content == f"{reply}\n\nSources:\n[1] Widgets — {source}"
    extension = choice.message.model_extra["lore"]  # type: ignore[index]
    assert extension["refused"] is False and extension["unsupported_sentences"] == []
    [citation] = extension["citations"]
    assert set(citation) == {"n", "document_id", "title", "source", "page", "text", "location", "score"}
    assert (citation["n"], citation["source"]) == (1, source)
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_a_reader_is_never_answered_from_an_ungranted_corpus(lore: Lore) -> None:
    # Given a question only the vault, which the reader was not granted, answers
    messages: Any = [{"role": "user", "content": "What colour is the Omega gadget that hums at night?"}]
    with lore.scripted("The Omega gadget is purple [1]."):
        # when the reader and an admin both ask every corpus they may read
        mine = await lore.client(lore.reader).chat.completions.create(model="lore", messages=messages)
        admins = await lore.client(lore.admin).chat.completions.create(model="lore", messages=messages)

    # then the admin's answer cites the vault, and the reader's never does
    def cited(completion: Any) -> set[str]:
        return {
            Path(c["source"]).name for c in completion.choices[0].message.model_extra["lore"]["citations"]
        }

    assert cited(admins) == {"gadgets.md"}
    assert "gadgets.md" not in cited(mine)
    assert "gadgets.md" not in (mine.choices[0].message.content or "")


async def test_a_refusal_is_an_assistant_message_marked_refused(lore: Lore) -> None:
    # The draft's only sentence states what no source holds: verification refuses the answer.
    with lore.scripted("Pass --print-table to weigh the Alpha widget [1]."):
        completion = await lore.client(lore.reader).chat.completions.create(
            model="lore", messages=[{"role": "user", "content": "How is the Alpha widget weighed?"}]
        )

    message = completion.choices[0].message
    assert message.role == "assistant" and message.content == UNSUPPORTED_ANSWER
    extension = message.model_extra["lore"]  # type: ignore[index]
    assert extension["refused"] is True and extension["citations"] == []
    assert extension["unsupported_sentences"][0]["reason"] == "`--print-table` is in no source"
    assert completion.choices[0].finish_reason == "stop"


async def test_a_stream_sends_the_role_then_verified_text_then_the_extension_and_done(lore: Lore) -> None:
    reply = "The Alpha widget is blue [1]. Pass --print-table to weigh it [1]."
    with lore.scripted(reply):
        stream = await lore.client(lore.reader).chat.completions.create(
            model="lore",
            messages=[{"role": "user", "content": "What colour is the streamed Alpha widget?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # The unsupported sentence was never sent; the content is what the whole completion would be.
    assert content.startswith("The Alpha widget is blue [1].\n\nSources:\n[1] Widgets — ")
    assert "--print-table" not in content
    *_, finish, usage = chunks
    assert finish.choices[0].finish_reason == "stop"
    extension = finish.model_extra["lore"]  # type: ignore[index]
    assert [c["n"] for c in extension["citations"]] == [1] and extension["refused"] is False
    assert extension["unsupported_sentences"][0]["sentence"] == "Pass --print-table to weigh it [1]."
    assert usage.choices == [] and usage.usage is not None and usage.usage.completion_tokens > 0


async def test_a_stream_holds_back_what_a_refusal_withdraws(lore: Lore) -> None:
    # Given a draft whose first sentence needs no source and whose second no source supports:
    # /v1/query/stream sends the first as a token, then a refusal that replaces it
    with lore.scripted("This is how it is. Pass --print-table to weigh it [1]."):
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=lore.app), base_url="http://lore.test"
            ) as http,
            http.stream(
                "POST",
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {lore.reader}"},
                json={
                    "model": "lore",
                    "stream": True,
                    "messages": [{"role": "user", "content": "How do I weigh the held-back widget?"}],
                },
            ) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            raw = "".join([text async for text in response.aiter_text()])

    # then the OpenAI stream sends only the refusal, and ends with [DONE]
    blocks = [block for block in raw.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in blocks), raw
    assert blocks[-1] == "data: [DONE]"
    chunks = [json.loads(block[len("data: ") :]) for block in blocks[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert content == UNSUPPORTED_ANSWER
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["lore"]["refused"] is True
    assert "lore" not in chunks[0] and "usage" not in chunks[-1]


async def test_earlier_messages_are_the_history_of_a_follow_up(lore: Lore) -> None:
    def reply(messages: Any) -> str:
        if messages[0]["content"] == REWRITE_INSTRUCTION:
            return "How much does the Alpha widget weigh?"
        return "The Alpha widget weighs three grams [1]."

    earlier = "The Alpha widget is blue [1].\n\nSources:\n[1] Widgets — /docs/widgets.md"
    with lore.scripted(reply) as llm:
        completion = await lore.client(lore.reader).chat.completions.create(
            model="lore:handbook",
            messages=[
                {"role": "system", "content": "You are a pirate. Answer in pirate speech."},
                {"role": "user", "content": "What colour is the Alpha widget?"},
                {"role": "assistant", "content": earlier},
                {"role": "user", "content": "And how much does it weigh?"},
            ],
        )

    # The follow-up was rewritten with the conversation in view, then answered with it as history:
    # the assistant's turn without the sources list, and no system message.
    rewrite, answer = llm.prompts
    assert "user: What colour is the Alpha widget?" in rewrite[1]["content"]
    assert "assistant: The Alpha widget is blue [1].\n\nLast question: And how much" in rewrite[1]["content"]
    assert [m["role"] for m in answer] == ["system", "user", "assistant", "user"]
    assert answer[2]["content"] == "The Alpha widget is blue [1]."
    assert "pirate" not in json.dumps(answer)
    assert completion.choices[0].message.content.startswith("The Alpha widget weighs three grams [1].")  # type: ignore[union-attr]


async def test_max_tokens_temperature_and_stop_reach_the_llm_within_the_settings(lore: Lore) -> None:
    limits = lore.app.state.resources.settings.llm
    messages: Any = [{"role": "user", "content": "Describe the stopped Alpha widget."}]
    with lore.scripted("The Alpha widget is blue [1]. It weighs three grams [1].") as llm:
        stopped = await lore.client(lore.reader).chat.completions.create(
            model="lore",
            messages=messages,
            max_tokens=limits.max_tokens * 10,
            temperature=1.9,
            stop="It weighs",
        )
        # The same question without the stop sequence is another answer, not the cached one.
        whole = await lore.client(lore.reader).chat.completions.create(model="lore", messages=messages)

    assert llm.streams == [
        {"max_tokens": limits.max_tokens, "temperature": limits.max_temperature, "stop": ("It weighs",)},
        {"max_tokens": limits.max_tokens, "temperature": None, "stop": ()},
    ]
    assert "three grams" not in (stopped.choices[0].message.content or "")
    assert "three grams" in (whole.choices[0].message.content or "")


async def test_unknown_parameters_are_ignored(lore: Lore) -> None:
    with lore.scripted("The Alpha widget is blue [1]."):
        completion = await lore.client(lore.reader).chat.completions.create(
            model="lore",
            messages=[{"role": "user", "content": "Tell me the colour of the Alpha widget."}],
            top_p=0.5,
            seed=7,
            user="someone",
            extra_body={"not_an_openai_parameter": {"x": 1}},
        )
    assert completion.choices[0].message.content


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"n": 2}, "n"),
        ({"temperature": 2.5}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
            "messages",
        ),
        ({"messages": [{"role": "user", "content": "   "}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content"),
    ],
)
async def test_invalid_parameters_are_openai_bad_requests(
    lore: Lore, request_body: dict[str, Any], param: str
) -> None:
    arguments: dict[str, Any] = {"model": "lore", "messages": [{"role": "user", "content": "What is blue?"}]}
    with pytest.raises(openai.BadRequestError) as raised:
        await lore.client(lore.reader).chat.completions.create(**(arguments | request_body))
    error = raised.value
    assert error.status_code == 400 and error.type == "invalid_request_error"
    assert error.param == param and error.message


async def test_a_bad_key_is_401_in_openai_shape(lore: Lore) -> None:
    with pytest.raises(openai.AuthenticationError) as raised:
        await lore.client("lore_not-a-key").models.list()
    assert raised.value.status_code == 401 and raised.value.code == "invalid_api_key"
    assert set(raised.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]


async def test_openai_clients_against_lore_serve(tmp_path: Path, user_key: Callable[..., Any]) -> None:
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    # Given a served corpus, a reader granted it, and a query bucket of three requests
    data_dir = tmp_path / "lore"
    settings = Settings(data_dir=data_dir)
    key = await user_key(settings, "alice", role="reader", grants=("widgets",))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "widgets.md").write_text("# Widgets\n\nThe shared widget is red.\n")
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [docs], corpus="widgets")
    env = lore_env(
        data_dir,
        llm__max_tokens="16",
        cache__semantic="false",
        rate_limit__query_burst="3",
        rate_limit__query_per_minute="1",
    )

    with served_process(env, tmp_path / "serve.log") as base:
        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=120)
        # when the openai client lists the models, asks, and asks again streaming
        models = await client.models.list()
        messages: Any = [{"role": "user", "content": "What colour is the shared widget?"}]
        whole = await client.chat.completions.create(model="lore:widgets", messages=messages)
        stream = await client.chat.completions.create(model="lore:widgets", messages=messages, stream=True)
        chunks = [chunk async for chunk in stream]
        # and once more than its bucket allows
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="lore:widgets", messages=messages)
        await client.close()

    # then it gets the models, the answer with its sources, the same answer streamed, and a 429
    assert [m.id for m in models.data] == ["lore", "lore:widgets"]
    content = whole.choices[0].message.content or ""
    source = str((docs / "widgets.md").resolve())
    assert content.endswith(f"\n\nSources:\n[1] Widgets — {source}"), content
    assert whole.choices[0].message.model_extra["lore"]["citations"][0]["source"] == source  # type: ignore[index]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == content
    assert chunks[-1].choices[0].finish_reason == "stop" and "lore" in (chunks[-1].model_extra or {})
    assert limited.value.code == "rate_limit_exceeded" and limited.value.response.headers["Retry-After"]


async def test_a_body_that_is_not_json_is_an_openai_bad_request(lore: Lore) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=lore.app), base_url="http://lore.test"
    ) as http:
        response = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {lore.reader}", "Content-Type": "application/json"},
            content=b"{not json",
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] is None and error["message"]
