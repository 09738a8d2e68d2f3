"""Rerankers for tests: a tiny random cross-encoder made offline, and a scripted rerank endpoint.

Shared by the reranker's unit tests and the API tests that turn a reranker on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar


def build_tiny_cross_encoder(root: Path) -> Path:
    """A random (seeded) one-layer BERT cross-encoder behind MiniLM's tokenizer, saved in ``root``."""
    from transformers import BertForSequenceClassification

    from tests.conftest import save_tiny_bert

    save_tiny_bert(root, BertForSequenceClassification, num_labels=1)  # one relevance score per pair
    return root


def cross_encoder_scores(path: Path, query: str, texts: list[str]) -> list[float]:
    """The cross-encoder's own scores of (query, text) pairs, computed without Lore."""
    from sentence_transformers import CrossEncoder

    return [float(s) for s in CrossEncoder(str(path)).predict([(query, t) for t in texts])]


class ScriptedRerank(BaseHTTPRequestHandler):
    """vLLM's rerank API, scripted: scores rise with the document's index (so the order is
    reversed), returned best first; each request is recorded, and ``hang_s`` delays the answer."""

    hang_s = 0.0
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, **body})
        if self.hang_s:
            time.sleep(self.hang_s)
        results = [{"index": i, "relevance_score": i / 10} for i in range(len(body["documents"]))][::-1]
        payload = json.dumps({"id": "rerank-1", "model": body["model"], "results": results}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting for a hanging answer, as it should

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def scripted_rerank_server(*, hang_s: float = 0.0) -> Iterator[tuple[str, type[ScriptedRerank]]]:
    """A :class:`ScriptedRerank` server on a free local port: gives its base URL and its handler
    class (a fresh one, so its recorded requests and ``hang_s`` are this server's alone)."""
    handler = type("Handler", (ScriptedRerank,), {"hang_s": hang_s, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
