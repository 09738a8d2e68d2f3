"""POST /v1/batches: JSONL questions answered in the background, per-line errors, grants per line,
owner-only visibility, input order, cancel, and resumption without answering a line twice."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from api.batches.parse import parse_batch
from tests.api.conftest import DatabaseWorld

pytestmark = pytest.mark.models
JSONL = {"Content-Type": "application/jsonl"}


async def _finished(world: DatabaseWorld, batch_id: str, who: str = "alice") -> dict[str, Any]:
    for _ in range(1200):
        reply = await world.client.get(f"/v1/batches/{batch_id}", headers=world.auth(who))
        assert reply.status_code == 200, reply.text
        if reply.json()["state"] in ("completed", "cancelled"):
            return dict(reply.json())
        await asyncio.sleep(0.1)
    raise AssertionError("the batch did not finish")


async def _output(world: DatabaseWorld, batch_id: str, who: str = "alice") -> list[dict[str, Any]]:
    reply = await world.client.get(f"/v1/batches/{batch_id}/output", headers=world.auth(who))
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/jsonl")
    return [json.loads(line) for line in reply.text.splitlines()]


def test_both_line_shapes_and_malformed_lines_are_read() -> None:
    lines = parse_batch(
        "\n".join(
            [
                '{"custom_id": "a", "question": "What colour is the widget?", "corpus": "handbook", "k": 4}',
                json.dumps(
                    {
                        "custom_id": "b",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": {
                            "model": "lore:handbook",
                            "messages": [{"role": "user", "content": "Is the widget red?"}],
                        },
                    }
                ),
                "{not json",
                '{"custom_id": "d"}',
                "",
            ]
        ),
        max_lines=10,
    )
    assert [(x.custom_id, x.question, x.corpus, x.error is None) for x in lines] == [
        ("a", "What colour is the widget?", "handbook", True),
        ("b", "Is the widget red?", "handbook", True),
        (None, None, None, False),
        ("d", None, None, False),
    ]


async def test_fifty_lines_with_three_malformed_give_47_answers_and_3_errors_in_order(
    on_each_database: DatabaseWorld,
) -> None:
    world = on_each_database
    body = []
    for n in range(50):
        if n in (7, 21, 40):
            body.append("{oops" if n == 7 else json.dumps({"custom_id": f"q{n}"}))
        else:
            body.append(json.dumps({"custom_id": f"q{n}", "question": "What colour is the widget?"}))
    reply = await world.client.post(
        "/v1/batches?corpus=handbook", content="\n".join(body), headers={**JSONL, **world.auth("alice")}
    )
    assert reply.status_code == 202, reply.text
    batch = await _finished(world, reply.json()["id"])
    assert (batch["total"], batch["done"], batch["failed"], batch["pending"]) == (50, 47, 3, 0)
    results = await _output(world, batch["id"])
    assert [r["line"] for r in results] == list(range(1, 51))
    assert [r["custom_id"] for r in results if r["error"]] == [None, "q21", "q40"]
    answered = [r for r in results if not r["error"]]
    assert len(answered) == 47 and all(r["answer"] for r in answered)
    assert any(r["citations"] for r in answered)


async def test_grants_apply_per_line_and_only_the_owner_sees_a_batch(on_each_database: DatabaseWorld) -> None:
    world = on_each_database
    body = "\n".join(
        json.dumps({"custom_id": c, "question": "What colour is the widget?", "corpus": corpus})
        for c, corpus in (("ok", "handbook"), ("secret", "secrets"), ("none", "no-such-corpus"))
    )
    reply = await world.client.post("/v1/batches", content=body, headers={**JSONL, **world.auth("alice")})
    assert reply.status_code == 202, reply.text
    batch_id = reply.json()["id"]
    batch = await _finished(world, batch_id)
    assert (batch["done"], batch["failed"]) == (1, 2)
    results = await _output(world, batch_id)
    assert [r["error"] is None for r in results] == [True, False, False]
    # An ungranted corpus reads as one that does not exist: the same error.
    assert results[1]["error"]["message"].replace("secrets", "X") == results[2]["error"]["message"].replace(
        "no-such-corpus", "X"
    )
    assert "red" in results[0]["answer"]
    # The admin sees it; nobody else does, and alice's list holds it.
    assert (await world.client.get(f"/v1/batches/{batch_id}", headers=world.auth("root"))).status_code == 200
    listed = await world.client.get("/v1/batches", headers=world.auth("alice"))
    assert batch_id in [b["id"] for b in listed.json()]
    assert batch_id not in [
        b["id"] for b in (await world.client.get("/v1/batches", headers=world.auth("root"))).json()
    ]


async def test_another_reader_gets_404_and_a_wrong_body_type_is_415(
    on_each_database: DatabaseWorld, user_key: Any
) -> None:
    world = on_each_database
    reply = await world.client.post(
        "/v1/batches",
        content='{"question": "Is the widget red?", "corpus": "handbook"}',
        headers={**JSONL, **world.auth("root")},
    )
    batch_id = reply.json()["id"]
    for path in (f"/v1/batches/{batch_id}", f"/v1/batches/{batch_id}/output"):
        assert (await world.client.get(path, headers=world.auth("alice"))).status_code == 404
    assert (
        await world.client.post(f"/v1/batches/{batch_id}/cancel", headers=world.auth("alice"))
    ).status_code == 404
    refused = await world.client.post(
        "/v1/batches", content="{}", headers={"Content-Type": "text/csv", **world.auth("alice")}
    )
    assert refused.status_code == 415
    empty = await world.client.post("/v1/batches", content="\n\n", headers={**JSONL, **world.auth("alice")})
    assert empty.status_code == 422


async def test_a_cancelled_batch_answers_no_more_lines(on_each_database: DatabaseWorld) -> None:
    world = on_each_database
    body = "\n".join(
        json.dumps({"question": f"Which widget is number {n}?", "corpus": "handbook"}) for n in range(200)
    )
    reply = await world.client.post("/v1/batches", content=body, headers={**JSONL, **world.auth("alice")})
    batch_id = reply.json()["id"]
    cancelled = await world.client.post(f"/v1/batches/{batch_id}/cancel", headers=world.auth("alice"))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    done = cancelled.json()["done"]
    await asyncio.sleep(0.5)
    after = (await world.client.get(f"/v1/batches/{batch_id}", headers=world.auth("alice"))).json()
    assert after["state"] == "cancelled" and after["pending"] > 0
    assert after["done"] + after["failed"] <= done + 2  # at most the lines in flight (concurrency 2)
    results = await _output(world, batch_id)
    assert sum(1 for r in results if r["error"] and "cancelled" in r["error"]["message"]) == after["pending"]
    again = await world.client.post(f"/v1/batches/{batch_id}/cancel", headers=world.auth("alice"))
    assert again.status_code == 409
