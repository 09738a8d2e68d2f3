"""Plain text and Markdown (title and heading path from ATX headings, fenced code kept whole)."""

from __future__ import annotations

import re

from ingestion.formats.document import Block, ExtractedDocument, paragraphs

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def extract_text(text: str, stem: str) -> ExtractedDocument:
    """Blank-line separated paragraphs; the file name is the title."""
    return ExtractedDocument(title=stem, kind="text", blocks=[Block(p) for p in paragraphs(text)])


def extract_markdown(text: str, stem: str) -> ExtractedDocument:
    """Paragraphs under their heading path; the first level-1 heading is the title."""
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    title: str | None = None
    buffer: list[str] = []
    in_fence = False

    def flush() -> None:
        if buffer:
            headings = tuple(h for _, h in path)
            blocks.extend(Block(p, headings=headings) for p in paragraphs("\n".join(buffer)))
            buffer.clear()

    for line in text.replace("\r\n", "\n").split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _MD_HEADING.match(line)
        if match is None:
            buffer.append(line)
            continue
        flush()
        level, heading = len(match.group(1)), match.group(2).strip()
        if title is None and level == 1:
            title = heading
        path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, heading)]
        # The heading line stays in the text: it carries meaning the embedder should see.
        buffer.append(line.strip())
        buffer.append("")
    flush()
    return ExtractedDocument(title=title or stem, kind="markdown", blocks=_merge_heading_blocks(blocks))


def _merge_heading_blocks(blocks: list[Block]) -> list[Block]:
    """Join each heading line to the paragraph after it, so a heading is never a chunk alone."""
    merged: list[Block] = []
    pending: Block | None = None
    for block in blocks:
        if pending is not None and pending.headings == block.headings:
            block = Block(f"{pending.text}\n{block.text}", block.page, block.headings)
            pending = None
        elif pending is not None:
            merged.append(pending)
            pending = None
        if _MD_HEADING.match(block.text) and "\n" not in block.text:
            pending = block
        else:
            merged.append(block)
    if pending is not None:
        merged.append(pending)
    return merged
