"""Scans through the whole pipeline: a PDF of page images only and a PNG screenshot are ingested
(OCR on auto), their text is stored page by page, search finds them with page numbers and line
boxes, and the job's summary counts the pages OCR read. OCR off fails them with why."""

from __future__ import annotations

import io
from pathlib import Path

import pypdfium2
import pytest
from fpdf import FPDF
from PIL import Image

from core.settings import IngestionSettings, Settings

pytestmark = pytest.mark.models

PAGES = [
    "Harbour depot annual review. The depot shipped eleven thousand crates in spring.",
    "Staffing at the depot. The Harbour office employs forty-two engineers this year.",
]


SCREENSHOT = "Opening hours. The Lisbon office opens at eight in the morning on weekdays."


def _text_pdf(pages: list[str] = PAGES) -> bytes:
    pdf = FPDF(unit="pt", format=(420, 200))
    pdf.set_margins(24, 24)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=13)
        pdf.multi_cell(0, 18, text)
    return bytes(pdf.output())


def _scanned(data: bytes, dpi: int = 200) -> list[Image.Image]:
    document = pypdfium2.PdfDocument(data)
    try:
        return [page.render(scale=dpi / 72).to_pil().convert("RGB") for page in document]
    finally:
        document.close()


def _errors(reference: str, read: str) -> float:
    from rapidfuzz.distance import Levenshtein

    ref, hyp = " ".join(reference.split()), " ".join(read.split())
    return Levenshtein.distance(ref, hyp) / len(ref)


async def test_an_image_only_pdf_and_a_png_are_read_by_ocr_and_found_with_their_pages(tmp_path: Path) -> None:
    from core.resources import open_resources
    from ingestion.documents import document_text
    from ingestion.pipeline import ingest_paths
    from retrieval import service

    images = _scanned(_text_pdf())
    folder = tmp_path / "scans"
    folder.mkdir()
    images[0].save(folder / "review.pdf", save_all=True, append_images=images[1:], resolution=200)
    png = io.BytesIO()
    _scanned(_text_pdf([SCREENSHOT]))[0].save(png, format="PNG")
    (folder / "screenshot.png").write_bytes(png.getvalue())

    async with open_resources(
        Settings(data_dir=tmp_path / "lore"), with_llm=False, migrate_sqlite=True
    ) as resources:
        summary = await ingest_paths(resources, [folder], corpus="scans")
        # Then both are indexed, and the summary counts the 3 pages OCR read
        assert (summary.documents_new, summary.documents_failed, summary.pages_ocr) == (2, 0, 3)
        [pdf_hit, *_] = await service.find(
            resources, "How many engineers work at the Harbour office?", corpus="scans", k=4
        )
        [png_hit, *_] = await service.find(
            resources, "When does the Lisbon office open?", corpus="scans", k=4
        )
        assert pdf_hit.source.endswith("review.pdf") and png_hit.source.endswith("screenshot.png")
        assert pdf_hit.page == 2 and png_hit.page == 1
        assert "forty-two engineers" in pdf_hit.text and "opens at eight" in png_hit.text
        # with boxes on the page (in points for the PDF, pixels for the PNG)
        assert all(0 <= b[0] < b[2] <= 420 and 0 <= b[1] < b[3] <= 200 for b in pdf_hit.location.boxes)
        assert png_hit.location.boxes and max(b[2] for b in png_hit.location.boxes) > 420
        for number, original in enumerate(PAGES, 1):
            stored = await document_text(resources, pdf_hit.document_id, page=number, allowed_corpora=None)
            assert _errors(original, stored.text) <= 0.03
        # and the spans select the chunk in the page's text
        page = (await document_text(resources, pdf_hit.document_id, page=2, allowed_corpora=None)).text
        assert "\n".join(page[s:e] for s, e in pdf_hit.location.spans) == pdf_hit.text


async def test_with_ocr_off_a_scan_fails_with_its_reason(tmp_path: Path) -> None:
    from core.resources import open_resources
    from ingestion import jobs
    from ingestion.pipeline import ingest_paths

    images = _scanned(_text_pdf())
    folder = tmp_path / "scans"
    folder.mkdir()
    images[0].save(folder / "review.pdf", resolution=200)
    images[0].save(folder / "photo.jpg", format="JPEG")
    settings = Settings(data_dir=tmp_path / "lore", ingestion=IngestionSettings(ocr="off"))
    async with open_resources(settings, with_llm=False, migrate_sqlite=True) as resources:
        summary = await ingest_paths(resources, [folder], corpus="scans")
        assert (summary.documents_new, summary.documents_failed, summary.pages_ocr) == (0, 2, 0)
        async with resources.sessions() as session:
            outcomes = await jobs.document_outcomes(session, job_id=summary.job_id)
    failures = {Path(f["source"] or "").name: f["error"] for f in jobs.failures_of(outcomes)}
    assert failures == {
        "review.pdf": (
            "no text could be extracted (it has no text layer, as a scan has not, and ingestion.ocr is off)"
        ),
        "photo.jpg": "the file is an image and ingestion.ocr is off",
    }
