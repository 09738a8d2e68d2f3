"""The vector store's two backends, Qdrant Edge and qdrant-client (local mode), run side by side.

Congruence tests feed both the same points and the same queries and expect the same answers, so
what the fast embedded backend shows holds for the Qdrant server too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from core.components.vectorstore import Bm25Encoder, VectorStore, open_vector_store
from core.components.vectorstore.edge import EdgeVectorStore
from core.errors import BackendError, ConfigurationError, InvalidInputError, StoreLockedError
from core.ids import chunk_id, document_id
from core.indexing import collection_alias, collection_name
from core.settings import Settings
from core.types import Chunk, ChunkPoint, SearchFilter, SearchHit

REPO = Path(__file__).resolve().parents[3]
DIM = 8
CORPORA = ("alpha", "beta", "gamma")
# A sentence reads better than 25 quoted words.
WORDS = (  # noqa: SIM905
    "river bridge engine valve signal copper harbour lantern meadow orbit pylon quarry saddle timber "
    "tunnel vessel winter glacier furnace compass ladder mirror anchor beacon cellar"
).split()
QUERIES = ("copper valve engine", "winter glacier river", "lantern beacon harbour mirror", "timber")
encoder = Bm25Encoder()


def make_points(rng: random.Random, *, corpus: str, source: str, texts: Sequence[str]) -> list[ChunkPoint]:
    """One document's chunks with random dense vectors and real BM25 vectors."""
    doc = document_id(corpus, source)
    sparse = encoder.embed_documents(texts)
    return [
        ChunkPoint(
            chunk=Chunk(
                id=chunk_id(doc, text, n, "test"),
                document_id=doc,
                corpus=corpus,
                ordinal=n,
                text=text,
                source=source,
                title=source.upper(),
                page=n + 1,
                headings=("Intro",),
            ),
            dense=[rng.uniform(-1, 1) for _ in range(DIM)],
            sparse=vector,
        )
        for n, (text, vector) in enumerate(zip(texts, sparse, strict=True))
    ]


def library(seed: int = 7) -> list[list[ChunkPoint]]:
    """Documents of random texts spread over the corpora: one per inner list.

    No two texts have the same length, so no two BM25 scores tie: the backends break ties
    differently, and a tie in one ranking would move chunks in the fused one.
    """
    rng = random.Random(seed)
    sizes = [rng.randint(3, 8) for _ in range(12)]
    lengths = iter(rng.sample(range(3, 3 + sum(sizes)), sum(sizes)))
    return [
        make_points(
            rng,
            corpus=CORPORA[n % len(CORPORA)],
            source=f"doc-{n}.txt",
            texts=[" ".join(rng.choices(WORDS, k=next(lengths))) for _ in range(size)],
        )
        for n, size in enumerate(sizes)
    ]


def coll(corpus: str) -> str:
    """Each corpus in its own collection, as Lore keeps them."""
    return collection_name(corpus, 1)


async def fill(store: VectorStore, docs: Sequence[Sequence[ChunkPoint]]) -> None:
    for corpus in CORPORA:
        await store.ensure_collection(coll(corpus), dim=DIM)
    for doc in docs:
        await store.upsert(coll(doc[0].chunk.corpus), doc)


@pytest.fixture
async def edge(settings_factory: Callable[..., Settings]) -> AsyncIterator[VectorStore]:
    store = await open_vector_store(settings_factory())
    await store.ensure_collection(coll("alpha"), dim=DIM)
    yield store
    await store.close()


@pytest.fixture
async def local(settings_factory: Callable[..., Settings]) -> AsyncIterator[VectorStore]:
    store = await open_vector_store(settings_factory(vector_store={"url": ":memory:"}))
    await store.ensure_collection(coll("alpha"), dim=DIM)
    yield store
    await store.close()


@pytest.fixture(params=["edge", "local"])
def store(request: pytest.FixtureRequest) -> VectorStore:
    """Each backend in turn."""
    backend: VectorStore = request.getfixturevalue(request.param)
    return backend


def ranked(hits: list[SearchHit]) -> list[tuple[float, str]]:
    """Hits as (score, id), equal scores put in ID order: the backends break ties differently.

    Chunks tied at the lowest score may straddle the top-k cut, so which of them made it in is
    not compared, only how many did.
    """
    pairs = sorted(
        ((round(hit.score, 5), hit.chunk_id) for hit in hits), key=lambda pair: (-pair[0], pair[1])
    )
    lowest = pairs[-1][0] if pairs else None
    return [(score, "<tied at the cut>" if score == lowest else chunk) for score, chunk in pairs]


def assert_same_hits(edge_hits: list[SearchHit], local_hits: list[SearchHit]) -> None:
    assert edge_hits, "a congruence check over no hits proves nothing"
    edge_ranked, local_ranked = ranked(edge_hits), ranked(local_hits)
    assert [chunk for _, chunk in edge_ranked] == [chunk for _, chunk in local_ranked]
    assert [score for score, _ in edge_ranked] == pytest.approx(
        [score for score, _ in local_ranked], abs=1e-4
    )


async def test_backends_agree_after_upserts_and_deletes(edge: VectorStore, local: VectorStore) -> None:
    # Given the same documents, including a stopwords-only chunk (empty sparse vector) and a
    # chunk without one, in both stores, one collection per corpus
    docs = library()
    extra = make_points(random.Random(1), corpus="alpha", source="odd.txt", texts=["the and of it", "copper"])
    extra[1] = ChunkPoint(chunk=extra[1].chunk, dense=extra[1].dense, sparse=None)
    points = [point for doc in [*docs, extra] for point in doc]
    # When a document is re-indexed keeping two of its chunks, and a corpus's collection is dropped
    dropped_doc = docs[0][0].chunk
    kept = {point.chunk.id for point in docs[0][:2]}
    for store in (edge, local):
        await fill(store, [*docs, extra])
        await store.delete_document(coll(dropped_doc.corpus), dropped_doc.document_id, keep_chunk_ids=kept)
        await store.drop_collection(coll("gamma"))

    # Then both hold exactly the expected chunks, in the expected collections
    expected = {
        p.chunk.id
        for p in points
        if p.chunk.corpus != "gamma" and p.chunk.document_id != dropped_doc.document_id
    }
    expected |= kept
    for store in (edge, local):
        assert await store.collections() == [coll("alpha"), coll("beta")]
        found = await store.chunk_ids(coll("alpha")) | await store.chunk_ids(coll("beta"))
        assert found == expected
        assert await store.count(coll("alpha")) + await store.count(coll("beta")) == len(expected)
    assert await edge.chunk_ids(coll("beta")) == await local.chunk_ids(coll("beta"))

    # And every kind of search ranks the same chunks the same way, with the same scores, and
    # finds only its own collection's chunks
    rng = random.Random(3)
    for text in QUERIES:
        dense = [rng.uniform(-1, 1) for _ in range(DIM)]
        sparse = encoder.embed_query(text)
        for corpus in ("alpha", "beta"):
            for k in (3, 50):
                for dense_q, sparse_q in ((dense, None), (None, sparse), (dense, sparse)):
                    edge_hits = await edge.search(coll(corpus), dense=dense_q, sparse=sparse_q, k=k)
                    local_hits = await local.search(coll(corpus), dense=dense_q, sparse=sparse_q, k=k)
                    assert_same_hits(edge_hits, local_hits)
                    assert all(hit.corpus == corpus for hit in edge_hits)
                fused = [
                    await backend.search(coll(corpus), dense=dense, sparse=sparse, k=k, fusion="dbsf")
                    for backend in (edge, local)
                ]
                assert_same_hits(*fused)


async def test_hybrid_search_fuses_with_rrf_k_60(store: VectorStore) -> None:
    points = make_points(
        random.Random(5), corpus="alpha", source="a.txt", texts=["copper valve", "river bridge"]
    )
    await store.upsert(coll("alpha"), points)
    top = points[0]

    hits = await store.search(coll("alpha"), dense=top.dense, sparse=encoder.embed_query("copper"), k=2)

    # First in both rankings: 1/60 + 1/60. The other chunk is second in dense and absent from sparse.
    assert [hit.chunk_id for hit in hits] == [top.chunk.id, points[1].chunk.id]
    assert hits[0].score == pytest.approx(2 / 60)
    assert hits[1].score == pytest.approx(1 / 61)


async def test_hybrid_search_fuses_with_dbsf(store: VectorStore) -> None:
    texts = ["copper valve", "copper pipe fitting", "river bridge", "copper copper wire", "stone wall"]
    points = make_points(random.Random(5), corpus="alpha", source="a.txt", texts=texts)
    await store.upsert(coll("alpha"), points)
    dense, sparse = points[2].dense, encoder.embed_query("copper wire")

    # Each ranking's scores scaled by their mean +- 3 (sample) standard deviations, then summed.
    expected: dict[str, float] = {}
    for ranking in (
        await store.search(coll("alpha"), dense=dense, sparse=None, k=10),
        await store.search(coll("alpha"), dense=None, sparse=sparse, k=10),
    ):
        scores = [hit.score for hit in ranking]
        mean = sum(scores) / len(scores)
        spread = 3 * (sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)) ** 0.5
        for hit in ranking:
            expected[hit.chunk_id] = expected.get(hit.chunk_id, 0.0) + (hit.score - mean + spread) / (
                2 * spread
            )

    hits = await store.search(coll("alpha"), dense=dense, sparse=sparse, k=10, fusion="dbsf")

    assert {hit.chunk_id: hit.score for hit in hits} == pytest.approx(expected, abs=1e-4)
    assert [hit.chunk_id for hit in hits] == sorted(expected, key=lambda chunk: -expected[chunk])


async def test_search_hit_carries_the_chunk_payload(store: VectorStore) -> None:
    (point,) = make_points(random.Random(2), corpus="beta", source="manual.pdf", texts=["anchor ladder"])
    await store.ensure_collection(coll("beta"), dim=DIM)
    await store.upsert(coll("beta"), [point])

    (hit,) = await store.search(coll("beta"), dense=point.dense, sparse=None, k=4)

    assert hit.chunk_id == point.chunk.id
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    assert (hit.document_id, hit.corpus, hit.text, hit.source) == (
        point.chunk.document_id,
        "beta",
        "anchor ladder",
        "manual.pdf",
    )
    assert (hit.title, hit.page, hit.headings) == ("MANUAL.PDF", 1, ("Intro",))


async def test_stored_chunks_come_back_whole_in_ordinal_order(store: VectorStore) -> None:
    docs = library()
    await fill(store, docs)
    doc = docs[3]

    chunks = await store.chunks(coll(doc[0].chunk.corpus), document_id=doc[0].chunk.document_id)

    assert chunks == [point.chunk for point in doc]
    assert await store.chunk_ids(coll(doc[0].chunk.corpus), document_id=doc[0].chunk.document_id) == {
        point.chunk.id for point in doc
    }


async def test_a_collection_that_does_not_exist_is_a_backend_error(store: VectorStore) -> None:
    with pytest.raises(BackendError):
        await store.search(coll("nowhere"), dense=[0.1] * DIM, sparse=None, k=3)
    with pytest.raises(BackendError):
        await store.count(coll("nowhere"))
    # Dropping it is no error: a drop that crashed half way can simply be repeated.
    await store.drop_collection(coll("nowhere"))


async def test_upserting_the_same_points_twice_changes_nothing(store: VectorStore) -> None:
    docs = library()
    await fill(store, docs)
    await fill(store, docs)

    points = [point for doc in docs for point in doc]
    assert sum([await store.count(coll(corpus)) for corpus in CORPORA]) == len(points)
    assert await store.count(coll("alpha")) == sum(p.chunk.corpus == "alpha" for p in points)


async def test_search_needs_a_vector(store: VectorStore) -> None:
    with pytest.raises(InvalidInputError):
        await store.search(coll("alpha"), dense=None, sparse=None, k=3)


async def test_ensure_collection_is_idempotent_but_refuses_another_dim(store: VectorStore) -> None:
    points = make_points(random.Random(4), corpus="alpha", source="a.txt", texts=["mirror"])
    await store.upsert(coll("alpha"), points)

    assert await store.ensure_collection(coll("alpha"), dim=DIM) is False
    with pytest.raises(ConfigurationError, match="384"):
        await store.ensure_collection(coll("alpha"), dim=384)
    # Another collection may hold another size: a new generation for another model.
    assert await store.ensure_collection(collection_name("alpha", 2), dim=384) is True

    assert await store.chunk_ids(coll("alpha")) == {points[0].chunk.id}


async def test_an_alias_moves_in_one_step_and_goes_with_its_collection(store: VectorStore) -> None:
    blue, green, alias = collection_name("alpha", 1), collection_name("alpha", 2), collection_alias("alpha")
    await store.ensure_collection(green, dim=DIM)

    await store.set_alias(alias, blue)
    assert await store.aliases() == {alias: blue}
    await store.set_alias(alias, green)
    assert await store.aliases() == {alias: green}
    with pytest.raises(BackendError):
        await store.set_alias(alias, collection_name("alpha", 9))
    assert await store.aliases() == {alias: green}

    await store.drop_collection(green)
    assert await store.aliases() == {}
    assert await store.collections() == [blue]


async def test_edge_data_persists_after_close_and_reopen(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    docs = library()
    store = await open_vector_store(settings)
    await fill(store, docs)
    await store.set_alias(collection_alias("beta"), coll("beta"))
    before = await store.search(
        coll("alpha"), dense=docs[0][0].dense, sparse=encoder.embed_query("copper"), k=5
    )
    await store.close()

    reopened = await open_vector_store(settings)
    try:
        assert await reopened.collections() == sorted(coll(corpus) for corpus in CORPORA)
        assert await reopened.aliases() == {collection_alias("beta"): coll("beta")}
        assert await reopened.count(coll("alpha")) == sum(
            len(d) for d in docs if d[0].chunk.corpus == "alpha"
        )
        after = await reopened.search(
            coll("alpha"), dense=docs[0][0].dense, sparse=encoder.embed_query("copper"), k=5
        )
        # Equal RRF scores may come back in another order after a reload.
        assert ranked(after) == ranked(before)
    finally:
        await reopened.close()


async def test_edge_store_is_locked_while_open(tmp_path: Path) -> None:
    path = tmp_path / "qdrant"
    first = await EdgeVectorStore.open(path)

    # flock belongs to the open file description, so a second open in this process is refused too.
    with pytest.raises(StoreLockedError, match=re.escape(str(path))) as refused:
        await EdgeVectorStore.open(path)
    assert "lore serve" in refused.value.message
    # And so is another process.
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import asyncio, sys\n"
        "from core.components.vectorstore.edge import EdgeVectorStore\n"
        "from core.errors import StoreLockedError\n"
        "try:\n"
        f"    asyncio.run(EdgeVectorStore.open(__import__('pathlib').Path({str(path)!r})))\n"
        "except StoreLockedError:\n"
        "    sys.exit(3)\n",
        cwd=REPO,
    )
    assert await child.wait() == 3

    await first.close()
    second = await EdgeVectorStore.open(path)
    await second.close()


async def test_an_old_single_collection_data_dir_is_refused_with_what_to_do(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    # Given a data dir as an older Lore left it: one shard, with its own lock, in qdrant/lore_chunks/
    settings = settings_factory()
    scratch = await EdgeVectorStore.open(tmp_path / "scratch")
    await scratch.ensure_collection("lore_chunks", dim=DIM)
    await scratch.close()
    legacy = settings.data_dir / "qdrant" / "lore_chunks"
    legacy.parent.mkdir(parents=True)
    shutil.move(tmp_path / "scratch" / "lore_chunks", legacy)
    (legacy / "lore.lock").touch()

    # Then opening it says what to do, and deletes nothing
    with pytest.raises(ConfigurationError, match="lore_chunks") as refused:
        await open_vector_store(settings)
    assert "Delete that vector store" in refused.value.message and "ingest" in refused.value.message
    assert (legacy / "edge_config.json").exists()


async def test_a_qdrant_with_the_old_single_collection_is_refused(tmp_path: Path) -> None:
    from qdrant_client import AsyncQdrantClient, models

    client = AsyncQdrantClient(path=str(tmp_path / "q"))
    await client.create_collection(
        "lore_chunks", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE)
    )
    await client.close()

    with pytest.raises(ConfigurationError, match="lore_chunks"):
        await open_vector_store(
            Settings(data_dir=tmp_path / "lore", vector_store={"url": f"path:{tmp_path / 'q'}"})
        )


async def test_edge_answers_searches_while_upserting(edge: VectorStore) -> None:
    docs = [doc for doc in library() if doc[0].chunk.corpus == "alpha"]
    dense = docs[0][0].dense

    async def searches() -> None:
        for _ in range(50):
            await edge.search(coll("alpha"), dense=dense, sparse=encoder.embed_query("copper"), k=3)

    await asyncio.gather(searches(), searches(), *(edge.upsert(coll("alpha"), doc) for doc in docs))

    assert await edge.count(coll("alpha")) == sum(len(doc) for doc in docs)


async def test_qdrant_local_mode_on_disk_keeps_data(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory(vector_store={"url": f"path:{tmp_path / 'qdrant-local'}"})
    points = library()[0]
    store = await open_vector_store(settings)
    await store.ensure_collection(coll("alpha"), dim=DIM)
    await store.upsert(coll("alpha"), points)
    await store.set_alias(collection_alias("alpha"), coll("alpha"))
    await store.close()

    reopened = await open_vector_store(settings)
    try:
        assert await reopened.chunk_ids(coll("alpha")) == {point.chunk.id for point in points}
        assert await reopened.aliases() == {collection_alias("alpha"): coll("alpha")}
    finally:
        await reopened.close()


async def test_unknown_vector_store_url_is_refused(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigurationError, match="qdrant:6333"):
        await open_vector_store(settings_factory(vector_store={"url": "qdrant:6333"}))


def test_bm25_documents_carry_saturated_term_frequencies_and_queries_unit_weights() -> None:
    # IDF is the store's job: a one-word document gets BM25's term-frequency part alone,
    # tf * (k + 1) / (tf + k * (1 - b + b * len / avg_len)) with k = 1.2, b = 0.75.
    (fox,) = encoder.embed_documents(["fox"])
    assert fox.values == [pytest.approx(2.2 / (1 + 1.2 * (0.25 + 0.75 / 150)))]
    # Stemmed and with stopwords dropped, on both sides alike.
    query = encoder.embed_query("the foxes and the fox")
    assert query.indices == fox.indices
    assert query.values == [1.0]
    assert encoder.embed_documents(["the and of it"])[0].indices == []


async def test_hybrid_search_weights_each_ranking(store: VectorStore) -> None:
    points = make_points(
        random.Random(5), corpus="alpha", source="a.txt", texts=["copper valve", "river bridge"]
    )
    await store.upsert(coll("alpha"), points)
    top = points[0]

    hits = await store.search(
        coll("alpha"),
        dense=top.dense,
        sparse=encoder.embed_query("copper"),
        k=2,
        weights=(0.5, 2.0),
        rrf_k=60,
    )

    # Qdrant's weighted RRF divides each rank by its ranking's weight: 1 / (rank / weight + 60 - 1),
    # with dense weight 0.5 and sparse weight 2.
    assert [hit.chunk_id for hit in hits] == [top.chunk.id, points[1].chunk.id]
    assert hits[0].score == pytest.approx(1 / (1 / 0.5 + 59) + 1 / (1 / 2 + 59))
    assert hits[1].score == pytest.approx(1 / (2 / 0.5 + 59))


async def test_hybrid_search_takes_the_rrf_constant(store: VectorStore) -> None:
    points = make_points(
        random.Random(5), corpus="alpha", source="a.txt", texts=["copper valve", "river bridge"]
    )
    await store.upsert(coll("alpha"), points)
    top = points[0]

    hits = await store.search(
        coll("alpha"), dense=top.dense, sparse=encoder.embed_query("copper"), k=2, rrf_k=10
    )

    assert hits[0].score == pytest.approx(2 / 10)
    assert hits[1].score == pytest.approx(1 / 11)


def dated(points: Sequence[ChunkPoint], *, doc_type: str, modified: int) -> list[ChunkPoint]:
    return [
        ChunkPoint(dataclasses.replace(p.chunk, doc_type=doc_type, modified=modified), p.dense, p.sparse)
        for p in points
    ]


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
async def test_filters_apply_inside_the_query_in_every_mode(store: VectorStore, mode: str) -> None:
    rng = random.Random(11)
    # Many chunks that match the query well but fail the filter: a filter applied after the top k
    # was taken would return fewer than k.
    noise = dated(
        make_points(rng, corpus="alpha", source="noise.pdf", texts=["copper valve engine"] * 30),
        doc_type="pdf",
        modified=1_600_000_000,
    )
    wanted = dated(
        make_points(rng, corpus="alpha", source="notes.md", texts=["copper", "valve pylon", "engine winter"]),
        doc_type="markdown",
        modified=1_700_000_000,
    )
    await store.upsert(coll("alpha"), [*noise, *wanted])
    dense = noise[0].dense if mode != "sparse" else None
    sparse = encoder.embed_query("copper valve engine") if mode != "dense" else None

    async def found(chosen: SearchFilter) -> set[str]:
        hits = await store.search(coll("alpha"), dense=dense, sparse=sparse, k=3, filter=chosen)
        return {hit.source for hit in hits} if len(hits) == 3 else {f"only {len(hits)} hits"}

    assert await found(SearchFilter(doc_types=("markdown",))) == {"notes.md"}
    assert await found(SearchFilter(sources=("notes.md",))) == {"notes.md"}
    assert await found(SearchFilter(modified_from=1_650_000_000)) == {"notes.md"}
    assert await found(SearchFilter(modified_to=1_650_000_000)) == {"noise.pdf"}
    assert await found(SearchFilter(doc_types=("pdf",), modified_from=1_650_000_000)) == {"only 0 hits"}
    assert await found(SearchFilter()) == {"noise.pdf"}


async def test_optimizing_after_bulk_writes_changes_no_result(store: VectorStore) -> None:
    docs = library(seed=3)
    await fill(store, docs)
    query = {"dense": docs[0][0].dense, "sparse": encoder.embed_query("copper valve"), "k": 5}
    before = await store.search(coll("alpha"), **query)  # type: ignore[arg-type]

    await store.optimize(coll("alpha"))

    assert ranked(await store.search(coll("alpha"), **query)) == ranked(before)  # type: ignore[arg-type]
    assert await store.count(coll("alpha")) == sum(len(d) for d in docs if d[0].chunk.corpus == "alpha")
