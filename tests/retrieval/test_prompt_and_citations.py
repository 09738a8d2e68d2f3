from core.types import SearchHit
from retrieval.citations import cited_numbers
from retrieval.prompt import build_messages, fit_sources


def hit(n: int, text: str, page: int | None = None) -> SearchHit:
    return SearchHit(
        score=1.0 / n,
        chunk_id=f"c{n}",
        document_id=f"d{n}",
        corpus="c",
        text=text,
        source=f"/docs/doc{n}.md",
        title=f"Doc {n}",
        page=page,
    )


def test_sources_are_numbered_from_one_in_rank_order_with_pages() -> None:
    messages = build_messages("Where?", [hit(1, "first"), hit(2, "second", page=3)], max_source_chars=1000)
    user = messages[-1]["content"]
    assert messages[0]["role"] == "system"
    assert user.index("[1] Doc 1\nfirst") < user.index("[2] Doc 2, page 3\nsecond")
    assert user.startswith("Question: Where?")
    assert user.rstrip().endswith("answer the question: Where?")


def test_fit_sources_keeps_the_best_ranked_within_budget() -> None:
    sources = [hit(1, "a" * 600), hit(2, "b" * 600), hit(3, "c" * 10)]
    assert [h.chunk_id for h in fit_sources(sources, max_chars=1000)] == ["c1"]
    assert [h.chunk_id for h in fit_sources(sources, max_chars=100)] == ["c1"]


def test_cited_numbers_reads_markers_and_ignores_unknown_sources() -> None:
    assert cited_numbers("A [2]. B [1, 3]. C [2][9] D [0]", 3) == [2, 1, 3]
