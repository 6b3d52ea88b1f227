"""Slides: a PDF in, one PNG per page out, sized for the bridge points' projectors.

Pure: no Flask, no database. The hub calls `render_pdf` off the event loop
(`realtime.run_blocking`) because PDFium is C code that holds the thread while it draws.
A refusal is a `SlideFileError` with a stable code; the caller turns the code into a
message for people. PDFium is not thread-safe: callers serialise calls (one at a time
per process), see `operations.add_slides`.

PNG encoding is done here with zlib, so the hub needs no imaging library.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

MAGIC = b"%PDF-"
#: the width of a rendered page, in pixels: a projector's 1280×720 or 1280×800.
PAGE_WIDTH = 1280
#: a portrait page would be ~1800 px tall at 1280 wide; cap it so files stay small.
MAX_PAGE_HEIGHT = 1600


class SlideFileError(Exception):
    """A slide file refused; `code` is one of the `slides.*` codes below."""

    def __init__(self, code: str, **details: Any):
        self.code, self.details = code, details
        super().__init__(code)


def check_pdf(data: bytes, *, max_bytes: int, max_pages: int) -> int:
    """The number of pages, or a SlideFileError: empty, too large, not a PDF, cut short,
    corrupt, encrypted, no pages or too many pages."""
    with _open(data, max_bytes=max_bytes, max_pages=max_pages) as pdf:
        return len(pdf)


def render_pdf(data: bytes, out_dir: Path, *, max_bytes: int, max_pages: int, width: int = PAGE_WIDTH) -> int:
    """Render every page to `out_dir/<n>.png` (n from 1); return the number of pages.

    `out_dir` must exist. On a refusal some pages may already be written: the caller
    renders into a scratch folder and throws it away.
    """
    with _open(data, max_bytes=max_bytes, max_pages=max_pages) as pdf:
        n_pages = len(pdf)
        for index in range(n_pages):
            (out_dir / f"{index + 1}.png").write_bytes(_render_page(pdf, index, width))
        return n_pages


class _open:
    """Open and vet a PDF; a context manager that closes it."""

    def __init__(self, data: bytes, *, max_bytes: int, max_pages: int):
        if not data:
            raise SlideFileError("slides.empty")
        if len(data) > max_bytes:
            raise SlideFileError("slides.too_large", max_bytes=max_bytes)
        # the spec lets a few bytes of junk precede the header; nothing real puts more.
        if MAGIC not in data[:1024]:
            raise SlideFileError("slides.not_pdf")
        # an upload cut short has no end-of-file marker; PDFium would half-open it.
        if b"%%EOF" not in data[-1024:]:
            raise SlideFileError("slides.corrupt", reason="truncated")
        try:
            self.pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as err:
            # PDFium's last-error code is per thread and not always reset by a failed
            # load: trust "password" only if the file has an encryption dictionary.
            if err.err_code == pdfium_c.FPDF_ERR_PASSWORD and b"/Encrypt" in data:
                raise SlideFileError("slides.encrypted") from None
            raise SlideFileError("slides.corrupt", reason=str(err)) from None
        # opened without a password but encrypted all the same (an owner password that
        # forbids copying): the organizers' rule is to take only unprotected files.
        if pdfium_c.FPDF_GetSecurityHandlerRevision(self.pdf.raw) != -1:
            self.pdf.close()
            raise SlideFileError("slides.encrypted")
        n_pages = len(self.pdf)
        if n_pages == 0:
            self.pdf.close()
            raise SlideFileError("slides.no_pages")
        if n_pages > max_pages:
            self.pdf.close()
            raise SlideFileError("slides.too_many_pages", n_pages=n_pages, max_pages=max_pages)

    def __enter__(self) -> pdfium.PdfDocument:
        return self.pdf

    def __exit__(self, *exc: Any) -> None:
        self.pdf.close()


def _render_page(pdf: pdfium.PdfDocument, index: int, width: int) -> bytes:
    try:
        page = pdf[index]
    except pdfium.PdfiumError:
        raise SlideFileError("slides.corrupt", page=index + 1) from None
    try:
        page_w, page_h = page.get_size()
        if page_w <= 0 or page_h <= 0:
            raise SlideFileError("slides.corrupt", page=index + 1)
        scale = min(width / page_w, MAX_PAGE_HEIGHT / page_h)
        bitmap = page.render(scale=scale, rev_byteorder=True, force_bitmap_format=pdfium_c.FPDFBitmap_BGR)
        try:
            return encode_png(bitmap.width, bitmap.height, bitmap.stride, bytes(bitmap.buffer))
        finally:
            bitmap.close()
    except pdfium.PdfiumError:
        raise SlideFileError("slides.corrupt", page=index + 1) from None
    finally:
        page.close()


def encode_png(width: int, height: int, stride: int, rgb: bytes) -> bytes:
    """An 8-bit RGB PNG from rows of `stride` bytes (each row: width×3 bytes, then padding)."""
    row = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride : y * stride + row] for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
