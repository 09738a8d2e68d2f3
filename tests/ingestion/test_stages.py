"""The staged pipeline: sources are taken as there is room, so a job's memory stays bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.resources import Resources
from ingestion.corpus_index import corpus_index
from ingestion.pipeline import ingest_sources
from ingestion.sources import Source

DOCUMENTS = 30


class Recorder:
    def __init__(self) -> None:
        self.totals: list[int] = []
        self.done = 0

    def start(self, total: int) -> None:
        self.totals.append(total)

    def advance(self, source: str, status: str, chunks: int) -> None:
        self.done += 1


async def test_a_stream_is_read_only_as_fast_as_it_is_written(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestion = resources.settings.ingestion
    monkeypatch.setattr(ingestion, "queue_documents", 2)
    monkeypatch.setattr(ingestion, "extract_workers", 2)
    recorder = Recorder()
    ahead: list[int] = []

    async def feed() -> AsyncIterator[Source]:
        for i in range(DOCUMENTS):
            # Taken but not yet recorded: in the queue, in the extract workers, or being written.
            ahead.append(i - recorder.done)
            text = f"Document {i} is about widget number {i} and its {i * 3} blue parts.\n"
            yield Source(source=f"stream://doc-{i}.txt", name=f"doc-{i}.txt", data=text.encode())

    summary = await ingest_sources(resources, feed(), corpus="stream", progress=recorder)

    assert (summary.documents_new, summary.documents_failed, summary.state) == (DOCUMENTS, 0, "succeeded")
    assert (
        await resources.store.count((await corpus_index(resources, "stream")).collection)
        == summary.chunks_embedded
        == DOCUMENTS
    )
    # Bounded look-ahead: the queue, one document per extract worker, and one embedding batch
    # (taken from the queue) may be in flight, never the whole stream.
    assert max(ahead) <= 2 + 2 + 2 + 1
    # The total grows as the stream is read, and ends at the number of documents.
    assert recorder.totals[0] == 0 and recorder.totals[-1] == DOCUMENTS
    assert recorder.done == DOCUMENTS


async def test_an_error_in_the_stream_fails_the_job(resources: Resources) -> None:
    async def feed() -> AsyncIterator[Source]:
        yield Source(source="stream://ok.txt", name="ok.txt", data=b"A fine document about gears.\n")
        raise RuntimeError("the crawler broke")

    with pytest.raises(RuntimeError, match="the crawler broke"):
        await ingest_sources(resources, feed(), corpus="broken")
