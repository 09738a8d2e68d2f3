"""Bodies over ``server.max_body_bytes`` get 413 in the JSON error shape, declared or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from api.ops.body_limit import is_upload_path

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
LIMIT = 1000


async def chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def assert_payload_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.json() == {
        "error": {"code": "payload_too_large", "message": f"the request body is larger than {LIMIT} bytes"}
    }


@pytest.fixture
async def client(make_client: ClientFactory) -> httpx.AsyncClient:
    return await make_client(server={"max_body_bytes": LIMIT})


async def test_a_declared_length_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/echo", content=b"x" * (LIMIT + 1))
    assert_payload_too_large(response)


async def test_a_streamed_body_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    request = client.build_request("POST", "/echo", content=chunks(LIMIT + 1))
    assert "content-length" not in request.headers
    assert_payload_too_large(await client.send(request))


async def test_a_streamed_json_body_gets_413_not_fastapis_400(client: httpx.AsyncClient) -> None:
    body = b'{"question": "' + b"x" * LIMIT + b'"}'

    async def stream() -> AsyncIterator[bytes]:
        yield body

    response = await client.post("/ask", content=stream(), headers={"content-type": "application/json"})
    assert_payload_too_large(response)


async def test_bodies_up_to_the_limit_pass(client: httpx.AsyncClient) -> None:
    declared = await client.post("/echo", content=b"x" * LIMIT)
    streamed = await client.post("/echo", content=chunks(LIMIT))
    assert declared.json() == streamed.json() == {"bytes": LIMIT}


async def test_uploads_are_not_limited_here(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/corpora/handbook/documents", content=b"x" * (LIMIT * 3))
    assert response.status_code == 200 and response.json() == {"bytes": LIMIT * 3}


async def test_a_refusal_is_logged_and_counted_like_any_reply(client: httpx.AsyncClient) -> None:
    await client.post("/echo", content=b"x" * (LIMIT + 1))
    metrics = (await client.get("/metrics")).text
    assert 'lore_http_requests_total{method="POST",route="unmatched",status="413"} 1.0' in metrics


@pytest.mark.parametrize(
    ("path", "exempt"),
    [
        ("/v1/corpora/handbook/documents", True),
        ("/v1/corpora/handbook/documents/", True),
        ("/v1/corpora/handbook/documents/doc-1", False),
        ("/v1/corpora/handbook", False),
        ("/v1/query", False),
        ("/v2/corpora/handbook/documents", False),
    ],
)
def test_only_the_upload_route_is_exempt(path: str, exempt: bool) -> None:
    assert is_upload_path(path) is exempt
