"""Every chunk located in its original: citations' spans select exactly their text in
GET /v1/documents/{id}/text, and GET /v1/documents/{id}/file serves the original to a granted
reader only. Against a real `lore serve` process (httpx), and the app in process for /v1/query."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fpdf import FPDF

from core.settings import CacheSettings, RateLimitSettings, Settings
from tests.fakes import ScriptedLLM
from tests.served import lore_env, served_corpus, served_process

pytestmark = pytest.mark.models

PAGE_ONE = (
    "Quarterly report. The Northwind depot shipped eleven thousand crates in the spring quarter, "
    "a record for the site."
)
PAGE_TWO = (
    "Staffing. The Harbour office employs forty-two engineers, most of whom work on the "
    "container tracking system. Hiring resumes in the autumn."
)
HTML = """<html><head><title>Runbook</title></head><body><main>
<h1 id="top">Runbook</h1><p>Read this before an incident.</p>
<section id="failover"><h2>Failover</h2>
<p>To fail over the primary database, promote the standby with pg_ctl promote and repoint the
pooler at it within five minutes.</p></section>
<h2 id="rollback">Rollback</h2><p>Rollbacks of the billing service use the blue slot.</p>
</main></body></html>"""
PRICES = "item,price,stock\n" + "".join(f"Widget model {i},{i}.50 EUR,{i * 3}\n" for i in range(1, 80))
VAULT = "# Vault\n\nThe Omega gadget is purple and hums at night.\n"


def make_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.set_title("Depot report")
    for text in (PAGE_ONE, PAGE_TWO):
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


@dataclass
class Served:
    base: str
    reader: str
    admin: str
    docs: Path

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _corpus(root: Path) -> tuple[Path, Path]:
    docs, vault = root / "docs", root / "vault"
    docs.mkdir()
    vault.mkdir()
    (docs / "report.pdf").write_bytes(make_pdf())
    (docs / "runbook.html").write_text(HTML)
    (docs / "prices.csv").write_text(PRICES)
    (vault / "gadgets.md").write_text(VAULT)
    return docs, vault


def _settings(root: Path) -> Settings:
    return Settings(
        data_dir=root / "lore",
        cache=CacheSettings(semantic=False),
        rate_limit=RateLimitSettings(enabled=False),
    )


@pytest.fixture(scope="module")
async def served(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[Served]:
    """handbook (granted to the reader: a 2-page PDF, an HTML runbook, a CSV price list) and vault
    (not granted), ingested, then served by a real `lore serve`."""
    from core.resources import open_resources
    from ingestion.pipeline import ingest_paths

    root = tmp_path_factory.mktemp("documents")
    docs, vault = _corpus(root)
    settings = _settings(root)
    reader = await user_key(settings, "reader", role="reader", grants=("handbook",))
    admin = await user_key(settings, "root", role="admin")
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        await ingest_paths(resources, [docs], corpus="handbook")
        await ingest_paths(resources, [vault], corpus="vault")
    env = lore_env(settings.data_dir, rate_limit__enabled="false", cache__semantic="false")
    with served_process(env, root / "serve.log") as base:
        yield Served(base, reader, admin, docs)


def _search(client: httpx.Client, query: str, corpus: str = "handbook", k: int = 4) -> list[dict[str, Any]]:
    response = client.post("/v1/search", json={"query": query, "corpus": corpus, "k": k})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def _selected(client: httpx.Client, passage: dict[str, Any]) -> str:
    """What the passage's spans select in its document's text (its page's, when it has one)."""
    params = {"page": passage["page"]} if passage["page"] is not None else {}
    response = client.get(f"/v1/documents/{passage['document_id']}/text", params=params)
    assert response.status_code == 200, response.text
    text = response.json()["text"]
    return "\n".join(text[start:end] for start, end in passage["location"]["spans"])


def test_a_pdf_passage_is_located_on_its_page_by_offsets_and_line_boxes(served: Served) -> None:
    with served.client(served.reader) as client:
        [hit, *_] = _search(client, "How many engineers work at the Harbour office?")
        assert hit["source"].endswith("report.pdf") and hit["page"] == 2
        # The spans select, in page 2's text, exactly the passage
        assert _selected(client, hit) == hit["text"]
        assert "forty-two engineers" in hit["text"]
        # and its lines' boxes lie on the page (A4: 595 x 842 points), top to bottom
        boxes = hit["location"]["boxes"]
        assert boxes and all(
            0 <= left < right <= 596 and 0 <= top < bottom <= 843 for left, top, right, bottom in boxes
        )
        assert [b[1] for b in boxes] == sorted(b[1] for b in boxes)


def test_an_html_passage_carries_the_anchor_of_its_heading(served: Served) -> None:
    with served.client(served.reader) as client:
        [hit, *_] = _search(client, "How do I fail over the primary database?")
        assert hit["source"].endswith("runbook.html") and hit["page"] is None
        assert hit["location"]["anchor"] == "failover"
        assert _selected(client, hit) == hit["text"]
        rollback = next(
            h for h in _search(client, "billing service rollback blue slot") if "blue slot" in h["text"]
        )
        assert rollback["location"]["anchor"] == "rollback"


def test_a_table_passage_keeps_its_header_and_is_located_by_two_spans(served: Served) -> None:
    with served.client(served.reader) as client:
        hits = _search(client, "What is the price of Widget model 61?", k=10)
        hit = next(h for h in hits if "| Widget model 61 |" in h["text"])
        # A later piece of the table: its header repeated, then its rows
        assert hit["text"].startswith("| item | price | stock |\n| --- | --- | --- |\n")
        assert "| Widget model 61 | 61.50 EUR | 183 |" in hit["text"].split("\n")
        assert len(hit["location"]["spans"]) == 2
        assert _selected(client, hit) == hit["text"]


def test_the_original_file_is_served_to_a_granted_reader_and_hidden_from_everyone_else(
    served: Served,
) -> None:
    with served.client(served.reader) as reader, served.client(served.admin) as admin:
        pdf = next(h for h in _search(reader, "Northwind depot crates") if h["source"].endswith(".pdf"))
        response = reader.get(f"/v1/documents/{pdf['document_id']}/file")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == (served.docs / "report.pdf").read_bytes()
        html = next(h for h in _search(reader, "fail over the primary") if h["source"].endswith(".html"))
        page = reader.get(f"/v1/documents/{html['document_id']}/file")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        # a stored page runs no script in Lore's origin
        assert page.headers["content-security-policy"].startswith("sandbox")

        [vault] = _search(admin, "Omega gadget", corpus="vault", k=1)
        assert admin.get(f"/v1/documents/{vault['document_id']}/file").content == VAULT.encode()
        missing = reader.get("/v1/documents/0123456789abcdef0123456789abcdef/file")
        for path in ("file", "text"):
            hidden = reader.get(f"/v1/documents/{vault['document_id']}/{path}")
            # exactly as a document that does not exist
            assert hidden.status_code == missing.status_code == 404
            assert set(hidden.json()) == set(missing.json())
        assert reader.get(f"/v1/documents/{pdf['document_id']}/text", params={"page": 9}).status_code == 404
        assert httpx.get(f"{served.base}/v1/documents/{pdf['document_id']}/file").status_code == 401


@pytest.fixture(scope="module")
async def in_process(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    root = tmp_path_factory.mktemp("citations")
    docs, _ = _corpus(root)
    settings = _settings(root)
    reader = await user_key(settings, "reader", role="reader", grants=("handbook",))
    async with served_corpus(settings, docs, reader) as (app, client):
        yield app, client


@pytest.fixture
def scripted(in_process: tuple[Any, httpx.AsyncClient]) -> Iterator[None]:
    resources = in_process[0].state.resources
    original = resources._llm
    resources._llm = ScriptedLLM("The Harbour office employs forty-two engineers [1].")
    try:
        yield
    finally:
        resources._llm = original


async def test_a_citations_offsets_select_exactly_the_cited_chunk(
    in_process: tuple[Any, httpx.AsyncClient], scripted: None
) -> None:
    _, client = in_process
    response = await client.post(
        "/v1/query",
        json={"question": "How many engineers does the Harbour office employ?", "corpus": "handbook"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body["refused"]
    [citation] = body["citations"]
    assert citation["page"] == 2
    text = (await client.get(f"/v1/documents/{citation['document_id']}/text", params={"page": 2})).json()[
        "text"
    ]
    assert "\n".join(text[s:e] for s, e in citation["location"]["spans"]) == citation["text"]
    assert citation["location"]["boxes"]


@pytest.fixture(scope="module")
async def extracting(
    tmp_path_factory: pytest.TempPathFactory, user_key: Callable[..., Any]
) -> AsyncIterator[httpx.AsyncClient]:
    """The corpus served in process with extractive answers (as with the small shipped model)."""
    from core.settings import AnswerSettings

    root = tmp_path_factory.mktemp("extract")
    docs, _ = _corpus(root)
    settings = _settings(root).model_copy(update={"answer": AnswerSettings(mode="extract")})
    reader = await user_key(settings, "reader", role="reader", grants=("handbook",))
    async with served_corpus(settings, docs, reader) as (_, client):
        yield client


async def test_an_extractive_answer_quotes_a_table_row_with_its_headings(
    extracting: httpx.AsyncClient,
) -> None:
    response = await extracting.post(
        "/v1/query", json={"question": "What is the price of Widget model 61?", "corpus": "handbook"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer_kind"] == "extracted" and not body["refused"], body
    # The row, stated with its column headings, cited to the table piece that holds it
    assert "Widget model 61: price 61.50 EUR; stock 183. [" in body["answer"]
    [citation] = [c for c in body["citations"] if "| Widget model 61 |" in c["text"]]
    assert body["answer"].endswith(f"[{citation['n']}]")
