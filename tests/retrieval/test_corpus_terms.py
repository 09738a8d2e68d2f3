"""A question's distinctive terms that no document in scope mentions, asked of the store's own index."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable

import pytest

from core.components.vectorstore import Bm25Encoder, VectorStore, open_vector_store
from core.indexing import collection_name
from core.settings import Settings
from core.types import ChunkPoint, SearchFilter
from retrieval.corpus_terms import (
    distinctive_terms,
    english_zipf,
    is_distinctive,
    never_mentioned_text,
    question_words,
    unmentioned,
)
from tests.core.components.test_vectorstore import DIM, make_points

encoder = Bm25Encoder()


def zipf_of(table: dict[str, float]) -> Callable[[str], float]:
    return lambda word: table.get(word, 5.0)


def test_question_words_know_which_word_opens_a_sentence() -> None:
    assert question_words("Does Lore run? Which Redis setting") == [
        ("Does", True),
        ("Lore", False),
        ("run", False),
        ("Which", True),
        ("Redis", False),
        ("setting", False),
    ]


@pytest.mark.parametrize(
    ("word", "opens", "distinctive"),
    [
        ("max_tokens", False, True),
        ("3.13", False, True),
        ("--queue", False, True),
        ("os.path", False, True),
        ("TaskGroup", True, True),
        ("SharePoint", False, True),
        ("Which", True, False),
        ("install", False, False),
        ("velociraptor", False, True),
        ("disable-gil", False, True),
        ("follow-up", False, False),
    ],
)
def test_names_identifiers_and_rare_words_are_distinctive(word: str, opens: bool, distinctive: bool) -> None:
    zipf = zipf_of({"velociraptor": 2.3, "which": 7.0, "install": 4.5, "gil": 2.0})
    assert is_distinctive(word, opens_sentence=opens, zipf=zipf) is distinctive


def test_stopwords_and_repeats_are_not_terms() -> None:
    terms = distinctive_terms(
        "Is the Hinton paper by Hinton cited?",
        encode=lambda w: encoder.embed_query(w).indices,
        zipf=zipf_of({}),
    )
    assert [t.text for t in terms] == ["Hinton"]


def test_english_frequencies_come_from_the_shipped_lists() -> None:
    assert english_zipf("the") > 7 > 3 > english_zipf("velociraptor")


def test_refusal_names_the_terms() -> None:
    assert never_mentioned_text(["SharePoint"]) == (
        "The documents never mention “SharePoint”, so I cannot answer that from them."
    )
    assert "“a”, “b” or “c”" in never_mentioned_text(["a", "b", "c"])


def points(corpus: str, source: str, texts: list[str]) -> list[ChunkPoint]:
    return make_points(random.Random(0), corpus=corpus, source=source, texts=texts)


@pytest.fixture(params=["edge", "local"])
async def store(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]
) -> AsyncIterator[VectorStore]:
    """Each backend in turn, holding a handbook corpus and a secret one."""
    overrides = {"vector_store": {"url": ":memory:"}} if request.param == "local" else {}
    backend = await open_vector_store(settings_factory(**overrides))
    for corpus, source, texts in (
        ("handbook", "a.md", ["Lore ingests PDF files with lore ingest.", "Use --queue with Redis."]),
        ("handbook", "d.md", ["@ functools. cache ( user_function ) wraps a function.", "Read PEP 8 first."]),
        ("handbook", "e.md", ["The requests sent by a session are logged.", "PEP drafts: 695 pages."]),
        ("handbook", "b.md", ["SharePoint is mentioned only in the secret draft."]),
        ("secret", "c.md", ["The Velociraptor project ships next year."]),
    ):
        await backend.ensure_collection(collection_name(corpus, 1), dim=DIM)
        await backend.upsert(collection_name(corpus, 1), points(corpus, source, texts))
    yield backend
    await backend.close()


async def test_terms_absent_from_every_chunk_in_scope_are_reported(store: VectorStore) -> None:
    handbook = [collection_name("handbook", 1)]
    zipf = zipf_of({"velociraptor": 2.3})
    question = "Does Lore support SharePoint, Velociraptor or Confluence with --queue?"
    assert await unmentioned(store, encoder, question, collections=handbook, zipf=zipf) == [
        "Velociraptor",
        "Confluence",
    ]
    # Another corpus's chunks are out of scope unless its collection is searched.
    both = [*handbook, collection_name("secret", 1)]
    assert await unmentioned(store, encoder, question, collections=both, zipf=zipf) == ["Confluence"]


async def test_a_filter_narrows_the_scope(store: VectorStore) -> None:
    only_a = SearchFilter(sources=("a.md",))
    missing = await unmentioned(
        store,
        encoder,
        "Where is SharePoint mentioned?",
        collections=[collection_name("handbook", 1)],
        filter=only_a,
        zipf=zipf_of({}),
    )
    assert missing == ["SharePoint"]


async def test_nothing_to_check_reports_nothing(store: VectorStore) -> None:
    assert (
        await unmentioned(store, encoder, "what is it?", collections=[collection_name("handbook", 1)]) == []
    )
    assert await unmentioned(store, encoder, "Confluence?", collections=[]) == []


async def test_a_compound_term_must_occur_as_written_not_only_its_words_apart(store: VectorStore) -> None:
    handbook = [collection_name("handbook", 1)]
    zipf = zipf_of({})

    async def missing(question: str) -> list[str]:
        return await unmentioned(store, encoder, question, collections=handbook, zipf=zipf)

    # "requests" and "session" both occur, "requests.Session" nowhere; "PEP 695" only as words apart.
    assert await missing("What does requests.Session do?") == ["requests.Session"]
    assert await missing("What did PEP 695 add?") == ["PEP 695"]
    # A qualified name rendered in pieces ("functools. cache") is the name; PEP 8 is written so.
    assert await missing("What does functools.cache do?") == []
    assert await missing("What does PEP 8 say?") == []
    assert await missing("What does --queue do?") == []
