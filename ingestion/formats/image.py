"""Text of PNG, JPEG and TIFF images, read by OCR (:mod:`ingestion.formats.ocr`).

A multi-page TIFF (a fax, a scanner's output) is one page per frame. Boxes are in the image's
pixels, from its top-left corner, after its EXIF orientation is applied.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from core.errors import ExtractionError
from ingestion.formats.document import Block, ExtractedDocument
from ingestion.formats.ocr import OcrOptions, ocr_blocks, ocr_image

if TYPE_CHECKING:
    from PIL import Image

# The formats Lore reads as images, by Pillow's name; MPO is the JPEG variant some cameras
# write (a JPEG with a second, stereo or preview frame): only its first frame is read.
_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "TIFF": "TIFF"}


def extract_image(data: bytes, stem: str, options: OcrOptions) -> ExtractedDocument:
    """Blocks of the text OCR reads in the image (each TIFF frame a page, numbered from 1).

    Raises ExtractionError when ``ingestion.ocr`` is off, for a file Pillow cannot decode, an
    image over Pillow's decompression-bomb limit (``MAX_IMAGE_PIXELS``), and an OCR failure.
    """
    if options.mode == "off":
        raise ExtractionError("the file is an image and ingestion.ocr is off")
    from PIL import Image, UnidentifiedImageError

    blocks: list[Block] = []
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = _FORMATS.get(image.format or "")
            if kind is None:
                raise ExtractionError(
                    f"the file is a {image.format or 'unknown'} image, not PNG, JPEG or TIFF"
                )
            frames = getattr(image, "n_frames", 1) if kind == "TIFF" else 1
            for number in range(1, frames + 1):
                image.seek(number - 1)
                _check_size(image, number, frames)
                page = _upright(image)
                blocks.extend(ocr_blocks(ocr_image(page, options), page=number, scale=1.0))
    except ExtractionError:
        raise
    except Image.DecompressionBombError as exc:
        # Image.open refuses twice MAX_IMAGE_PIXELS itself (and only warns below that).
        raise ExtractionError(f"the image is too large to decode safely: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow's decoders raise these for corrupt or truncated files.
        raise ExtractionError(f"the image could not be decoded: {type(exc).__name__}: {exc}") from exc
    return ExtractedDocument(title=stem, kind="image", blocks=blocks, pages=frames, ocr_pages=frames)


def _check_size(image: Image.Image, number: int, frames: int) -> None:
    """Refuse a frame over Pillow's pixel limit before decoding it: Image.open refuses only twice the
    limit, and for the first frame only."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    width, height = image.size
    if limit is not None and width * height > limit:
        where = f"frame {number} of {frames} is" if frames > 1 else "it is"
        raise ExtractionError(
            f"the image is too large to decode safely: {where} {width}x{height} pixels, "
            f"over the limit of {limit} (Pillow's MAX_IMAGE_PIXELS, a decompression-bomb guard)"
        )


def _upright(image: Image.Image) -> Image.Image:
    """The current frame, decoded, turned as its EXIF orientation says."""
    from PIL import ImageOps

    frame = image.copy()
    return ImageOps.exif_transpose(frame) or frame
