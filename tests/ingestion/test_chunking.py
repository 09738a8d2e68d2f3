import itertools

import pytest

from core.components.embedding import Embedder
from ingestion.chunking import chunk_blocks
from ingestion.extract import Block

LONG_SENTENCE = " ".join(f"word{i} antidisestablishmentarianism" for i in range(400))


def test_no_chunk_exceeds_the_embedders_limit(embedder: Embedder) -> None:
    # Given paragraphs, an overlong paragraph of sentences, and one sentence with no break at all
    blocks = [
        Block("A short opening paragraph."),
        Block(" ".join(f"Sentence number {i} talks about retrieval and chunking." for i in range(120))),
        Block(LONG_SENTENCE),
    ]
    limit = embedder.max_tokens - embedder.special_tokens
    # When chunked at the embedder's own maximum
    chunks = chunk_blocks(blocks, embedder, max_tokens=limit, overlap_tokens=32)
    # Then the model's tokenizer sees every chunk whole
    assert len(chunks) > 5
    for chunk in chunks:
        assert embedder.count_tokens(chunk.text) <= limit
        assert chunk.tokens == embedder.count_tokens(chunk.text)


def test_overlap_repeats_the_tail_of_the_previous_chunk(embedder: Embedder) -> None:
    sentences = [f"Fact {i} is that the value of item {i} equals {i * 7}." for i in range(60)]
    chunks = chunk_blocks([Block(" ".join(sentences))], embedder, max_tokens=64, overlap_tokens=20)
    assert len(chunks) > 2
    for before, after in itertools.pairwise(chunks):
        last_sentence = before.text.split(". ")[-1]
        assert after.text.startswith(last_sentence.rstrip("."))
    # every sentence survives somewhere
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)


def test_chunks_never_cross_pages_or_sections(embedder: Embedder) -> None:
    blocks = [
        Block("Page one text.", page=1),
        Block("More page one.", page=1),
        Block("Page two text.", page=2),
        Block("Install steps.", headings=("Guide", "Install")),
        Block("Usage steps.", headings=("Guide", "Usage")),
    ]
    chunks = chunk_blocks(blocks, embedder, max_tokens=200, overlap_tokens=0)
    assert [(c.page, c.headings) for c in chunks] == [
        (1, ()),
        (2, ()),
        (None, ("Guide", "Install")),
        (None, ("Guide", "Usage")),
    ]
    assert chunks[0].text == "Page one text.\n\nMore page one."


def test_tiny_window_is_refused(embedder: Embedder) -> None:
    with pytest.raises(ValueError, match="at least 8"):
        chunk_blocks([Block("x")], embedder, max_tokens=4, overlap_tokens=0)


def test_chunks_are_embedded_under_their_document_title_and_section() -> None:
    from core.types import Chunk
    from ingestion.stages import embedding_text

    chunk = Chunk(
        "c", "d", "corp", 3, "It lasts two years.", "/w.md", "Widget guide", headings=("Care", "Warranty")
    )
    assert embedding_text(chunk) == "Widget guide — Warranty\n\nIt lasts two years."
    # nothing repeated that the text already starts with; no header without a title or heading
    opening = Chunk("c", "d", "corp", 0, "Widget guide. Welcome.", "/w.md", "Widget guide")
    assert embedding_text(opening) == "Widget guide. Welcome."
    assert embedding_text(Chunk("c", "d", "corp", 0, "Plain.", "/p.txt", "")) == "Plain."
    long = Chunk("c", "d", "corp", 0, "Body.", "/l.md", "T" * 500)
    assert embedding_text(long) == "T" * 160 + "\n\nBody."
