"""Search results: near-duplicates collapse and no document fills every slot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from core.resources import open_resources
from core.settings import Settings
from core.types import SearchHit
from ingestion.corpus_index import corpus_index
from ingestion.pipeline import ingest_sources
from ingestion.sources import Source
from retrieval.ranking import diversify
from retrieval.service import search


def hit(document_id: str, text: str, score: float, corpus: str = "c") -> SearchHit:
    return SearchHit(
        score=score,
        chunk_id=f"{document_id}:{text[:12]}",
        document_id=document_id,
        corpus=corpus,
        text=text,
        source=f"{document_id}.md",
        title=document_id,
        page=None,
    )


def test_each_document_keeps_at_most_its_cap() -> None:
    hits = [
        hit("a", f"alpha chunk number {word}", 1 - i / 10) for i, word in enumerate(["one", "two", "three"])
    ]
    hits.append(hit("b", "beta says something else", 0.1))

    taken = diversify(hits, k=4, max_per_document=2)

    assert [h.document_id for h in taken] == ["a", "a", "b"]
    assert taken[:2] == hits[:2]


def test_identical_text_in_two_documents_is_kept_once() -> None:
    hits = [
        hit("a", "Terms of use: see the licence.", 0.9),
        hit("b", "terms of USE -- see the licence", 0.8),
        hit("b", "The widget is blue.", 0.7),
    ]

    taken = diversify(hits, k=3, max_per_document=2)

    assert [(h.document_id, h.text) for h in taken] == [
        ("a", "Terms of use: see the licence."),
        ("b", "The widget is blue."),
    ]


def test_a_chunk_mostly_repeating_an_earlier_one_of_its_document_is_dropped() -> None:
    base = " ".join(f"word{i}" for i in range(40))
    hits = [
        hit("a", base, 0.9),
        hit("a", base + " and one more sentence at the end", 0.8),
        hit("a", "an unrelated paragraph about river bridges", 0.7),
        hit("b", base + " and one more sentence at the end", 0.6),
    ]

    taken = diversify(hits, k=4, max_per_document=3)

    # The near copy in the same document goes; another document's copy is not the same text, so it stays.
    assert [h.score for h in taken] == [0.9, 0.7, 0.6]


def test_the_same_text_in_two_corpora_is_kept_in_each() -> None:
    hits = [
        hit("a", "The widget is blue.", 0.9, corpus="x"),
        hit("b", "The widget is blue.", 0.8, corpus="y"),
    ]

    assert diversify(hits, k=2, max_per_document=2) == hits


def test_same_document_id_in_two_corpora_counts_apart() -> None:
    hits = [hit("a", f"text {i}", 1 - i / 10, corpus=corpus) for i, corpus in enumerate("xxyy")]

    assert len(diversify(hits, k=4, max_per_document=2)) == 4


def test_stops_at_k() -> None:
    hits = [hit(str(i), f"document {i}", 1 - i / 100) for i in range(10)]

    assert diversify(hits, k=3, max_per_document=2) == hits[:3]


def _paragraph(i: int) -> str:
    words = " ".join(f"{kind}{i * 7 + j}" for j, kind in enumerate(["gasket", "flange", "torque"] * 20))
    return f"Copper valves, part {i}: copper valve seals wear at {i}0 bar. {words}."


async def test_search_caps_chunks_per_document_without_starving_results(
    settings_factory: Callable[..., Settings],
) -> None:
    # Given one document all about copper valves (many chunks) and two that mention them once,
    settings = settings_factory(retrieval={"mode": "dense", "max_chunks_per_document": 2})
    long = "# Valves\n\n" + "\n\n".join(_paragraph(i) for i in range(8))
    sources = [
        Source(source="mem://long", name="long.md", data=long.encode()),
        Source(source="mem://b", name="b.md", data=b"# B\n\nShips carry pumps, pipes and a copper valve.\n"),
        Source(source="mem://c", name="c.md", data=b"# C\n\nBoilers have flues and a copper valve.\n"),
    ]
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_sources(resources, sources, corpus="c")
        assert await resources.store.count((await corpus_index(resources, "c")).collection) > 4

        # when four chunks are asked for,
        hits = await search(resources, "How fast do copper valve seals wear?", corpora=["c"], k=4, timings={})

    # then the long document gives two and the others fill the remaining places.
    assert Counter(h.source for h in hits) == {"mem://long": 2, "mem://b": 1, "mem://c": 1}
