"""Blue/green re-embedding: a new generation is built beside the serving one, verified, switched to,
and the old one dropped, while searches go on answering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from core.components.embedding import canonical_model_name
from core.db.models import CorpusRow, DocumentBlocksRow, DocumentRow, IngestionJobRow, utcnow
from core.errors import BackendError, ConfigurationError, ConflictError
from core.indexing import collection_alias, collection_name
from core.resources import Resources, open_resources
from core.settings import IngestionSettings, Settings
from core.types import Chunk, ChunkPoint, SearchHit
from ingestion.jobs import request_cancel, this_worker
from ingestion.pipeline import ingest_paths
from ingestion.reindex import reindex_corpus
from retrieval.service import search

QUESTION = "Which river does the copper bridge cross?"
ORPHAN = "00000000-0000-4000-8000-000000000001"


def write_docs(root: Path, n: int = 8) -> Path:
    """Markdown files long enough to make several chunks each at small chunk sizes."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = "\n\n".join(
            f"Paragraph {j} of file {i}: the copper bridge number {i * 10 + j} crosses river {j}. "
            f"Its lantern was lit in winter {1900 + i + j}, and the harbour kept a beacon for it."
            for j in range(6)
        )
        (root / f"doc{i:02d}.md").write_text(f"# Bridge {i}\n\n{body}\n")
    return root


def settings_on(data_dir: Path, **ingestion: object) -> Settings:
    return Settings(
        data_dir=data_dir, ingestion=IngestionSettings.model_validate({"reindex_drain_s": 0, **ingestion})
    )


@pytest.fixture
async def res(tmp_path: Path) -> AsyncIterator[Resources]:
    async with open_resources(
        settings_on(tmp_path / "lore"), with_llm=False, migrate_sqlite=True
    ) as resources:
        yield resources


async def corpus_row(resources: Resources, name: str = "c") -> CorpusRow:
    async with resources.sessions() as session:
        row = (await session.execute(select(CorpusRow).where(CorpusRow.name == name))).scalar_one()
    return row


async def signatures(resources: Resources) -> dict[str, str]:
    async with resources.sessions() as session:
        rows = (await session.execute(select(DocumentRow))).scalars()
        return {Path(row.source).name: row.index_signature for row in rows}


def ranked(hits: list[SearchHit]) -> list[tuple[float, str]]:
    """Hits as (score, id), equal scores in ID order: a tie may come back in either order.

    Chunks tied at the lowest score may straddle the top-k cut, so which of them made it in is
    not compared, only how many did.
    """
    pairs = sorted(
        ((round(hit.score, 5), hit.chunk_id) for hit in hits), key=lambda pair: (-pair[0], pair[1])
    )
    lowest = pairs[-1][0] if pairs else None
    return [(score, "<tied at the cut>" if score == lowest else chunk) for score, chunk in pairs]


async def ask(resources: Resources, corpora: list[str] | None = None, k: int = 4) -> list[SearchHit]:
    return await search(resources, QUESTION, corpora=corpora or ["c"], k=k, timings={})


async def test_queries_issued_throughout_a_blue_green_reindex_all_succeed(
    res: Resources, tmp_path: Path, tiny_model: Path
) -> None:
    # Given a corpus serving generation 1
    await ingest_paths(res, [write_docs(tmp_path / "docs")], corpus="c")
    old = (await corpus_row(res)).collection
    answered: list[list[SearchHit]] = []
    failures: list[BaseException] = []
    # Set once the re-index has returned: the number of answers after which the asking stops.
    stop_at: list[int] = []

    async def ask_continuously() -> None:
        while not stop_at or len(answered) < stop_at[0]:
            try:
                answered.append(await ask(res))
            except Exception as exc:
                failures.append(exc)
            await asyncio.sleep(0)

    answered_while_building: list[int] = []

    class Watch:
        def start(self, total: int) -> None:
            answered_while_building.append(len(answered))

        def advance(self, source: str, status: str, chunks: int) -> None:
            answered_while_building.append(len(answered))

    # When a query task runs from before the re-index with a new model until after its end
    asking = asyncio.create_task(ask_continuously())
    await asyncio.sleep(0.2)
    summary = await reindex_corpus(res, "c", model=str(tiny_model), progress=Watch())
    stop_at.append(len(answered) + 3)
    await asyncio.wait_for(asking, timeout=60)

    # Then every query succeeded with hits, queries were answered while the new generation was
    # being built, and the last ones came from the new generation (the old one is gone)
    assert failures == []
    assert all(answered)
    assert answered_while_building[-1] > answered_while_building[0]
    new = (await corpus_row(res)).collection
    assert (
        (summary.old_collection, summary.new_collection)
        == (old, new)
        == (
            collection_name("c", 1),
            collection_name("c", 2),
        )
    )
    assert await res.store.collections() == [new]
    tiny = await res.embedder_for(str(tiny_model))
    retrieval = res.settings.retrieval
    direct = await res.store.search(
        new,
        dense=await tiny.embed_query(QUESTION),
        sparse=res.sparse.embed_query(QUESTION),
        k=4,
        weights=(retrieval.dense_weight, retrieval.sparse_weight),
        rrf_k=retrieval.rrf_k,
        fusion=retrieval.fusion,
    )
    assert ranked(answered[-1]) == ranked(direct)


async def test_reindex_with_a_new_model_builds_verifies_and_switches_a_generation(
    res: Resources, tmp_path: Path, tiny_model: Path
) -> None:
    await ingest_paths(res, [write_docs(tmp_path / "docs")], corpus="c")
    before = await corpus_row(res)

    summary = await reindex_corpus(res, "c", model=str(tiny_model))

    after = await corpus_row(res)
    assert summary.state == "succeeded" and summary.documents == 8
    assert (after.collection, after.generation, after.embedding_model) == (
        collection_name("c", 2),
        2,
        canonical_model_name(str(tiny_model)),
    )
    assert (after.chunk_tokens, after.chunk_overlap_tokens) == (
        before.chunk_tokens,
        before.chunk_overlap_tokens,
    )
    # The switch bumps the version, so no answer cached before it is served after it.
    assert after.version == before.version + 1
    assert after.collection is not None
    async with res.sessions() as session:
        counts = (await session.execute(select(DocumentRow.chunk_count))).scalars().all()
        job = await session.get(IngestionJobRow, summary.job_id)
    assert summary.chunks_embedded == sum(counts) == await res.store.count(after.collection)
    assert job is not None and (job.kind, job.state, job.documents_changed) == ("reindex", "succeeded", 8)
    assert job.chunks_embedded == summary.chunks_embedded and job.finished_at is not None
    # The new generation holds the new model's 32-dimensional vectors; the old one is dropped.
    with pytest.raises(ConfigurationError, match="32"):
        await res.store.ensure_collection(after.collection, dim=384)
    assert await res.store.collections() == [after.collection]
    assert await res.store.aliases() == {collection_alias("c"): after.collection}


async def test_reingest_after_a_reindex_embeds_nothing(
    res: Resources, tmp_path: Path, tiny_model: Path
) -> None:
    docs = write_docs(tmp_path / "docs")
    await ingest_paths(res, [docs], corpus="c")
    await reindex_corpus(res, "c", model=str(tiny_model), chunk_tokens=48, chunk_overlap_tokens=8)
    collection = (await corpus_row(res)).collection
    assert collection is not None
    ids = await res.store.chunk_ids(collection)

    again = await ingest_paths(res, [docs], corpus="c")

    assert (again.documents_unchanged, again.chunks_embedded) == (8, 0)
    assert await res.store.chunk_ids(collection) == ids


async def test_a_chunker_change_gives_the_chunks_a_fresh_ingest_with_it_gives(
    res: Resources, tmp_path: Path
) -> None:
    docs = write_docs(tmp_path / "docs")
    await ingest_paths(res, [docs], corpus="c")
    default_ids = await res.store.chunk_ids(collection_name("c", 1))

    await reindex_corpus(res, "c", chunk_tokens=48, chunk_overlap_tokens=8)

    fresh_settings = settings_on(tmp_path / "fresh", chunk_tokens=48, chunk_overlap_tokens=8)
    async with open_resources(fresh_settings, with_llm=False, migrate_sqlite=True) as fresh:
        await ingest_paths(fresh, [docs], corpus="c")
        fresh_ids = await fresh.store.chunk_ids(collection_name("c", 1))
        fresh_signatures = await signatures(fresh)
    reindexed_ids = await res.store.chunk_ids(collection_name("c", 2))
    assert reindexed_ids == fresh_ids
    assert len(reindexed_ids) > len(default_ids)
    assert await signatures(res) == fresh_signatures


async def test_a_cancelled_reindex_leaves_the_old_generation_serving(
    res: Resources, tmp_path: Path, tiny_model: Path
) -> None:
    await ingest_paths(res, [write_docs(tmp_path / "docs")], corpus="c")
    before = await corpus_row(res)
    hits_before = await ask(res)
    pending: list[asyncio.Task[None]] = []

    class CancelAfterFirstDocument:
        def start(self, total: int) -> None: ...

        def advance(self, source: str, status: str, chunks: int) -> None:
            # What `lore jobs cancel` does from another process, once the first document is in.
            if not pending:
                pending.append(asyncio.create_task(request_cancel(res.sessions, "r1")))

    summary = await reindex_corpus(
        res, "c", model=str(tiny_model), progress=CancelAfterFirstDocument(), job_id="r1"
    )
    await asyncio.gather(*pending)

    assert summary.state == "cancelled" and 1 <= summary.documents < 8
    after = await corpus_row(res)
    assert (after.collection, after.generation, after.version) == (
        before.collection,
        before.generation,
        before.version,
    )
    assert await res.store.collections() == [before.collection]
    assert ranked(await ask(res)) == ranked(hits_before)
    async with res.sessions() as session:
        job = await session.get(IngestionJobRow, summary.job_id)
    assert job is not None and job.state == "cancelled"


async def test_a_reindex_whose_count_does_not_verify_fails_and_leaves_the_old_generation_serving(
    res: Resources, tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ingest_paths(res, [write_docs(tmp_path / "docs")], corpus="c")
    before = await corpus_row(res)
    hits_before = await ask(res)
    real_count = res.store.count

    async def one_short(name: str) -> int:
        # A point lost on the way: the new generation holds one chunk fewer than its documents.
        return await real_count(name) - (name == collection_name("c", 2))

    monkeypatch.setattr(res.store, "count", one_short)

    with pytest.raises(BackendError, match="not switched"):
        await reindex_corpus(res, "c", model=str(tiny_model))

    assert (await corpus_row(res)).collection == before.collection
    assert await res.store.collections() == [before.collection]
    assert ranked(await ask(res)) == ranked(hits_before)
    async with res.sessions() as session:
        job = (
            await session.execute(select(IngestionJobRow).where(IngestionJobRow.kind == "reindex"))
        ).scalar_one()
    assert job.state == "failed" and "not switched" in (job.error or "")


async def test_what_a_killed_reindex_built_is_dropped_by_the_next_attempt(
    res: Resources, tmp_path: Path, tiny_model: Path
) -> None:
    await ingest_paths(res, [write_docs(tmp_path / "docs", 3)], corpus="c")
    row = await corpus_row(res)
    # Given a re-index killed half way: its job still 'running' for a process that is gone, and a
    # partial generation 2 with a chunk no document has
    process = await asyncio.create_subprocess_exec("true")
    await process.wait()
    async with res.sessions() as session:
        session.add(
            IngestionJobRow(
                id="killed",
                corpus_id=row.id,
                kind="reindex",
                state="running",
                heartbeat_at=utcnow(),
                worker=f"{this_worker().rpartition(':')[0]}:{process.pid}",
            )
        )
        await session.commit()
    orphan = Chunk(id=ORPHAN, document_id="gone", corpus="c", ordinal=0, text="x", source="gone.md", title="")
    await res.store.ensure_collection(collection_name("c", 2), dim=32)
    await res.store.upsert(collection_name("c", 2), [ChunkPoint(orphan, [0.1] * 32)])

    # When the re-index runs again, it completes with exactly the documents' chunks
    summary = await reindex_corpus(res, "c", model=str(tiny_model))

    assert summary.state == "succeeded" and summary.new_collection == collection_name("c", 2)
    assert ORPHAN not in await res.store.chunk_ids(collection_name("c", 2))
    async with res.sessions() as session:
        killed = await session.get(IngestionJobRow, "killed")
    assert killed is not None and killed.state == "interrupted"


async def document_ids(resources: Resources) -> list[str]:
    async with resources.sessions() as session:
        return list((await session.execute(select(DocumentRow.id).order_by(DocumentRow.source))).scalars())


async def test_a_reindex_and_an_ingest_of_one_corpus_never_run_at_once(
    res: Resources, tmp_path: Path
) -> None:
    docs = write_docs(tmp_path / "docs", 2)
    await ingest_paths(res, [docs], corpus="c")
    row = await corpus_row(res)
    for kind in ("ingest", "reindex"):
        async with res.sessions() as session:
            session.add(
                IngestionJobRow(
                    id=kind,
                    corpus_id=row.id,
                    kind=kind,
                    state="running",
                    heartbeat_at=utcnow(),
                    worker=this_worker(),
                )
            )
            await session.commit()

        with pytest.raises(ConflictError, match=f"running {kind} job"):
            await reindex_corpus(res, "c")
        if kind == "reindex":
            with pytest.raises(ConflictError, match="being re-indexed"):
                await ingest_paths(res, [docs], corpus="c")

        async with res.sessions() as session:
            await session.execute(delete(IngestionJobRow).where(IngestionJobRow.id == kind))
            await session.commit()
    assert await res.store.collections() == [row.collection]


async def test_a_model_that_cannot_load_changes_nothing(res: Resources, tmp_path: Path) -> None:
    await ingest_paths(res, [write_docs(tmp_path / "docs", 2)], corpus="c")
    before = await corpus_row(res)

    with pytest.raises(ConfigurationError, match="offline"):
        await reindex_corpus(res, "c", model=str(tmp_path / "no-such-model"))

    async with res.sessions() as session:
        kinds = (await session.execute(select(IngestionJobRow.kind))).scalars().all()
    assert kinds == ["ingest"]
    assert (await corpus_row(res)).collection == before.collection
    assert await res.store.collections() == [before.collection]


async def test_documents_without_stored_blocks_have_their_stored_chunks_re_embedded(
    res: Resources, tmp_path: Path, tiny_model: Path
) -> None:
    docs = write_docs(tmp_path / "docs", 3)
    await ingest_paths(res, [docs], corpus="c")
    first, *_ = await document_ids(res)
    chunks_before = await res.store.chunk_ids(collection_name("c", 1), document_id=first)
    async with res.sessions() as session:
        await session.execute(delete(DocumentBlocksRow).where(DocumentBlocksRow.document_id == first))
        await session.commit()

    summary = await reindex_corpus(res, "c", model=str(tiny_model), chunk_tokens=48, chunk_overlap_tokens=8)

    # Its chunks are the ones it had, now embedded with the new model; the others are re-chunked.
    assert await res.store.chunk_ids(collection_name("c", 2), document_id=first) == chunks_before
    assert summary.chunks_embedded == await res.store.count(collection_name("c", 2))
    # Its signature says it still has the old chunking, so the next ingest re-chunks it (only it).
    again = await ingest_paths(res, [docs], corpus="c")
    assert (again.documents_changed, again.documents_unchanged) == (1, 2)


async def test_search_embeds_once_per_model_and_queries_only_the_allowed_corpora(
    res: Resources, tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = write_docs(tmp_path / "docs", 2)
    for corpus in ("a", "b", "t"):
        await ingest_paths(res, [docs], corpus=corpus)
    await reindex_corpus(res, "t", model=str(tiny_model))
    tiny = await res.embedder_for(str(tiny_model))
    calls: list[str] = []
    for embedder in (res.embedder, tiny):
        real = embedder.embed_query

        async def counted(text: str, real: object = real, name: str = embedder.model_name) -> list[float]:
            calls.append(name)
            return await real(text)  # type: ignore[operator, no-any-return]

        monkeypatch.setattr(embedder, "embed_query", counted)

    hits = await ask(res, ["a", "b", "t"], k=50)

    assert sorted(calls) == sorted([res.embedder.model_name, tiny.model_name])
    assert {hit.corpus for hit in hits} == {"a", "b", "t"}
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert {hit.corpus for hit in await ask(res, ["t"], k=50)} == {"t"}


async def test_reindex_on_the_qdrant_client_backend_moves_the_alias(tmp_path: Path, tiny_model: Path) -> None:
    """qdrant-client's local mode keeps aliases as a server does (same update_collection_aliases call)."""
    settings = Settings(
        data_dir=tmp_path / "lore",
        vector_store={"url": ":memory:"},  # type: ignore[arg-type]
        ingestion=IngestionSettings(reindex_drain_s=0),
    )
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [write_docs(tmp_path / "docs", 3)], corpus="c")
        assert await resources.store.aliases() == {collection_alias("c"): collection_name("c", 1)}

        summary = await reindex_corpus(resources, "c", model=str(tiny_model))

        assert await resources.store.aliases() == {collection_alias("c"): collection_name("c", 2)}
        assert await resources.store.collections() == [collection_name("c", 2)]
        assert summary.chunks_embedded == await resources.store.count(collection_alias("c")) > 0
        assert await ask(resources)
