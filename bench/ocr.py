"""OCR engines on rendered SEC 10-Q pages: error rates against the text layer, speed, install size.

Each page is rendered with PDFium at every ``--dpi`` and read by each engine; what it read is
compared with the page's own text layer (NFKC, whitespace collapsed, PDFium's line-end hyphen
``\x02`` read as ``-``, as Lore's PDF extractor reads it):

- CER: character edit distance / characters of the text layer (summed over the pages);
- WER: the same over words;
- CER*: CER with typographic quotes and dashes folded to ASCII (the text layer has ’ and – where
  OCR mostly reads ' and -);
- BoW: word errors if order did not count (the larger of the words missed and the words added,
  over the text layer's words), a lower bound of WER. CER and WER also count reading order, and a
  table or two columns read in another order than the text layer's shows there, not here.

Lines of every engine are put in order by Lore's own :func:`ingestion.formats.ocr.reading_order`.
Engines (any not installed is skipped):

- ``rapidocr``: Lore's own path, :func:`ingestion.formats.ocr.ocr_image` (rapidocr, PP-OCRv6).
- ``tesseract``: Tesseract through pytesseract (``apt-get install tesseract-ocr tesseract-ocr-eng``,
  ``pip install pytesseract``), its default page segmentation, English.
- ``rapidocr-v4``: the older ``rapidocr-onnxruntime`` package (PP-OCRv4), set as Lore sets
  rapidocr (``pip install --no-deps rapidocr-onnxruntime``).

``--filing NAME`` checks instead the whole ingestion path on one filing: every page is rendered
at 300 dpi in grey, the pages are saved as a PDF of JPEG page images (a scan, with no text
layer), and Lore's :func:`ingestion.extract.extract` reads it (``ingestion.ocr = auto``, at each
``--dpi``); each page's blocks are compared with the original page's text layer.

Run (a few minutes on two cores)::

    .venv/bin/python bench/ocr.py
    .venv/bin/python bench/ocr.py --pages 20 --dpi 300 --engines rapidocr
    .venv/bin/python bench/ocr.py --page "2023 Q1 AAPL.pdf:4" --verbose
    .venv/bin/python bench/ocr.py --filing "2023 Q2 AAPL.pdf" --dpi 300
"""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib.metadata
import importlib.util
import io
import shutil
import subprocess
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pypdfium2
from PIL import Image, ImageDraw, ImageFont
from rapidfuzz.distance import Levenshtein

from ingestion.formats import ocr

# The 10-Q filings in the project's shared data sets, beside this repository.
DOCS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "docugami_sec10q" / "docs"
# Every 10-Q has this table; the first page picked is the first one holding it.
TABLE_PAGE = "CONDENSED CONSOLIDATED STATEMENTS OF"
MIN_PAGE_CHARS = 300

# What each engine adds to Lore's environment: the distributions pip installed beside Lore's own
# (onnxruntime, numpy, Pillow, PyYAML, requests, tqdm and six Lore has already) and Debian packages.
ENGINE_DISTS = {
    "rapidocr": ["rapidocr", "opencv-python-headless", "shapely", "pyclipper", "omegaconf", "colorlog"],
    "tesseract": ["pytesseract"],
    "rapidocr-v4": ["rapidocr-onnxruntime", "opencv-python-headless", "shapely", "pyclipper"],
}
ENGINE_DEBS = {
    "tesseract": [
        "tesseract-ocr",
        "tesseract-ocr-eng",
        "tesseract-ocr-osd",
        "libtesseract5",
        "liblept5",
        "libopenjp2-7",
        "libwebpmux3",
    ],
}


def warm_up_image() -> Image.Image:
    image = Image.new("RGB", (900, 120), "white")
    ImageDraw.Draw(image).text(
        (20, 30), "Quarterly report 2023", fill="black", font=ImageFont.load_default(48)
    )
    return image


Reader = Callable[[Image.Image], list[ocr.OcrLine]]


@dataclass
class Score:
    pages: int = 0
    seconds: float = 0.0
    char_edits: int = 0
    folded_edits: int = 0
    chars: int = 0
    word_edits: int = 0
    words: int = 0
    bag_edits: int = 0
    per_page: list[str] = field(default_factory=list)

    def add(self, name: str, ref: str, hyp: str, seconds: float) -> None:
        ref_words, hyp_words = ref.split(), hyp.split()
        char_edits = Levenshtein.distance(ref, hyp)
        self.pages += 1
        self.seconds += seconds
        self.char_edits += char_edits
        self.folded_edits += Levenshtein.distance(ref.translate(FOLD), hyp.translate(FOLD))
        self.chars += len(ref)
        self.word_edits += Levenshtein.distance(ref_words, hyp_words)
        self.words += len(ref_words)
        missing = collections.Counter(ref_words) - collections.Counter(hyp_words)
        added = collections.Counter(hyp_words) - collections.Counter(ref_words)
        self.bag_edits += max(sum(missing.values()), sum(added.values()))
        self.per_page.append(f"{name}: CER {char_edits / max(1, len(ref)):.2%}, {seconds:.1f} s")


FOLD = str.maketrans(
    {"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-", "‒": "-", "−": "-"}
)


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text.replace("\x02", "-")).split())


def pick_pages(docs: Path, count: int) -> list[tuple[Path, int]]:
    """``count`` pages spread over the filings (named "YEAR QUARTER COMPANY.pdf"): each pick moves
    on one company and one quarter; the first page is a statement table, the others lie at even
    fractions through their filings, each moved on past pages with little text."""
    files = sorted(docs.glob("*.pdf"))
    stride = len({path.stem.split()[-1] for path in files}) + 1
    picked: list[tuple[Path, int]] = []
    for i in range(count):
        path = files[(i * stride) % len(files)]
        document = pypdfium2.PdfDocument(path)
        try:
            texts = [document[n].get_textpage().get_text_bounded() for n in range(len(document))]
        finally:
            document.close()
        if i == 0:
            start = next((n for n, t in enumerate(texts) if TABLE_PAGE in t.upper()), 0)
        else:
            start = int(len(texts) * (i + 0.5) / (count + 1))
        index = next(
            (n for n in range(start, len(texts)) if len(normalise(texts[n])) >= MIN_PAGE_CHARS), start
        )
        picked.append((path, index))
    return picked


def rapidocr_reader() -> Reader:
    options = ocr.OcrOptions()
    return lambda image: ocr.ocr_image(image, options)


def tesseract_reader() -> Reader:
    tesseract: Any = importlib.import_module("pytesseract")

    def read(image: Image.Image) -> list[ocr.OcrLine]:
        data = tesseract.image_to_data(image, lang="eng", output_type=tesseract.Output.DICT)
        words: dict[tuple[int, int, int], list[int]] = collections.defaultdict(list)
        for i, text in enumerate(data["text"]):
            if text.strip():
                words[(data["block_num"][i], data["par_num"][i], data["line_num"][i])].append(i)
        lines = []
        for ids in words.values():
            x0 = min(data["left"][i] for i in ids)
            y0 = min(data["top"][i] for i in ids)
            x1 = max(data["left"][i] + data["width"][i] for i in ids)
            y1 = max(data["top"][i] + data["height"][i] for i in ids)
            conf = sum(float(data["conf"][i]) for i in ids) / len(ids) / 100
            lines.append(ocr.OcrLine(" ".join(data["text"][i] for i in ids), (x0, y0, x1, y1), conf))
        return ocr.reading_order(lines)

    return read


def rapidocr_v4_reader() -> Reader:
    module: Any = importlib.import_module("rapidocr_onnxruntime")
    engine = module.RapidOCR(
        use_cls=False, max_side_len=20_000, det_limit_type="max", det_limit_side_len=2000
    )

    def read(image: Image.Image) -> list[ocr.OcrLine]:
        result, _ = engine(image.convert("RGB"))
        lines = []
        for points, text, score in result or []:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            lines.append(ocr.OcrLine(text, (min(xs), min(ys), max(xs), max(ys)), float(score)))
        return ocr.reading_order(lines)

    return read


ENGINES: dict[str, tuple[Callable[[], Reader], Callable[[], bool]]] = {
    "rapidocr": (rapidocr_reader, lambda: importlib.util.find_spec("rapidocr") is not None),
    "tesseract": (
        tesseract_reader,
        lambda: importlib.util.find_spec("pytesseract") is not None and shutil.which("tesseract") is not None,
    ),
    "rapidocr-v4": (rapidocr_v4_reader, lambda: importlib.util.find_spec("rapidocr_onnxruntime") is not None),
}


def install_mb(engine: str) -> float:
    """MB on disk of what the engine adds: its pip distributions' files and its Debian packages."""
    total = 0
    for name in ENGINE_DISTS.get(engine, []):
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                total += path.stat().st_size
    debs = ENGINE_DEBS.get(engine, [])
    if debs and shutil.which("dpkg-query"):
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Installed-Size}\n", *debs], capture_output=True, text=True
        ).stdout
        total += sum(int(v) * 1024 for v in out.split() if v.isdigit())
    return total / 1e6


def scanned(path: Path, dpi: int = 300) -> tuple[bytes, list[str]]:
    """The filing as a PDF of grey JPEG page images at ``dpi``, and each page's text layer."""
    document = pypdfium2.PdfDocument(path)
    try:
        texts, images = [], []
        for index in range(len(document)):
            page = document[index]
            texts.append(normalise(page.get_textpage().get_text_bounded()))
            images.append(page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L"))
    finally:
        document.close()
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=dpi, quality=85)
    return out.getvalue(), texts


def check_filing(path: Path, dpis: list[int], ignore: list[str]) -> None:
    """Print CER and WER of Lore's extraction of the scanned filing against its text layer, with
    the ``ignore`` strings taken out of both first."""
    from ingestion.extract import extract

    data, texts = scanned(path)
    print(
        f"{path.name}: {len(texts)} pages, scanned to a {len(data) / 1e6:.1f} MB PDF of page images",
        flush=True,
    )
    print("| filing | dpi | pages | OCR pages | CER | CER* | WER | BoW | s/page |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for dpi in dpis:
        started = time.perf_counter()
        doc = extract(f"scan-{path.name}", data, ocr=ocr.OcrOptions(dpi=dpi))
        seconds = time.perf_counter() - started
        score = Score()
        for number, ref in enumerate(texts, 1):
            hyp = normalise("\n".join(b.text for b in doc.blocks if b.page == number))
            for text in ignore:
                ref, hyp = normalise(ref.replace(text, " ")), normalise(hyp.replace(text, " "))
            score.add(str(number), ref, hyp, seconds / len(texts))
        print(
            f"| {path.name} | {dpi} | {doc.pages} | {doc.ocr_pages} | {score.char_edits / score.chars:.2%} "
            f"| {score.folded_edits / score.chars:.2%} | {score.word_edits / score.words:.2%} "
            f"| {score.bag_edits / score.words:.2%} | {seconds / len(texts):.2f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=Path, default=DOCS, help="folder of 10-Q PDFs")
    parser.add_argument("--pages", type=int, default=6, help="pages to read, spread over the filings")
    parser.add_argument("--page", action="append", default=[], help="FILE:N (1-based), instead of --pages")
    parser.add_argument("--dpi", type=int, nargs="+", default=[200, 300])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--verbose", action="store_true", help="print each page's figures")
    parser.add_argument(
        "--filing", help="a filing's name: read all of it, scanned, through Lore's extraction"
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        help="with --filing: text to take out of both sides first (page furniture the text layer "
        'holds elsewhere, e.g. "Table of Contents", which Intel\'s filings print at the top of a '
        "page and hold at its end)",
    )
    args = parser.parse_args()

    if args.filing:
        check_filing(args.docs / args.filing, args.dpi, args.ignore)
        return

    if args.page:
        pages = [(args.docs / name, int(n) - 1) for name, n in (p.rsplit(":", 1) for p in args.page)]
    else:
        pages = pick_pages(args.docs, args.pages)
    print("pages:", ", ".join(f"{path.name}:{index + 1}" for path, index in pages), flush=True)

    readers: dict[str, Reader] = {}
    for name in args.engines:
        build, available = ENGINES[name]
        if not available():
            print(f"{name}: not installed, skipped", flush=True)
            continue
        started = time.perf_counter()
        readers[name] = build()
        readers[name](warm_up_image())  # loads the models
        print(f"{name}: loaded in {time.perf_counter() - started:.1f} s", flush=True)

    scores = {(name, dpi): Score() for name in readers for dpi in args.dpi}
    for path, index in pages:
        document = pypdfium2.PdfDocument(path)
        try:
            page = document[index]
            ref = normalise(page.get_textpage().get_text_bounded())
            for dpi in args.dpi:
                image = page.render(scale=dpi / 72).to_pil()
                for name, read in readers.items():
                    started = time.perf_counter()
                    lines = read(image)
                    seconds = time.perf_counter() - started
                    hyp = normalise("\n".join(line.text for line in lines))
                    scores[(name, dpi)].add(f"{path.name}:{index + 1}", ref, hyp, seconds)
                    if args.verbose:
                        print(f"  {name} {dpi} dpi {scores[(name, dpi)].per_page[-1]}", flush=True)
        finally:
            document.close()

    print()
    print("| engine | dpi | pages | CER | CER* | WER | BoW | s/page | pages/s | install MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (name, dpi), s in scores.items():
        print(
            f"| {name} | {dpi} | {s.pages} | {s.char_edits / s.chars:.2%} | {s.folded_edits / s.chars:.2%} "
            f"| {s.word_edits / s.words:.2%} "
            f"| {s.bag_edits / s.words:.2%} | {s.seconds / s.pages:.2f} | {s.pages / s.seconds:.3f} "
            f"| {install_mb(name):.0f} |"
        )


if __name__ == "__main__":
    main()
