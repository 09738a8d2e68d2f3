"""The reranker stage: a cross-encoder's or an endpoint's order, and the fused order when it fails."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from core.components.reranker import CrossEncoderReranker, EndpointReranker
from core.types import SearchHit
from retrieval.ranking import rerank_hits

TEXTS = [
    "The cat sat on the mat.",
    "Qdrant stores vectors and payloads.",
    "Reciprocal rank fusion merges two rankings.",
    "Paris is the capital of France.",
]


def _hits() -> list[SearchHit]:
    return [
        SearchHit(1.0 - i / 10, f"c{i}", f"d{i}", "corpus", text, f"s{i}", "", None)
        for i, text in enumerate(TEXTS)
    ]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random (seeded) one-layer BERT cross-encoder behind MiniLM's tokenizer, saved as a folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from core.components.embedding import default_model_path

    root = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


@pytest.mark.models
async def test_cross_encoder_order_follows_its_scores(tiny_cross_encoder: Path) -> None:
    from sentence_transformers import CrossEncoder

    query = "which city is the capital of France?"
    expected = [float(s) for s in CrossEncoder(str(tiny_cross_encoder)).predict([(query, t) for t in TEXTS])]
    reranker = CrossEncoderReranker(str(tiny_cross_encoder))

    ranked, verdict = await rerank_hits(reranker, query, _hits(), candidates=10, timeout_s=30)

    order = sorted(range(len(TEXTS)), key=lambda i: -expected[i])
    assert [h.text for h in ranked] == [TEXTS[i] for i in order]
    assert [h.score for h in ranked] == pytest.approx([expected[i] for i in order], abs=1e-5)
    assert verdict.startswith("reranked 4 candidate(s)")


class _Scripted(BaseHTTPRequestHandler):
    hang_s = 0.0
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, **body})
        if self.hang_s:
            time.sleep(self.hang_s)
        # Scores rise with the index, so the order is reversed; returned best first as vLLM does.
        results = [{"index": i, "relevance_score": i / 10} for i in range(len(body["documents"]))][::-1]
        payload = json.dumps({"id": "rerank-1", "model": body["model"], "results": results}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def scripted_server() -> Iterator[tuple[str, type[_Scripted]]]:
    handler = type("Handler", (_Scripted,), {"hang_s": 0.0, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


async def test_endpoint_reranks_over_http(scripted_server: tuple[str, type[_Scripted]]) -> None:
    url, handler = scripted_server
    reranker = EndpointReranker(url, "bge-reranker-base", api_key=None, timeout_s=5)
    try:
        ranked, verdict = await rerank_hits(reranker, "q", _hits(), candidates=3, timeout_s=5)
    finally:
        await reranker.close()

    assert handler.requests == [
        {"path": "/v1/rerank", "model": "bge-reranker-base", "query": "q", "documents": TEXTS[:3]}
    ]
    # The first three reversed by the endpoint's scores; the fourth, not sent, keeps its place after them.
    assert [h.chunk_id for h in ranked] == ["c2", "c1", "c0", "c3"]
    assert [h.score for h in ranked[:3]] == [0.2, 0.1, 0.0]
    assert verdict == "reranked 3 candidate(s) with endpoint:bge-reranker-base"


async def test_a_hanging_endpoint_falls_back_to_the_fused_order(
    scripted_server: tuple[str, type[_Scripted]],
) -> None:
    url, handler = scripted_server
    handler.hang_s = 5.0
    timeout = 0.5
    reranker = EndpointReranker(url, "m", api_key=None, timeout_s=timeout)
    hits = _hits()
    try:
        start = time.perf_counter()
        ranked, verdict = await rerank_hits(reranker, "q", hits, candidates=30, timeout_s=timeout)
        waited = time.perf_counter() - start
    finally:
        await reranker.close()

    print(f"hanging reranker: answered after {waited * 1000:.0f} ms (timeout {timeout * 1000:.0f} ms)")
    assert waited < timeout + 1.0
    assert ranked == hits
    assert verdict.startswith("fallback: fused order")


async def test_a_failing_endpoint_falls_back_to_the_fused_order() -> None:
    # Nothing listens on port 9 of localhost: the connection is refused.
    reranker = EndpointReranker("http://127.0.0.1:9", "m", api_key=None, timeout_s=1)
    hits = _hits()
    try:
        ranked, verdict = await rerank_hits(reranker, "q", hits, candidates=30, timeout_s=1)
    finally:
        await reranker.close()
    assert ranked == hits
    assert verdict == "fallback: fused order (ConnectError)"
