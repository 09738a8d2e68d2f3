import itertools

import pytest

from core.components.embedding import Embedder
from ingestion.chunking import SPAN_JOINER, TextChunk, chunk_blocks, page_text
from ingestion.extract import Block
from ingestion.formats.document import BlockKind, Line, markdown_table

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


def _located(chunks: list[TextChunk], blocks: list[Block]) -> None:
    """Every chunk's spans select, in its page's text, exactly its text."""
    for chunk in chunks:
        text = page_text(blocks, chunk.page)
        assert chunk.spans
        assert SPAN_JOINER.join(text[s:e] for s, e in chunk.spans) == chunk.text


def test_every_chunk_is_located_exactly_in_its_pages_text(embedder: Embedder) -> None:
    # Given pages of paragraphs, sentences split across chunks, odd whitespace and a headed section
    blocks = [
        Block("Page one opens.", page=1),
        Block(
            "  Indented   start. " + " ".join(f"Claim {i} holds\nacross a line." for i in range(80)), page=1
        ),
        Block("Page two is short.", page=2, headings=("Scope",)),
        Block(LONG_SENTENCE, page=2, headings=("Scope",)),
        Block("Back on page one, a late note.", page=1),
    ]
    # When chunked small, with overlap
    chunks = chunk_blocks(blocks, embedder, max_tokens=48, overlap_tokens=12)
    # Then each chunk is a slice of its page's text, as GET /v1/documents/{id}/text?page=N gives it
    assert len(chunks) > 10
    _located(chunks, blocks)
    assert all(len(c.spans) == 1 for c in chunks)


def test_blocks_without_pages_are_located_in_the_whole_text(embedder: Embedder) -> None:
    blocks = [Block("Intro without a page."), Block("Slide one.", page=1), Block("Closing words.")]
    chunks = chunk_blocks(blocks, embedder, max_tokens=64, overlap_tokens=0)
    _located(chunks, blocks)
    assert [c.text for c in chunks if c.page is None] == ["Intro without a page.", "Closing words."]


def test_a_long_table_is_split_between_rows_and_every_piece_repeats_caption_and_header(
    embedder: Embedder,
) -> None:
    # Given a table of 60 rows under a caption, between two paragraphs
    rows = [["Region", "Q1 revenue", "Q2 revenue"]] + [
        [f"Region {i}", f"${i},100", f"${i},900"] for i in range(60)
    ]
    table = markdown_table(rows, caption="Revenue by region (in thousands)")
    blocks = [
        Block("Before the table.", page=3),
        Block(table, page=3, kind=BlockKind.TABLE, lines=tuple(_row_lines(table))),
        Block("After the table.", page=3),
    ]
    # When chunked at 64 tokens
    chunks = chunk_blocks(blocks, embedder, max_tokens=64, overlap_tokens=16)
    pieces = [c for c in chunks if "| --- |" in c.text]
    # Then the table is several chunks of its own, each with the caption and header, whole rows only
    assert len(pieces) > 3
    assert chunks[0].text == "Before the table." and chunks[-1].text == "After the table."
    header = "Revenue by region (in thousands)\n| Region | Q1 revenue | Q2 revenue |\n| --- | --- | --- |"
    seen: list[str] = []
    for piece in pieces:
        assert piece.text.startswith(header + "\n| Region ")
        body = piece.text.removeprefix(header + "\n").split("\n")
        assert all(line.startswith("| Region ") and line.endswith(" |") for line in body)
        seen.extend(body)
        assert piece.tokens <= 64
    # every row once, in order; none split
    assert seen == table.split("\n")[3:]
    # the first piece is one span, the later ones two (the header, then their rows)
    assert [len(p.spans) for p in pieces] == [1] + [2] * (len(pieces) - 1)
    _located(chunks, blocks)
    # and each piece's boxes are its caption, header and rows' lines
    assert all(len(p.boxes) == 2 + len(p.text.split("\n")) - 3 for p in pieces)


def _row_lines(table: str) -> list[Line]:
    lines, start = [], 0
    for i, line in enumerate(table.split("\n")):
        if not line.startswith("| ---"):
            lines.append(Line(start, start + len(line), (0.0, 10.0 * i, 100.0, 10.0 * i + 8)))
        start += len(line) + 1
    return lines


def test_chunks_take_the_boxes_of_their_lines_and_the_anchor_of_their_section(embedder: Embedder) -> None:
    words = [f"Sentence {i} is on line {i}." for i in range(30)]
    text = " ".join(words)
    lines, start = [], 0
    for i, word in enumerate(words):
        lines.append(Line(start, start + len(word), (10.0, 12.0 * i, 300.0, 12.0 * i + 10)))
        start += len(word) + 1
    blocks = [Block(text, page=1, lines=tuple(lines), anchor="results")]
    chunks = chunk_blocks(blocks, embedder, max_tokens=40, overlap_tokens=0)
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.anchor == "results"
        expected = [line.box for line in lines if text[line.start : line.end] in chunk.text]
        assert list(chunk.boxes) == expected


def test_a_table_is_embedded_without_its_rule_and_pipes() -> None:
    from core.types import Chunk
    from ingestion.stages import embedding_text

    text = (
        "Revenue (in millions)\n|  | Q1 2024 | Q2 2024 |\n| --- | --- | --- |\n"
        "| Cloud \\| AI | $1,200 | $1,450 |"
    )
    chunk = Chunk("c", "d", "corp", 0, text, "/r.pdf", "Report", page=4, headings=())
    # Then the embedder and BM25 read cells, not Markdown; the stored text stays a table
    assert (
        embedding_text(chunk)
        == "Report\n\nRevenue (in millions)\nQ1 2024; Q2 2024\nCloud | AI; $1,200; $1,450"
    )


@pytest.mark.parametrize(
    ("title", "kept"),
    [
        ("0000320193-23-000077", False),  # an SEC filing's accession number
        ("Untitled", False),
        ("Microsoft Word - draft v2.docx", False),
        ("Q3", False),
        ("10-Q - 10/27/2023 - Intel Corporation", True),
        ("Quarterly Report", True),
    ],
)
def test_a_metadata_title_that_names_nothing_gives_way_to_the_file_name(title: str, kept: bool) -> None:
    from ingestion.formats.document import ExtractedDocument, clean_document

    doc = clean_document(ExtractedDocument(title, "pdf", [Block("Text.")]), "2023 Q3 AAPL")
    assert doc.title == (title if kept else "2023 Q3 AAPL")
