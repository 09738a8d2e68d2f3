"""Shared fixtures: settings on a temporary data dir, the real models, real service URLs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from core.components.embedding import Embedder
from core.settings import EmbeddingSettings, Settings

if TYPE_CHECKING:
    from core.resources import Resources

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Embedded-mode settings on ``data_dir``; nested sections may be given as dicts."""
    return Settings(data_dir=data_dir, **overrides)


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        return make_settings(tmp_path / "lore", **overrides)

    return factory


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    """Embedded resources (real embedder, Qdrant Edge, SQLite) on a fresh data dir; llama.cpp is
    loaded only by a test that uses ``resources.llm`` (most replace it with a scripted LLM)."""
    from core.resources import open_resources

    async with open_resources(make_settings(tmp_path / "lore"), with_llm=False, migrate_sqlite=True) as res:
        yield res


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder(EmbeddingSettings())


def save_tiny_bert(root: Path, model_class: type[Any], **config: Any) -> None:
    """A random (seeded) one-layer BERT of 32 dimensions of ``model_class`` (BertModel, or a head
    over it), behind MiniLM's tokenizer, saved in ``root``: a genuinely different model, offline."""
    import torch
    from transformers import AutoTokenizer, BertConfig

    from core.components.embedding import default_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    bert = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        **config,
    )
    torch.manual_seed(0)
    model_class(bert).save_pretrained(root)
    tokenizer.save_pretrained(root)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A genuinely different embedding model, made offline: one BERT layer of 32 dimensions with
    random (seeded) weights behind MiniLM's tokenizer, saved as a sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertModel

    root = tmp_path_factory.mktemp("tiny-model")
    save_tiny_bert(root / "bert", BertModel)
    transformer = Transformer(str(root / "bert"), max_seq_length=256)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling]).save(str(root / "model"))
    return root / "model"


def _service_url(name: str, what: str) -> str:
    url = os.environ.get(name)
    if not url:
        pytest.skip(f"{name} is not set: these tests need a real {what} server (.ci/run sets it)")
    parts = urlsplit(url.replace("+asyncpg", ""))
    try:
        socket.create_connection((parts.hostname, parts.port or 0), timeout=3).close()
    except OSError as exc:
        message = f"{what} at {parts.hostname}:{parts.port} is unreachable: {exc}"
        if os.environ.get("LORE_TEST_REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _service_url("LORE_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture
async def fresh_postgres_url(postgres_url: str) -> AsyncIterator[str]:
    """A new, empty database on the test server (dropped afterwards): its SQLAlchemy URL."""
    async with new_postgres_database(postgres_url) as url:
        yield url


@asynccontextmanager
async def new_postgres_database(postgres_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server at ``postgres_url``, dropped afterwards: its SQLAlchemy
    URL (for fixtures of a wider scope than ``fresh_postgres_url``)."""
    import uuid

    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    name = f"lore_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def redis_url() -> str:
    return _service_url("LORE_TEST_REDIS_URL", "Redis")


async def create_user_with_key(
    settings: Settings, username: str, *, role: str = "reader", grants: tuple[str, ...] = ()
) -> str:
    """Create a user (and its grants) in the settings' database and return a fresh API key for it."""
    from api.auth import service as auth
    from core.db import migrate
    from core.db.engine import create_engine, session_factory
    from ingestion.corpus_index import get_or_create_corpus

    engine = create_engine(settings)
    try:
        await migrate.upgrade(engine)
        async with session_factory(engine)() as session:
            user = await auth.create_user(session, username=username, password=None, role=role)  # type: ignore[arg-type]
            for corpus in grants:
                await get_or_create_corpus(session, corpus)
                await auth.grant(session, username=username, corpus=corpus)
            key = await auth.create_api_key(
                session, user=user, name="tests", prefix=settings.auth.api_key_prefix
            )
            await session.commit()
            return key.plaintext
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def user_key() -> Callable[..., Any]:
    """``await user_key(settings, name, role=..., grants=(...))`` -> an API key for a new user."""
    return create_user_with_key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama.cpp's own OpenAI-compatible server running SmolLM2 on a free local port."""
    import httpx

    from core.components.llm import smollm2_path

    port = _free_port()
    # A file, not a pipe: the server logs a lot and would block on a full pipe.
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(smollm2_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--model_alias",
            "smollm2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama_cpp.server exited: {log.read()[-2000:]}")
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
