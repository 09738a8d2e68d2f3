"""POST /v1/corpora/{id}/reindex: a blue/green re-index run by the server, searched throughout."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from core.db.models import CorpusRow
from retrieval.service import search

from .conftest import Lore

pytestmark = pytest.mark.models

FILES = [
    ("widgets.md", b"# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n\nBeta is green.\n"),
    ("gears.txt", b"Gears mesh at right angles in a bevel drive.\n\nSpur gears run parallel.\n"),
]


async def corpus_row(lore: Lore, name: str) -> CorpusRow:
    async with lore.resources.sessions() as session:
        return (await session.execute(select(CorpusRow).where(CorpusRow.name == name))).scalar_one()


async def test_a_reindex_started_through_the_api_switches_while_search_answers(lore: Lore) -> None:
    corpus_id = await lore.new_corpus("reindexed")
    uploaded = (await lore.upload(corpus_id, FILES)).json()
    assert (await lore.finished(uploaded["id"]))["state"] == "succeeded"
    before = await corpus_row(lore, "reindexed")
    answered: list[int] = []
    done = asyncio.Event()

    async def keep_searching() -> None:
        while not done.is_set():
            hits = await search(
                lore.resources, "what colour is the Alpha widget?", corpora=["reindexed"], k=2, timings={}
            )
            answered.append(len(hits))
            await asyncio.sleep(0)

    searching = asyncio.create_task(keep_searching())
    try:
        response = await lore.client.post(
            f"/v1/corpora/{corpus_id}/reindex",
            json={"chunk_tokens": 16, "chunk_overlap_tokens": 4},
            headers=lore.admin,
        )
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert (accepted["kind"], accepted["state"]) == ("reindex", "queued")
        job = await lore.finished(accepted["id"])
    finally:
        done.set()
        await searching
    assert (job["state"], job["kind"]) == ("succeeded", "reindex"), job
    after = await corpus_row(lore, "reindexed")
    assert after.generation == before.generation + 1 and after.collection != before.collection
    assert (after.chunk_tokens, after.chunk_overlap_tokens) == (16, 4)
    assert before.collection not in await lore.resources.store.collections()
    # Every search during the build, the switch and the drop found chunks.
    assert answered and min(answered) > 0


async def test_a_reindex_is_refused_at_once_when_it_cannot_run(lore: Lore) -> None:
    corpus_id = await lore.new_corpus("refused-reindex")
    uploaded = (await lore.upload(corpus_id, FILES[:1])).json()
    assert (await lore.finished(uploaded["id"]))["state"] == "succeeded"

    bad_model = await lore.client.post(
        f"/v1/corpora/{corpus_id}/reindex", json={"model": "/nowhere/no-such-model"}, headers=lore.admin
    )
    too_small = await lore.client.post(
        f"/v1/corpora/{corpus_id}/reindex", json={"chunk_tokens": 2}, headers=lore.admin
    )
    unknown = await lore.client.post("/v1/corpora/no-such-id/reindex", json={}, headers=lore.admin)

    assert bad_model.status_code == 422 and "no-such-model" in bad_model.text
    assert too_small.status_code == 422
    assert unknown.status_code == 404
    jobs = (
        await lore.client.get("/v1/jobs", params={"corpus": "refused-reindex"}, headers=lore.admin)
    ).json()
    assert [j["kind"] for j in jobs] == ["upload"]


async def test_a_second_job_while_one_runs_is_409(lore: Lore, slow_embedding: float) -> None:
    corpus_id = await lore.new_corpus("busy")
    files = [(f"note-{i}.txt", f"Note {i} is about widget {i}.\n".encode()) for i in range(10)]
    uploaded = (await lore.upload(corpus_id, files)).json()

    response = await lore.client.post(f"/v1/corpora/{corpus_id}/reindex", json={}, headers=lore.admin)

    assert response.status_code == 409, response.text
    await lore.finished(uploaded["id"])
