"""Scanned documents end to end: a PDF of page images only, and a PNG screenshot, through Lore.

Renders pages of a real PDF (an SEC 10-Q by default) to images, as a scanner would, and builds
from them a PDF with no text layer, and a PNG of one page. Both are ingested by Lore's pipeline
(embedded defaults, OCR on auto) into a temporary data dir. It prints, per page, the character
and word error rates of the text Lore stored (``GET /v1/documents/{id}/text?page=N``) against the
original's text layer, whitespace normalised; the pages OCR read, from the job's summary; and,
for a question asked of each, the citations' pages and the answer.

    python bench/scanned_pdf.py                                   # pages 15-18 of Apple's 2023 Q1 10-Q
    python bench/scanned_pdf.py --pdf PATH --pages 3-8 --scan-dpi 200
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on the path, and bench/retrieval.py would shadow the
# retrieval package.
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "bench")]
DEFAULT_PDF = REPO.parent / "shared/datasets/docugami_sec10q/docs/2023 Q1 AAPL.pdf"


def _pages(spec: str) -> list[int]:
    first, _, last = spec.partition("-")
    return list(range(int(first), int(last or first) + 1))


def _render(pdf: Path, pages: list[int], dpi: int) -> tuple[list[Any], list[str]]:
    """The pages as images at ``dpi`` and their text layers."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    images, texts = [], []
    try:
        for number in pages:
            page = document[number - 1]
            images.append(page.render(scale=dpi / 72).to_pil().convert("RGB"))
            textpage = page.get_textpage()
            texts.append(textpage.get_text_bounded())
            textpage.close()
            page.close()
    finally:
        document.close()
    return images, texts


def _errors(reference: str, read: str) -> tuple[float, float]:
    """Character and word error rates of ``read`` against ``reference`` (whitespace normalised)."""
    from rapidfuzz.distance import Levenshtein

    ref_words, read_words = reference.split(), read.split()
    ref, hyp = " ".join(ref_words), " ".join(read_words)
    cer = Levenshtein.distance(ref, hyp) / max(1, len(ref))
    wer = Levenshtein.distance(ref_words, read_words) / max(1, len(ref_words))
    return cer, wer


async def _ingest_and_ask(folder: Path, data_dir: Path, question: str) -> dict[str, Any]:
    from core.resources import open_resources
    from core.settings import Settings
    from ingestion.documents import document_text
    from ingestion.pipeline import ingest_paths
    from retrieval import service

    settings = Settings(data_dir=data_dir)
    async with open_resources(settings, migrate_sqlite=True) as resources:
        started = time.perf_counter()
        summary = await ingest_paths(resources, [folder], corpus="scans")
        seconds = time.perf_counter() - started
        hits = await service.find(resources, question, corpus="scans", k=4, allowed_corpora=None)
        document_ids = {hit.document_id: hit.source for hit in hits}
        texts: dict[str, list[str]] = {}
        for doc_id, source in document_ids.items():
            whole = await document_text(resources, doc_id, allowed_corpora=None)
            texts[Path(source).name] = [
                (await document_text(resources, doc_id, page=n, allowed_corpora=None)).text
                for n in range(1, (whole.pages or 1) + 1)
            ]
        answer = await service.answer(
            resources, service.Ask(question, corpus="scans", k=4, allowed_corpora=None)
        )
    return {
        "summary": summary.as_dict(),
        "seconds": seconds,
        "hits": [(Path(h.source).name, h.page, round(h.score, 3)) for h in hits],
        "texts": texts,
        "answer": answer,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdf", type=Path, default=DEFAULT_PDF)
    parser.add_argument(
        "--pages", default="15-18", help="Pages to scan, e.g. 15-18 (1-based); the PNG is the first."
    )
    parser.add_argument("--scan-dpi", type=int, default=200, help="Resolution of the scanned images.")
    parser.add_argument(
        "--question",
        default="How many shares did Apple repurchase during the three months ended December 31, 2022?",
    )
    args = parser.parse_args()
    pages = _pages(args.pages)
    images, layers = _render(args.pdf, pages, args.scan_dpi)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "scans"
        folder.mkdir()
        images[0].save(folder / "scan.pdf", save_all=True, append_images=images[1:], resolution=args.scan_dpi)
        buffer = io.BytesIO()
        images[0].save(buffer, format="PNG")
        (folder / "screenshot.png").write_bytes(buffer.getvalue())
        run = asyncio.run(_ingest_and_ask(folder, Path(tmp) / "lore", args.question))
    summary = run["summary"]
    print(
        f"ingested {args.pdf.name} pages {args.pages} as an image-only PDF ({args.scan_dpi} dpi) and a PNG: "
        f"{summary['documents_new']} new, {summary['documents_failed']} failed, "
        f"{summary['pages_ocr']} pages OCRed, {summary['chunks_embedded']} chunks, {run['seconds']:.1f} s"
    )
    print("| document | page | CER | WER | characters |")
    print("| --- | --- | --- | --- | --- |")
    totals = {"chars": 0, "char_errors": 0.0}
    for name, texts in sorted(run["texts"].items()):
        references = layers if name == "scan.pdf" else layers[:1]
        for number, (reference, read) in enumerate(zip(references, texts, strict=False), 1):
            cer, wer = _errors(reference, read)
            length = len(" ".join(reference.split()))
            if name == "scan.pdf":
                totals["chars"] += length
                totals["char_errors"] += cer * length
            print(f"| {name} | {pages[number - 1]} | {cer:.2%} | {wer:.2%} | {length} |")
    if totals["chars"]:
        print(f"scan.pdf overall CER {totals['char_errors'] / totals['chars']:.2%}")
    answer = run["answer"]
    print(f"question: {args.question}")
    print(f"search hits (document, page, score): {run['hits']}")
    print(f"answer ({answer.answer_kind}{', refused' if answer.refused else ''}): {answer.answer}")
    for citation in answer.citations:
        print(f"  [{citation.n}] {Path(citation.source).name} page {citation.page}: {citation.text[:120]!r}")


if __name__ == "__main__":
    main()
