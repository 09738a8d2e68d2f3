"""OCR of scanned PDF pages and images, with RapidOCR (PP-OCRv6 on ONNX Runtime).

Pure functions over images. The PDF extractor (:mod:`ingestion.formats.pdf`) decides per page
with :func:`needs_ocr`, renders the page and calls :func:`ocr_image` then :func:`ocr_blocks`;
the image extractor (:mod:`ingestion.formats.image`) does the same for PNG, JPEG and TIFF.

The engine was chosen by measurement (``bench/ocr.py``, docs/ingestion.md): on rendered SEC 10-Q
pages RapidOCR, as set here, made fewer errors than Tesseract (CER 1.7% against 2.6% at 300 dpi),
at about the same speed; it installs with pip alone and its models ship in its wheel, so it runs
offline. It is loaded once per process, on first use.
"""

from __future__ import annotations

import itertools
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from core.errors import ExtractionError
from ingestion.formats.document import Block, Box, Line

if TYPE_CHECKING:
    import pypdfium2
    from PIL import Image

    from core.settings import IngestionSettings

OcrMode = Literal["auto", "always", "off"]

# The ISO 639-1 languages of the multilingual PP-OCRv6 models that ship in the rapidocr wheel
# (its default_models.yaml routes all of them to those two files). Others (Cyrillic, Greek,
# Arabic, Korean, Indic scripts...) have models RapidOCR would download, which Lore never does.
_LANGUAGES = frozenset(
    "af az bs ca cs cy da de en es et eu fi fr ga gl hr hu id is it ja ku la lb lt lv mi ms mt nl no "  # noqa: SIM905
    "oc pl pt qu rm ro sk sl sq sv sw tl tr uz vi zh".split()
)
_MODELS = {"Det": "PP-OCRv6_det_small.onnx", "Rec": "PP-OCRv6_rec_small.onnx"}
# Text is found on the page scaled to at most this many pixels a side (about 180 dpi for a Letter
# page) and read from the full-resolution image: on three 10-Q pages at 300 dpi, finding it at
# full resolution took 4.3x as long (6.4 s against 1.5 s a page) for the same CER (0.18%, 0.19%).
_DETECT_SIDE = 2000
# Darker than this (0-255, inverted grey) is ink, not paper or scanner noise: see _content_box.
_INK = 40
# Pages this large are refused by RapidOCR's own guard; Lore checks image sizes before that.
_MAX_SIDE = 20_000
# A line whose vertical overlap with a row is at least this share of the lower of the two
# heights sits on the row's baseline (table cells, or a line the engine cut in two).
_SAME_ROW = 0.5
# reading_order: columns are parted by horizontal gaps wider than this share of the median line
# height (the narrowest gutter between text columns on the 10-Qs is about half a line height;
# the words of a line are one box), and read one by one when every line of each is at least
# this share letters. On 14 10-Q pages (8 of Intel's, text tables), before dashes were added,
# this took CER from 14.0% (rows only) to 7.8%, and no page read worse.
_GUTTER = 0.3
_TEXT_LETTERS = 0.5
# _dashes: a bar at most this share of the median line height high, this wide, and this solid
# (a 10-Q's em dash at 300 dpi: 30 x 3 px for 46 px lines; a table's rules are far wider).
_DASH_HEIGHT = 0.15
_DASH_WIDTH = (0.35, 1.1)
_DASH_FILL = 0.7
# A vertical gap between two lines over this share of the page's median line height starts a new
# paragraph: lines of one paragraph touch (their boxes even overlap a little), while a blank line
# is about a line height.
_PARAGRAPH_GAP = 0.5
# needs_ocr: a text layer with fewer than _SCAN_MAX_CHARS visible characters on a page images
# cover by at least _SCAN_SHARE is a scan with a stamped header, Bates number or caption. A full
# page of 10-Q text holds 2,000-5,000 characters.
_SCAN_SHARE = 0.5
_SCAN_MAX_CHARS = 200

_engine_lock = threading.Lock()
_engine: Any = None


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """What ``ingestion.ocr``, ``ingestion.ocr_languages`` and ``ingestion.ocr_dpi`` say."""

    mode: OcrMode = "auto"
    languages: tuple[str, ...] = ("en",)
    dpi: int = 300

    @classmethod
    def of(cls, settings: IngestionSettings) -> OcrOptions:
        return cls(settings.ocr, tuple(settings.ocr_languages), settings.ocr_dpi)


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One line of text OCR read, its box in the image's pixels, and the engine's confidence (0-1)."""

    text: str
    box: Box
    confidence: float


def ocr_image(image: Image.Image, options: OcrOptions) -> list[OcrLine]:
    """The lines of text in ``image``, in reading order (see :func:`reading_order`), with the lone
    em dashes of table cells (see :func:`_dashes`).

    Raises ExtractionError for a language the bundled models do not read, and for any failure
    of the engine ("OCR failed: ...").
    """
    _check_languages(options.languages)
    engine = _load_engine()
    try:
        plain = _plain(image)
        content = _content_box(plain)
        if content is None:
            return []
        left, top = content[0], content[1]
        result = engine(plain.crop(content))
        if not getattr(result, "txts", None) or getattr(result, "boxes", None) is None:
            return []
        lines = []
        for text, points, score in zip(result.txts, result.boxes, result.scores, strict=True):
            if text.strip():
                xs = [float(x) + left for x, _ in points]
                ys = [float(y) + top for _, y in points]
                lines.append(
                    OcrLine(" ".join(text.split()), (min(xs), min(ys), max(xs), max(ys)), float(score))
                )
        if lines:
            lines.extend(_dashes(plain, lines))
    except Exception as exc:
        raise ExtractionError(f"OCR failed: {type(exc).__name__}: {exc}") from exc
    return reading_order(lines)


def _content_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """The part of ``image`` that holds anything darker than paper, with a margin; None when blank.

    The text detector is given that part only: on a page that is mostly blank it found nothing
    at all (one line of 12 pt text on an A4 page rendered at 150 to 300 dpi), and cropped it
    read the line. It also spares the detector the empty margins.
    """
    from PIL import ImageOps

    ink = ImageOps.invert(image.convert("L")).point(lambda v: 255 if v > _INK else 0)
    found = ink.getbbox()
    if found is None:
        return None
    margin = max(16, int(0.02 * max(image.size)))
    left, top, right, bottom = found
    return (
        max(0, left - margin),
        max(0, top - margin),
        min(image.width, right + margin),
        min(image.height, bottom + margin),
    )


def reading_order(lines: Sequence[OcrLine]) -> list[OcrLine]:
    """``lines`` top to bottom, then left to right; lines on one baseline (table cells, or pieces
    of a line the engine cut) joined into one with a space, their boxes united.

    Columns of text are read one after the other: the lines are cut into bands where no line
    spans a vertical gap, and a band into columns at horizontal gaps (wider than 0.3 of the
    median line height); when every line of every column is mostly letters, the columns are read
    left to right, each in the same way. Any other band (a table with figures) is read by rows,
    so that a row keeps its label with its figures.
    """
    if not lines:
        return []
    height = statistics.median(ln.box[3] - ln.box[1] for ln in lines)
    return _cut(list(lines), height)


def ocr_blocks(lines: Sequence[OcrLine], *, page: int | None, scale: float) -> list[Block]:
    """Paragraph blocks of OCRed ``lines``, each with its lines' spans and boxes (times ``scale``:
    72 / dpi for a rendered PDF page, so boxes are in PDF points; 1 for an image).

    ``lines`` are taken in the order given (:func:`ocr_image`'s reading order); a vertical gap
    over half the median line height starts a new block, and so does a line wholly above the one
    before it (the top of the next column). A block's text is its lines joined
    with single spaces, and ``block.text[line.start:line.end]`` is each line's text.
    """
    lines = [ln for ln in lines if ln.text.strip()]
    if not lines:
        return []
    gap = _PARAGRAPH_GAP * statistics.median(ln.box[3] - ln.box[1] for ln in lines)
    groups: list[list[OcrLine]] = [[lines[0]]]
    for prev, line in itertools.pairwise(lines):
        # a blank line's gap, or the top of the next column (a line wholly above the last)
        if line.box[1] - prev.box[3] > gap or line.box[3] < prev.box[1]:
            groups.append([line])
        else:
            groups[-1].append(line)
    blocks = []
    for group in groups:
        texts = [" ".join(ln.text.split()) for ln in group]
        spans: list[Line] = []
        start = 0
        for text, ln in zip(texts, group, strict=True):
            x0, y0, x1, y1 = ln.box
            spans.append(Line(start, start + len(text), (x0 * scale, y0 * scale, x1 * scale, y1 * scale)))
            start += len(text) + 1
        blocks.append(Block(" ".join(texts), page=page, lines=tuple(spans)))
    return blocks


def image_share(page: pypdfium2.PdfPage) -> float:
    """The share (0-1) of ``page``'s area that its image objects cover (the caller holds PDFium's lock).

    Images inside Form XObjects count, placed on the page by their forms' matrices; overlapping
    images count once; all is clipped to the page's box (media box within crop box).
    """
    import pypdfium2.raw

    left, bottom, right, top = (float(v) for v in page.get_bbox())
    if right <= left or top <= bottom:
        return 0.0
    rects = []
    for obj in page.get_objects(filter=[pypdfium2.raw.FPDF_PAGEOBJ_IMAGE]):
        x0, y0, x1, y1 = obj.get_bounds()
        form = obj.container
        while form is not None:
            x0, y0, x1, y1 = form.get_matrix().on_rect(x0, y0, x1, y1)
            form = form.container
        x0, x1 = max(x0, left), min(x1, right)
        y0, y1 = max(y0, bottom), min(y1, top)
        if x1 > x0 and y1 > y0:
            rects.append((x0, y0, x1, y1))
    return min(1.0, _union_area(rects) / ((right - left) * (top - bottom)))


def needs_ocr(text: str, image_share: float) -> bool:
    """Whether ``ingestion.ocr = auto`` OCRs a PDF page: no text layer, or one almost empty beside
    the page's images.

    True when ``text`` has no visible character (a scan, or text drawn as curves), or fewer than
    200 on a page whose images cover at least half of it (``image_share >= 0.5``: a scan with a
    stamped header). A short text layer beside no large image is the page's text (a title page, a
    page of one line): OCR would read it again at best, and replace it with less at worst.
    """
    visible = len(text) - sum(ch.isspace() for ch in text)
    return visible == 0 or (image_share >= _SCAN_SHARE and visible < _SCAN_MAX_CHARS)


def _check_languages(languages: Sequence[str]) -> None:
    """Raise ExtractionError unless every one of ``languages`` (ISO 639-1) is one the models read."""
    if not languages:
        raise ExtractionError("no OCR language is set (ingestion.ocr_languages is empty)")
    unknown = [code for code in languages if _primary(code) not in _LANGUAGES]
    if unknown:
        raise ExtractionError(
            f"OCR cannot read language {', '.join(unknown)}: the bundled models read "
            f"{', '.join(sorted(_LANGUAGES))} (ingestion.ocr_languages)"
        )


def _primary(code: str) -> str:
    """The primary subtag of a language tag: ``en-GB`` and ``en_gb`` are ``en``."""
    return code.strip().lower().replace("_", "-").split("-")[0]


def _load_engine() -> Any:
    """The process's one RapidOCR engine, built on first use from the models in its wheel."""
    global _engine
    if _engine is not None:
        return _engine
    with _engine_lock:
        if _engine is None:
            _engine = _build_engine()
    return _engine


def _build_engine() -> Any:
    try:
        from importlib.resources import files

        from rapidocr import RapidOCR

        models = files("rapidocr") / "models"
        paths = {section: models / name for section, name in _MODELS.items()}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"the models that ship in the rapidocr wheel are missing: {missing}")
        return RapidOCR(
            params={
                # Given model paths, RapidOCR loads those files and never reaches its downloader.
                **{f"{section}.model_path": str(path) for section, path in paths.items()},
                # Its 180-degree line classifier turned upright 10-Q lines upside down, reading them
                # as garbage (CER 6.7% with it, 0.2% without, on three pages); scans are upright.
                "Global.use_cls": False,
                "Global.max_side_len": _MAX_SIDE,
                "Det.limit_type": "max",
                "Det.limit_side_len": _DETECT_SIDE,
                "Global.log_level": "error",
            }
        )
    except Exception as exc:
        raise ExtractionError(f"OCR failed: the engine could not load: {type(exc).__name__}: {exc}") from exc


def _plain(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB or grey: transparency over white, 16-bit and float grey scaled down."""
    from PIL import Image

    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        low, high = cast(tuple[float, float], image.getextrema())
        span = float(high - low) or 1.0
        return image.convert("F").point(lambda v: (v - low) * 255.0 / span).convert("L")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _dashes(image: Image.Image, lines: Sequence[OcrLine]) -> list[OcrLine]:
    """Em dashes standing alone in a row of text: the "—" a financial statement writes for nil.

    The engine's detector finds no text in a lone dash, so solid ink bars of a dash's size (for
    the page's median line height), outside every text box and level with one, are added as "—"
    lines (confidence 1). On 14 rendered 10-Q pages it added 106 dashes where the text layers hold
    110 em dashes (the others inside lines, which the engine reads), never more than a page holds.
    """
    import cv2  # OpenCV comes with rapidocr, which runs on it
    import numpy as np

    height = statistics.median(ln.box[3] - ln.box[1] for ln in lines)
    grey = np.asarray(image.convert("L"))
    _, ink = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    boxes = np.array([ln.box for ln in lines])
    dashes = []
    for x, y, w, h, area in stats[1:].tolist():
        if not (h <= _DASH_HEIGHT * height and _DASH_WIDTH[0] * height <= w <= _DASH_WIDTH[1] * height):
            continue
        if area < _DASH_FILL * w * h:
            continue
        inside = (
            (boxes[:, 0] - 2 <= x)
            & (x + w <= boxes[:, 2] + 2)
            & (boxes[:, 1] - 2 <= y)
            & (y + h <= boxes[:, 3] + 2)
        )
        level = (boxes[:, 1] <= y + h / 2) & (y + h / 2 <= boxes[:, 3])
        if level.any() and not inside.any():
            dashes.append(OcrLine("—", (float(x), float(y), float(x + w), float(y + h)), 1.0))
    return dashes


def _cut(lines: list[OcrLine], height: float) -> list[OcrLine]:
    ordered: list[OcrLine] = []
    for band in _runs(lines, 1, 0.0):
        columns = _runs(band, 0, _GUTTER * height)
        if len(columns) > 1 and all(_is_text(ln.text) for column in columns for ln in column):
            for column in columns:
                ordered.extend(_cut(column, height))
        else:
            ordered.extend(_rows(band))
    return ordered


def _runs(lines: Sequence[OcrLine], axis: int, gap: float) -> list[list[OcrLine]]:
    """``lines`` in runs along ``axis`` (0: x, 1: y), a new run after a gap wider than ``gap``."""
    runs: list[list[OcrLine]] = []
    end = 0.0
    for line in sorted(lines, key=lambda ln: ln.box[axis]):
        if runs and line.box[axis] - end <= gap:
            runs[-1].append(line)
            end = max(end, line.box[axis + 2])
        else:
            runs.append([line])
            end = line.box[axis + 2]
    return runs


def _is_text(text: str) -> bool:
    chars = "".join(text.split())
    return sum(ch.isalpha() for ch in chars) >= _TEXT_LETTERS * len(chars)


def _rows(lines: Sequence[OcrLine]) -> list[OcrLine]:
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        if rows and _same_row(rows[-1][0].box, line.box):
            rows[-1].append(line)
        else:
            rows.append([line])
    return [_join_row(sorted(row, key=lambda ln: ln.box[0])) for row in rows]


def _same_row(row: Box, box: Box) -> bool:
    overlap = min(row[3], box[3]) - max(row[1], box[1])
    return overlap >= _SAME_ROW * min(row[3] - row[1], box[3] - box[1])


def _join_row(row: Sequence[OcrLine]) -> OcrLine:
    if len(row) == 1:
        return row[0]
    weights = [len(ln.text) for ln in row]
    return OcrLine(
        " ".join(ln.text for ln in row),
        (
            min(ln.box[0] for ln in row),
            min(ln.box[1] for ln in row),
            max(ln.box[2] for ln in row),
            max(ln.box[3] for ln in row),
        ),
        sum(w * ln.confidence for w, ln in zip(weights, row, strict=True)) / sum(weights),
    )


def _union_area(rects: Sequence[tuple[float, float, float, float]]) -> float:
    """The area of the union of ``rects`` (left, bottom, right, top), over a grid of their edges."""
    if not rects:
        return 0.0
    import numpy as np

    xs = np.unique([v for r in rects for v in (r[0], r[2])])
    ys = np.unique([v for r in rects for v in (r[1], r[3])])
    covered = np.zeros((len(xs) - 1, len(ys) - 1), dtype=bool)
    for x0, y0, x1, y1 in rects:
        covered[
            np.searchsorted(xs, x0) : np.searchsorted(xs, x1),
            np.searchsorted(ys, y0) : np.searchsorted(ys, y1),
        ] = True
    return float(np.diff(xs) @ covered @ np.diff(ys))
