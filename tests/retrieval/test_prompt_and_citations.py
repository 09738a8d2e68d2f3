from core.types import SearchHit
from retrieval.citations import answer_sentences, check_citations, cited_numbers
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


def test_citations_map_to_the_numbered_sources() -> None:
    sources = [hit(1, "alpha"), hit(2, "beta is the answer", page=4)]
    check = check_citations("Beta is the answer [2].", sources, min_support=0.5)
    assert [(c.n, c.document_id, c.page, c.text) for c in check.supported] == [
        (2, "d2", 4, "beta is the answer")
    ]
    assert check.unsupported == []


def test_answer_without_markers_is_attributed_sentence_by_sentence() -> None:
    sources = [
        hit(1, "Lore stores vectors in Qdrant Edge."),
        hit(2, "Answers stream over server-sent events."),
    ]
    check = check_citations("Answers stream over server-sent events", sources, min_support=0.5)
    assert [c.n for c in check.supported] == [2]
    two = "Lore stores vectors in Qdrant Edge. Answers stream over server-sent events."
    both = check_citations(two, sources, min_support=0.5)
    assert [c.n for c in both.supported] == [1, 2]
    assert check_citations("Completely unrelated words here", sources, min_support=0.5).supported == []


def test_a_citation_whose_source_does_not_hold_its_sentence_is_unsupported() -> None:
    sources = [hit(1, "The warranty lasts two years from purchase."), hit(2, "Returns need a receipt.")]
    check = check_citations(
        "The warranty lasts two years [1]. Refunds are paid in gold bars within an hour [2].",
        sources,
        min_support=0.5,
    )
    assert [c.n for c in check.supported] == [1]
    assert [c.n for c in check.unsupported] == [2]
    assert check.verdict() == "1 of 2 citation(s) supported"


def test_markers_naming_no_source_are_counted_not_cited() -> None:
    check = check_citations("Alpha beta [7].", [hit(1, "alpha beta")], min_support=0.5)
    assert check.supported == [] and check.unsupported == [] and check.invalid == 1
    assert "1 marker(s) naming no source" in check.verdict()


def test_markers_after_a_full_stop_belong_to_the_sentence_before() -> None:
    assert answer_sentences("Alpha holds. [1] Beta holds too [2].\nGamma.") == [
        "Alpha holds. [1]",
        "Beta holds too [2].",
        "Gamma.",
    ]


def test_support_counts_what_the_answer_adds_to_the_question() -> None:
    source = [hit(1, "The RTX 4090 GPU is the fastest card for gaming and draws 450 W under load.")]
    question = "What is the rest temperature of the RTX 4090 GPU?"
    invented = "The rest temperature of the RTX 4090 GPU is 35 degrees [1]."
    # Counted whole, the restated question makes the invented fact look half supported...
    assert check_citations(invented, source, min_support=0.4).supported
    # ...but of what the answer adds ("35", "degree"), the source holds nothing.
    assert not check_citations(invented, source, min_support=0.4, question=question).supported
    drawn = "The RTX 4090 GPU draws 450 W under load [1]."
    assert check_citations(
        drawn, source, min_support=0.4, question="How much power does the RTX 4090 draw?"
    ).supported
    # A sentence of the question's words only is judged on all of them.
    echo = "The RTX 4090 GPU [1]."
    assert check_citations(echo, source, min_support=0.4, question=question).supported
