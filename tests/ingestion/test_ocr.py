"""OCR of rendered pages and images: the words read, their order, blocks and spans, when a PDF
page needs OCR, and the image extractor's pages and failures.

Fixtures are built here: small PDF pages made with fpdf2 and rendered by PDFium, or text drawn
with Pillow at a large size, so that the real engine reads each in well under a second.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pypdfium2
import pypdfium2.raw
import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from core.errors import ExtractionError
from ingestion.formats.document import Block, Line
from ingestion.formats.image import extract_image
from ingestion.formats.ocr import (
    OcrLine,
    OcrOptions,
    image_share,
    needs_ocr,
    ocr_blocks,
    ocr_image,
    reading_order,
)

REPO = Path(__file__).resolve().parents[2]
DPI = 200
OPTIONS = OcrOptions(dpi=DPI)
FIRST = "Quarterly revenue rose by twelve percent."
SECOND = "Operating costs fell in every region."
THIRD = "Net income was 4,210 million dollars."


def small_pdf() -> bytes:
    """One short page: a paragraph of two lines, a blank line, a paragraph of one."""
    pdf = FPDF(unit="pt", format=(420, 180))
    pdf.set_margins(20, 20)
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.multi_cell(0, 18, f"{FIRST}\n{SECOND}")
    pdf.ln(18)
    pdf.multi_cell(0, 18, THIRD)
    return bytes(pdf.output())


def render(data: bytes, dpi: int = DPI) -> Image.Image:
    document = pypdfium2.PdfDocument(data)
    try:
        return document[0].render(scale=dpi / 72).to_pil()
    finally:
        document.close()


def drawn(*rows: str, size: tuple[int, int] = (900, 260), mode: str = "RGB") -> Image.Image:
    """``rows`` drawn in black, 48 px high, one under another, on a white (or clear) image."""
    background = (255, 255, 255, 0) if mode == "RGBA" else "white"
    image = Image.new(mode, size, background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(48)
    for i, row in enumerate(rows):
        draw.text((30, 30 + 90 * i), row, fill="black", font=font)
    return image


def encoded(images: list[Image.Image], fmt: str) -> bytes:
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=len(images) > 1, append_images=images[1:])
    return out.getvalue()


@pytest.fixture(scope="module")
def page_lines() -> list[OcrLine]:
    """The small PDF page rendered at 200 dpi and read once (this also loads the engine)."""
    return ocr_image(render(small_pdf()), OPTIONS)


def test_ocr_image_reads_the_words_of_a_rendered_page(page_lines: list[OcrLine]) -> None:
    assert [line.text for line in page_lines] == [FIRST, SECOND, THIRD]
    assert all(line.confidence > 0.9 for line in page_lines)


def test_ocr_image_boxes_are_pixels_from_the_top_left(page_lines: list[OcrLine]) -> None:
    """The page's 20 pt margin is 56 px at 200 dpi; lines go down the page."""
    left, top, right, bottom = page_lines[0].box
    assert 40 < left < 70 and 40 < top < 75 and right > left and bottom > top
    assert [line.box[1] for line in page_lines] == sorted(line.box[1] for line in page_lines)


def test_ocr_image_joins_cells_on_one_baseline_into_one_line() -> None:
    """A label and an amount far apart on one row (as in a table) come back as one line, left first."""
    image = Image.new("RGB", (1400, 260), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(48)
    draw.text((900, 30), "4,210", fill="black", font=font)
    draw.text((30, 30), "Net income", fill="black", font=font)
    draw.text((30, 150), "Total assets", fill="black", font=font)
    draw.text((900, 150), "9,876", fill="black", font=font)
    assert [line.text for line in ocr_image(image, OPTIONS)] == ["Net income 4,210", "Total assets 9,876"]


def test_ocr_image_adds_the_lone_dashes_of_table_cells() -> None:
    """A financial statement's "—" for nil: a short bar alone in a row; a long rule is not a dash."""
    image = Image.new("RGB", (1400, 260), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(48)
    draw.text((30, 30), "Goodwill impairment", fill="black", font=font)
    draw.rectangle((900, 52, 930, 55), fill="black")
    draw.text((30, 150), "Total assets", fill="black", font=font)
    draw.text((900, 150), "9,876", fill="black", font=font)
    draw.rectangle((1080, 170, 1380, 173), fill="black")  # level with the row, but a rule
    assert [line.text for line in ocr_image(image, OPTIONS)] == [
        "Goodwill impairment —",
        "Total assets 9,876",
    ]


def test_reading_order_sorts_rows_and_merges_a_row() -> None:
    lines = [
        OcrLine("second", (10, 100, 200, 140), 0.5),
        OcrLine("1,234", (300, 12, 400, 48), 1.0),
        OcrLine("left part", (10, 10, 200, 50), 0.8),
    ]
    first, second = reading_order(lines)
    assert first.text == "left part 1,234"
    assert first.box == (10, 10, 400, 50)
    assert first.confidence == pytest.approx((9 * 0.8 + 5 * 1.0) / 14)
    assert second == lines[0]


def test_reading_order_reads_text_columns_one_after_the_other() -> None:
    """Two columns of text lines (their boxes touching, as OCR boxes of one paragraph do), under
    a title across both: the title, the left column, then the right."""
    title = OcrLine("Risk factors", (10, 0, 300, 40), 1.0)
    left = [OcrLine(f"left line {i}", (10, 60 + 38 * i, 480, 100 + 38 * i), 1.0) for i in range(3)]
    right = [OcrLine(f"right line {i}", (500, 60 + 38 * i, 980, 100 + 38 * i), 1.0) for i in range(3)]
    assert reading_order([*right, title, *left]) == [title, *left, *right]


def test_reading_order_keeps_table_rows_whole_under_a_text_header() -> None:
    """A column of figures is not text: the band is read by rows, each label with its figure."""
    lines = [
        OcrLine("Item", (10, 0, 200, 40), 1.0),
        OcrLine("Amount", (500, 0, 700, 40), 1.0),
        OcrLine("Revenue", (10, 38, 200, 78), 1.0),
        OcrLine("1,234", (500, 38, 700, 78), 1.0),
    ]
    assert [ln.text for ln in reading_order(lines)] == ["Item Amount", "Revenue 1,234"]


def test_ocr_blocks_split_paragraphs_at_a_vertical_gap() -> None:
    lines = [
        OcrLine("Revenue grew", (50, 100, 600, 140), 1.0),
        OcrLine("in every region.", (50, 142, 500, 182), 1.0),
        OcrLine("Costs fell.", (50, 230, 400, 270), 1.0),
    ]
    first, second = ocr_blocks(lines, page=3, scale=0.5)
    assert first == Block(
        "Revenue grew in every region.",
        page=3,
        lines=(Line(0, 12, (25, 50, 300, 70)), Line(13, 29, (25, 71, 250, 91))),
    )
    assert second == Block("Costs fell.", page=3, lines=(Line(0, 11, (25, 115, 200, 135)),))


def test_ocr_blocks_start_a_block_at_the_top_of_the_next_column() -> None:
    lines = [
        OcrLine("end of the left column", (10, 500, 480, 540), 1.0),
        OcrLine("top of the right column", (500, 60, 980, 100), 1.0),
    ]
    assert [b.text for b in ocr_blocks(lines, page=1, scale=1.0)] == [ln.text for ln in lines]


def test_ocr_blocks_spans_index_the_block_text(page_lines: list[OcrLine]) -> None:
    blocks = ocr_blocks(page_lines, page=1, scale=72 / DPI)
    assert [b.text for b in blocks] == [f"{FIRST} {SECOND}", THIRD]
    spans = [b.text[ln.start : ln.end] for b in blocks for ln in b.lines]
    assert spans == [line.text for line in page_lines]
    boxes = [ln.box for b in blocks for ln in b.lines]
    assert boxes == [pytest.approx(tuple(v * 72 / DPI for v in line.box)) for line in page_lines]
    # in points now: within the 420 x 180 pt page
    assert all(0 <= x0 < x1 <= 420 and 0 <= y0 < y1 <= 180 for x0, y0, x1, y1 in boxes)
    assert {b.page for b in blocks} == {1}


def test_ocr_blocks_of_nothing_is_nothing() -> None:
    assert ocr_blocks([], page=1, scale=1.0) == []
    assert ocr_blocks([OcrLine("  ", (0, 0, 10, 10), 1.0)], page=1, scale=1.0) == []


@pytest.mark.parametrize(
    ("text", "share", "expected"),
    [
        ("", 0.0, True),  # no text layer: a scan, or text drawn as curves
        (" \r\n\t ", 1.0, True),
        ("Page 3", 0.0, False),  # a page of one line, read from its text layer
        ("Page 3", 0.9, True),  # a scan with its page number stamped as text
        ("x" * 19, 0.0, False),
        ("Case 1:23-cv-01234 Document 45 Filed 01/02/23 Page 3 of 20", 0.95, True),  # stamped scan
        ("Case 1:23-cv-01234 Document 45 Filed 01/02/23 Page 3 of 20", 0.3, False),  # a small logo
        ("word " * 39 + "x", 0.5, True),  # 199 visible characters on a half-image page
        ("word " * 50, 0.5, False),
        ("word " * 500, 1.0, False),  # a scan with its own OCR text layer
    ],
)
def test_needs_ocr(text: str, share: float, expected: bool) -> None:
    assert needs_ocr(text, share) is expected


def pdf_with_images(*places: tuple[float, float, float, float]) -> bytes:
    """A 600 x 800 pt page with a grey image at each (x, y, w, h) in points, from the top left."""
    pdf = FPDF(unit="pt", format=(600, 800))
    pdf.add_page()
    png = encoded([Image.new("RGB", (20, 20), "grey")], "PNG")
    for x, y, w, h in places:
        pdf.image(io.BytesIO(png), x=x, y=y, w=w, h=h)
    return bytes(pdf.output())


def share_of(data: bytes) -> float:
    document = pypdfium2.PdfDocument(data)
    try:
        return image_share(document[0])
    finally:
        document.close()


@pytest.mark.parametrize(
    ("places", "expected"),
    [
        ((), 0.0),
        (((0, 0, 600, 800),), 1.0),
        (((0, 0, 300, 800),), 0.5),
        (((300, 400, 600, 800),), 0.25),  # three quarters of it off the page: clipped
        (((0, 0, 300, 400), (150, 0, 300, 400)), 0.375),  # overlapping: counted once
        (((0, 0, 600, 100), (0, 700, 600, 100)), 0.25),
    ],
)
def test_image_share_is_the_clipped_union_of_the_page_images(
    places: tuple[tuple[float, float, float, float], ...], expected: float
) -> None:
    assert share_of(pdf_with_images(*places)) == pytest.approx(expected, abs=1e-3)


def test_image_share_places_images_inside_forms_by_the_form_matrix() -> None:
    """A scan drawn through a Form XObject, shrunk to half width and height: a quarter of the page."""
    source = pypdfium2.PdfDocument(pdf_with_images((0, 0, 600, 800)))
    target = pypdfium2.PdfDocument.new()
    try:
        page = target.new_page(600, 800)
        form = pypdfium2.raw.FPDF_NewFormObjectFromXObject(
            pypdfium2.raw.FPDF_NewXObjectFromPage(target, source, 0)
        )
        pypdfium2.raw.FPDFPageObj_Transform(form, 0.5, 0, 0, 0.5, 300, 0)
        pypdfium2.raw.FPDFPage_InsertObject(page, form)
        assert pypdfium2.raw.FPDFPage_GenerateContent(page)
        out = io.BytesIO()
        target.save(out)
    finally:
        target.close()
        source.close()
    assert share_of(out.getvalue()) == pytest.approx(0.25, abs=1e-3)


def test_an_unsupported_language_fails_with_the_reason() -> None:
    with pytest.raises(ExtractionError, match="OCR cannot read language ru:"):
        ocr_image(drawn("text"), OcrOptions(languages=("en", "ru")))


def test_regional_language_tags_are_read_as_their_language() -> None:
    assert [ln.text for ln in ocr_image(drawn("Colour"), OcrOptions(languages=("en-GB", "de")))] == ["Colour"]


def test_an_engine_failure_fails_with_ocr_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingestion.formats import ocr

    def broken(image: object) -> None:
        raise RuntimeError("onnxruntime: bad input")

    monkeypatch.setattr(ocr, "_load_engine", lambda: broken)
    with pytest.raises(ExtractionError, match=r"^OCR failed: RuntimeError: onnxruntime: bad input"):
        ocr_image(drawn("Invoice total"), OPTIONS)


def test_a_blank_image_has_no_lines() -> None:
    assert ocr_image(Image.new("RGB", (0, 0)), OPTIONS) == []
    assert ocr_image(Image.new("RGB", (400, 300), "white"), OPTIONS) == []


def test_clear_background_is_read_as_white() -> None:
    """Black text on a transparent PNG background (transparent black, as drawing tools save it)."""
    image = drawn("Invoice total", mode="RGBA")
    assert [ln.text for ln in ocr_image(image, OPTIONS)] == ["Invoice total"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_extract_image_reads_a_single_image_as_one_page(fmt: str) -> None:
    """Two rows a line apart: two paragraphs, both on page 1, boxes in the image's pixels."""
    doc = extract_image(
        encoded([drawn("Invoice number 4471", "Due in thirty days")], fmt), "invoice", OPTIONS
    )
    assert (doc.kind, doc.title, doc.pages, doc.ocr_pages) == ("image", "invoice", 1, 1)
    assert [(b.page, b.text) for b in doc.blocks] == [(1, "Invoice number 4471"), (1, "Due in thirty days")]
    boxes = [ln.box for b in doc.blocks for ln in b.lines]
    assert all(0 <= x0 < x1 <= 900 and 0 <= y0 < y1 <= 260 for x0, y0, x1, y1 in boxes)


def test_extract_image_reads_each_tiff_frame_as_a_page() -> None:
    data = encoded([drawn("First page alpha"), drawn("Second page beta")], "TIFF")
    doc = extract_image(data, "fax", OPTIONS)
    assert (doc.pages, doc.ocr_pages) == (2, 2)
    assert [(b.page, b.text) for b in doc.blocks] == [(1, "First page alpha"), (2, "Second page beta")]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "the image could not be decoded: "),
        (encoded([drawn("cut short")], "PNG")[:300], "the image could not be decoded: "),
        (b"plain text, not an image", "the image could not be decoded: UnidentifiedImageError"),
        (encoded([drawn("gif")], "GIF"), "the file is a GIF image, not PNG, JPEG or TIFF"),
    ],
)
def test_extract_image_fails_on_a_bad_file_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ExtractionError, match=f"^{reason}"):
        extract_image(data, "bad", OPTIONS)


def test_extract_image_refuses_a_decompression_bomb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the limit on the second frame only: Pillow itself checks the first frame on open."""
    data = encoded([Image.new("RGB", (50, 50), "white"), Image.new("RGB", (100, 100), "white")], "TIFF")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)
    with pytest.raises(ExtractionError, match="frame 2 of 2 is 100x100 pixels, over the limit of 5000"):
        extract_image(data, "bomb", OPTIONS)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ExtractionError, match=r"^the image is too large to decode safely"):
        extract_image(data, "bomb", OPTIONS)


def test_extract_image_with_ocr_off_fails_with_the_reason() -> None:
    with pytest.raises(ExtractionError, match=r"^the file is an image and ingestion\.ocr is off$"):
        extract_image(encoded([drawn("text")], "PNG"), "scan", OcrOptions(mode="off"))


_OFFLINE_RUN = r"""
import json, socket, sys
attempts = []
def blocked(*args, **kwargs):
    attempts.append(repr(args[1:2]))
    raise OSError("network blocked by the test")
socket.socket.connect = socket.socket.connect_ex = blocked
socket.getaddrinfo = lambda host, *a, **k: blocked(None, host)
from PIL import Image, ImageDraw, ImageFont
from ingestion.formats.ocr import OcrOptions, ocr_image
image = Image.new("RGB", (700, 120), "white")
ImageDraw.Draw(image).text((20, 30), "Read offline", fill="black", font=ImageFont.load_default(48))
lines = [line.text for line in ocr_image(image, OcrOptions())]
during = list(attempts)
try:  # control: RapidOCR's own model download must meet the guard
    from rapidocr.utils.download_file import DownloadFile, DownloadFileInput
    import logging
    DownloadFile.run(DownloadFileInput("https://example.com/m.onnx", sys.argv[1], logging.getLogger("x")))
except Exception:
    pass
print(json.dumps({"lines": lines, "during": during, "control": len(attempts) > len(during)}))
"""


@pytest.mark.slow
def test_the_engine_loads_and_reads_with_the_network_blocked(tmp_path: Path) -> None:
    """In a fresh interpreter (the engine not yet loaded): no connection is tried, and the control
    (RapidOCR's downloader) shows the guard would have seen one."""
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE_RUN, str(tmp_path / "m.onnx")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"lines": ["Read offline"], "during": [], "control": True}
