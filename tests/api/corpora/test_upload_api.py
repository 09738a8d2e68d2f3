"""POST /v1/corpora/{id}/documents: files stream to disk, a background job ingests them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ingestion.corpus_index import corpus_index
from ingestion.queued import run_queued_job

from .conftest import Lore

pytestmark = pytest.mark.models

WIDGETS = b"# Widgets\n\nThe Alpha widget is blue and weighs three grams.\n"
CARE = b"Clean widgets with a dry cloth once a week.\n"


def uploads(lore: Lore, corpus_id: str) -> Path:
    return lore.settings.data_dir / "uploads" / corpus_id


async def test_uploaded_files_are_ingested_by_a_background_job(lore: Lore) -> None:
    corpus_id = await lore.new_corpus("uploaded")

    response = await lore.upload(corpus_id, [("widgets.md", WIDGETS), ("care.txt", CARE)])

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["kind"] == "upload" and accepted["corpus"] == "uploaded"
    assert accepted["links"]["job"] == f"/v1/jobs/{accepted['id']}" == response.headers["location"]
    assert [(f["name"], f["bytes"]) for f in accepted["files"]] == [
        ("widgets.md", len(WIDGETS)),
        ("care.txt", len(CARE)),
    ]
    job = await lore.finished(accepted["id"])
    assert job["state"] == "succeeded", job
    assert (job["kind"], job["documents_total"], job["documents_new"], job["failures"]) == (
        "upload",
        2,
        2,
        [],
    )
    for file in accepted["files"]:
        document = (await lore.client.get(f"/v1/documents/{file['document_id']}", headers=lore.admin)).json()
        assert document["corpus"] == "uploaded" and document["chunks"] >= 1
        assert Path(document["source"]) == (uploads(lore, corpus_id) / file["name"]).resolve()
        collection = (await corpus_index(lore.resources, "uploaded")).collection
        stored = await lore.resources.store.chunk_ids(collection, document_id=file["document_id"])
        assert len(stored) == document["chunks"]
    assert sorted(p.name for p in uploads(lore, corpus_id).iterdir()) == ["care.txt", "widgets.md"]


async def test_uploading_the_same_name_again_replaces_the_document(lore: Lore) -> None:
    corpus_id = await lore.new_corpus("re-uploaded")
    first = (await lore.upload(corpus_id, [("widgets.md", WIDGETS)])).json()
    assert (await lore.finished(first["id"]))["documents_new"] == 1

    same = (await lore.upload(corpus_id, [("widgets.md", WIDGETS)])).json()
    unchanged = await lore.finished(same["id"])
    edited = (await lore.upload(corpus_id, [("widgets.md", WIDGETS + b"\nNow also in green.\n")])).json()
    changed = await lore.finished(edited["id"])

    assert (unchanged["state"], unchanged["documents_unchanged"], unchanged["documents_new"]) == (
        "succeeded",
        1,
        0,
    )
    assert unchanged["chunks_embedded"] == 0
    assert (changed["state"], changed["documents_changed"], changed["documents_new"]) == ("succeeded", 1, 0)
    assert (
        first["files"][0]["document_id"]
        == same["files"][0]["document_id"]
        == edited["files"][0]["document_id"]
    )
    corpora = (await lore.client.get("/v1/corpora", headers=lore.admin)).json()
    assert next(c for c in corpora if c["id"] == corpus_id)["documents"] == 1
    assert [p.name for p in uploads(lore, corpus_id).iterdir()] == ["widgets.md"]


async def test_a_file_over_the_limit_is_refused_with_413_and_nothing_is_kept(
    lore: Lore, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus_id = await lore.new_corpus("too-big")
    monkeypatch.setattr(lore.settings.ingestion, "max_file_bytes", 1000)

    response = await lore.upload(corpus_id, [("small.md", b"# fine\n"), ("big.txt", b"z" * 200_000)])

    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert "big.txt" in response.json()["error"]["message"]
    assert list(uploads(lore, corpus_id).iterdir()) == []
    jobs = (await lore.client.get("/v1/jobs", params={"corpus": "too-big"}, headers=lore.admin)).json()
    assert jobs == []


async def test_only_admins_may_upload(lore: Lore) -> None:
    corpus_id = await lore.new_corpus("guarded")

    reader = await lore.upload(corpus_id, [("a.md", b"# a\n")], headers=lore.reader)
    anonymous = await lore.upload(corpus_id, [("a.md", b"# a\n")], headers={})

    assert reader.status_code == 403 and reader.json()["error"]["code"] == "forbidden"
    assert anonymous.status_code == 401
    assert not uploads(lore, corpus_id).exists()


async def test_an_upload_to_an_unknown_corpus_is_404(lore: Lore) -> None:
    response = await lore.upload("no-such-corpus", [("a.md", b"# a\n")])
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("name", "status"), [("..", 422), (".env", 422), ("setup.exe", 415)], ids=["dots", "hidden", "type"]
)
async def test_unusable_names_and_types_are_refused(lore: Lore, name: str, status: int) -> None:
    corpus_id = await lore.new_corpus(f"names-{status}-{name.strip('.')}")
    response = await lore.upload(corpus_id, [("ok.md", b"# ok\n"), (name, b"data")])
    assert response.status_code == status, response.text
    assert list(uploads(lore, corpus_id).iterdir()) == []


async def test_a_body_that_is_not_multipart_is_415(lore: Lore) -> None:
    corpus_id = await lore.new_corpus("json-body")
    response = await lore.client.post(
        f"/v1/corpora/{corpus_id}/documents", json={"files": []}, headers=lore.admin
    )
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_format"


async def test_deleting_an_uploaded_document_deletes_its_file_and_a_corpus_its_folder(lore: Lore) -> None:
    corpus_id = await lore.new_corpus("deleted")
    accepted = (
        await lore.upload(corpus_id, [("a.md", b"# A\n\nalpha\n"), ("b.md", b"# B\n\nbravo\n")])
    ).json()
    await lore.finished(accepted["id"])

    a_id = accepted["files"][0]["document_id"]
    assert (await lore.client.delete(f"/v1/documents/{a_id}", headers=lore.admin)).status_code == 204
    assert [p.name for p in uploads(lore, corpus_id).iterdir()] == ["b.md"]
    assert (await lore.client.delete(f"/v1/corpora/{corpus_id}", headers=lore.admin)).status_code == 204
    assert not uploads(lore, corpus_id).exists()


async def test_a_file_whose_document_fails_is_not_kept_in_the_upload_folder(lore: Lore) -> None:
    corpus_id = await lore.new_corpus("half-failed")
    binary = bytes(range(256)) * 40

    accepted = (await lore.upload(corpus_id, [("widgets.md", WIDGETS), ("junk.md", binary)])).json()
    job = await lore.finished(accepted["id"])

    assert (job["documents_new"], job["documents_failed"]) == (1, 1)
    assert [f["source"].rsplit("/", 1)[-1] for f in job["failures"]] == ["junk.md"]
    # Removed once the job's task ends, which is just after its row says it finished.
    deadline = time.monotonic() + 10
    while [p.name for p in uploads(lore, corpus_id).iterdir()] != ["widgets.md"]:
        assert time.monotonic() < deadline, [p.name for p in uploads(lore, corpus_id).iterdir()]
        await asyncio.sleep(0.05)


async def test_with_a_queue_an_upload_is_queued_with_its_bytes_for_a_worker(
    lore: Lore, monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueued: list[str] = []

    class RecordingQueue:
        async def enqueue(self, job_id: str, *, attempt: str = "", copies: int | None = None) -> None:
            enqueued.append(job_id)

    monkeypatch.setattr(lore.resources, "queue", RecordingQueue())
    corpus_id = await lore.new_corpus("queued-upload")

    response = await lore.upload(corpus_id, [("widgets.md", WIDGETS)])

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["state"] == "queued" and enqueued == [accepted["id"]]
    assert (await lore.job(accepted["id"]))["state"] == "queued"
    # The bytes travel with the job: the upload folder keeps no copy, and a worker elsewhere
    # needs no access to it.
    assert list(uploads(lore, corpus_id).iterdir()) == []
    assert await run_queued_job(lore.resources, accepted["id"]) == "succeeded"
    job = await lore.job(accepted["id"])
    assert (job["state"], job["documents_new"]) == ("succeeded", 1)
