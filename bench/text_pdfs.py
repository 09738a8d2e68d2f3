"""Text-only PDFs (no tables, no images) for ingestion benchmarks, from the SciFact abstracts.

Writes ``--files`` PDFs of ``--pages`` pages each (title, then abstracts as paragraphs, Helvetica
11) into a folder, so that ``bench/ingest_pdfs.py`` can measure what table detection and OCR
cost on PDFs that need neither.

    python bench/text_pdfs.py /tmp/text-pdfs --files 8 --pages 20
    python bench/ingest_pdfs.py /tmp/text-pdfs --against /tmp/before
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCIFACT = REPO.parent / "shared/datasets/scifact/beir_format/corpus.jsonl"


def main() -> None:
    from fpdf import FPDF

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--corpus", type=Path, default=SCIFACT)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    abstracts = (json.loads(line) for line in args.corpus.open(encoding="utf-8"))
    for n in range(args.files):
        pdf = FPDF()
        pdf.set_title(f"SciFact abstracts, part {n + 1}")
        pdf.add_page()
        while pdf.page_no() <= args.pages:
            doc = next(abstracts)
            text = f"{doc['title']}. {doc['text']}".encode("latin-1", "replace").decode("latin-1")
            pdf.set_font("Helvetica", size=11)
            pdf.multi_cell(0, 6, text)
            pdf.ln(4)
        path = args.folder / f"scifact-{n + 1:02d}.pdf"
        path.write_bytes(bytes(pdf.output()))
        print(f"{path}: {pdf.page_no()} pages")


if __name__ == "__main__":
    main()
