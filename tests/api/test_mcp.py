"""The MCP server driven by the official `mcp` SDK's client: over Streamable HTTP against a real
`lore serve` process (bearer API keys), and over stdio against a real `lore mcp` process (a named
user). A reader's session never sees the chunks of a corpus they have no grant on."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from core.settings import Settings
from tests.served import REPO, lore_env, served_process

pytestmark = [pytest.mark.models, pytest.mark.slow]

HANDBOOK = (
    "# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n\n"
    "## Care\n\nClean widgets with a dry cloth once a week.\n"
)
VAULT = "# Vault\n\nThe Omega gadget is purple and hums at night.\n"
TOOLS = {"search", "ask", "list_corpora", "get_document"}


@dataclass
class Corpora:
    data_dir: Path
    handbook: Path
    reader: str
    admin: str


@pytest.fixture(scope="module")
async def corpora(tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]) -> Corpora:
    """Two ingested corpora: handbook (granted to the reader, whose username is reader) and vault."""
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    root = tmp_path_factory.mktemp("mcp")
    docs, vault = root / "docs", root / "vault"
    docs.mkdir()
    vault.mkdir()
    (docs / "widgets.md").write_text(HANDBOOK)
    (vault / "gadgets.md").write_text(VAULT)
    settings = Settings(data_dir=root / "lore")
    reader = await user_key(settings, "reader", role="reader", grants=("handbook",))
    admin = await user_key(settings, "root", role="admin")
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [docs], corpus="handbook")
        await ingest_paths(resources, [vault], corpus="vault")
    return Corpora(root / "lore", (docs / "widgets.md").resolve(), reader, admin)


def _env(corpora: Corpora, **settings: str) -> dict[str, str]:
    return lore_env(corpora.data_dir, llm__max_tokens="48", cache__semantic="false", **settings)


@asynccontextmanager
async def _http_session(base: str, key: str) -> AsyncIterator[ClientSession]:
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120)
        )
        transport = streamable_http_client(f"{base}/mcp", http_client=client)
        read, write = await stack.enter_async_context(transport)
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


@asynccontextmanager
async def _stdio_session(
    corpora: Corpora, user: str | None, *, via_env: bool = False
) -> AsyncIterator[ClientSession]:
    env = _env(corpora, **({"mcp__user": user} if via_env and user else {}))
    args = ["-m", "cli", "mcp"] + (["--user", user] if user and not via_env else [])
    params = StdioServerParameters(command=sys.executable, args=args, env=env, cwd=str(REPO))
    async with AsyncExitStack() as stack:
        read, write = await stack.enter_async_context(stdio_client(params))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    structured: dict[str, Any] = result.structured_content
    return structured


async def _reader_checks(session: ClientSession, corpora: Corpora) -> dict[str, Any]:
    """What every transport must give a reader granted handbook only; gives the ask result."""
    tools = await session.list_tools()
    assert {tool.name for tool in tools.tools} >= TOOLS
    listed = _structured(await session.call_tool("list_corpora", {}))
    assert listed["corpora"] == [{"name": "handbook", "documents": 1}]

    # search, over every corpus the reader may read, finds only the handbook's chunks
    found = _structured(await session.call_tool("search", {"query": "Omega gadget purple hums", "k": 5}))
    assert found["results"], found
    assert {hit["source"] for hit in found["results"]} == {str(corpora.handbook)}
    # and an ungranted corpus is missing, exactly as one that does not exist
    denied = await session.call_tool("search", {"query": "Omega gadget", "corpus": "vault", "k": 5})
    missing = await session.call_tool("search", {"query": "Omega gadget", "corpus": "nothing", "k": 5})
    assert denied.is_error and missing.is_error
    assert "vault" in denied.content[0].text and "nothing" in missing.content[0].text  # type: ignore[union-attr]

    # ask answers from the handbook, with its citations as structured content
    asked = _structured(await session.call_tool("ask", {"question": "What colour is the Alpha widget?"}))
    assert not asked["refused"], asked
    assert asked["citations"] and {c["source"] for c in asked["citations"]} == {str(corpora.handbook)}

    # get_document reads a cited document, and the lore:// resource gives the same text
    document_id = asked["citations"][0]["document_id"]
    doc = _structured(await session.call_tool("get_document", {"document_id": document_id}))
    assert "The Alpha widget is blue" in doc["text"] and doc["uri"] == f"lore://documents/{document_id}"
    resource = await session.read_resource(doc["uri"])
    assert resource.contents[0].text == doc["text"]  # type: ignore[union-attr]
    return asked


async def _vault_document(session: ClientSession) -> str:
    """An admin's session finds the vault's document (the reader must not read it)."""
    arguments = {"query": "Omega gadget", "corpus": "vault", "k": 1}
    found = _structured(await session.call_tool("search", arguments))
    document_id: str = found["results"][0]["document_id"]
    return document_id


async def test_mcp_over_streamable_http_against_lore_serve(corpora: Corpora, tmp_path: Path) -> None:
    # Given lore serve, a reader's key and an admin's key, and a query bucket of 6 calls per key
    env = _env(corpora, rate_limit__query_burst="6", rate_limit__query_per_minute="1")
    with served_process(env, tmp_path / "serve.log") as base:
        # when an MCP client connects without a key, or with a bad one
        async with httpx.AsyncClient(base_url=base, timeout=30) as plain:
            unauthenticated = await plain.post("/mcp", json={})
            bad = await plain.post("/mcp", json={}, headers={"Authorization": "Bearer lore_nope"})
        # then both are 401 in Lore's error shape
        assert unauthenticated.status_code == bad.status_code == 401
        assert unauthenticated.json()["error"]["code"] == "unauthenticated", unauthenticated.text

        # when the SDK's client connects as the reader: every check of a reader's session holds
        async with _http_session(base, corpora.admin) as admin:
            secret = await _vault_document(admin)
        async with _http_session(base, corpora.reader) as session:
            await _reader_checks(session, corpora)
            # and the vault's document is not there for them, as a tool or as a resource
            hidden = await session.call_tool("get_document", {"document_id": secret})
            assert hidden.is_error and secret in hidden.content[0].text  # type: ignore[union-attr]
            with pytest.raises(Exception, match="no document"):
                await session.read_resource(f"lore://documents/{secret}")
            # and its searches and questions spend the key's query bucket, as /v1/query does
            calls = [await session.call_tool("search", {"query": "widget care", "k": 1}) for _ in range(3)]
            assert [c.is_error for c in calls] == [False, False, True]
            assert "too many query requests" in calls[-1].content[0].text  # type: ignore[union-attr]


async def test_mcp_over_stdio_acts_as_the_named_user(corpora: Corpora) -> None:
    # Given lore mcp started by the SDK's stdio client as the admin (by LORE_MCP__USER)
    async with _stdio_session(corpora, "root", via_env=True) as admin:
        secret = await _vault_document(admin)
        everything = _structured(await admin.call_tool("list_corpora", {}))
        assert [c["name"] for c in everything["corpora"]] == ["handbook", "vault"]
    # when it runs as the reader (by --user): a reader's session holds, and the vault stays hidden
    async with _stdio_session(corpora, "reader") as session:
        asked = await _reader_checks(session, corpora)
        assert json.dumps(asked)  # structured content is plain JSON
        hidden = await session.call_tool("get_document", {"document_id": secret})
        assert hidden.is_error


def test_lore_mcp_without_a_user_or_with_an_unknown_one_exits_with_a_usage_error(corpora: Corpora) -> None:
    import subprocess

    for args in ([], ["--user", "nobody"]):
        done = subprocess.run(
            [sys.executable, "-m", "cli", "mcp", *args],
            cwd=REPO,
            env=_env(corpora),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert done.stdout == "", "stdout is the protocol's: errors go to stderr"
        assert ("--user" if not args else "nobody") in done.stderr
