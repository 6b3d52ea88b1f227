"""Slides: PDFs made here, by hand, rendered to PNGs; bad files refused with stable codes.

`make_pdf` writes a real PDF (pages of Helvetica text, a correct xref) and, on request,
encrypts it with the Standard security handler (RC4, revision 2), with or without a
user password, so the tests need no PDF tool on the machine.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import pytest

from server.webcast import slides
from server.webcast.slides import SlideFileError

LIMITS = {"max_bytes": 5 << 20, "max_pages": 300}
PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s, j = list(range(256)), 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def make_pdf(n_pages: int, *, encrypt: str | None = None, landscape: bool = True) -> bytes:
    """A PDF of `n_pages` pages saying "Trang <n>". encrypt: None, "owner" (opens without
    a password, but is encrypted) or "user" (needs the password "bi-mat")."""
    w, h = (842, 595) if landscape else (595, 842)
    file_id = hashlib.md5(b"diem-cau-%d" % n_pages).digest()
    key = None
    encrypt_dict = b""
    if encrypt:
        user_pw = b"bi-mat" if encrypt == "user" else b""
        owner_key = hashlib.md5((b"chu-so-huu" + PAD)[:32]).digest()[:5]
        o_value = _rc4(owner_key, (user_pw + PAD)[:32])
        perms = -44  # printing allowed, copying and changing not
        key = hashlib.md5((user_pw + PAD)[:32] + o_value + struct.pack("<i", perms) + file_id).digest()[:5]
        u_value = _rc4(key, PAD)
        encrypt_dict = (b"<< /Filter /Standard /V 1 /R 2 /O <" + o_value.hex().encode() + b"> /U <"
                        + u_value.hex().encode() + b"> /P %d >>" % perms)

    objects: list[bytes] = []  # object n is objects[n - 1]
    n_fixed = 3  # catalog, pages, font
    kids = " ".join(f"{n_fixed + 1 + 2 * i} 0 R" for i in range(n_pages)).encode()
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % n_pages)
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i in range(n_pages):
        page_no, content_no = n_fixed + 1 + 2 * i, n_fixed + 2 + 2 * i
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 3 0 R >> >> "
                       b"/Contents %d 0 R >>" % (w, h, content_no))
        text = b"BT /F1 96 Tf 120 %d Td (Trang %d) Tj ET 0 0 1 rg 40 40 %d 30 re f" % (h // 2, i + 1, 60 * (i + 1))
        if key is not None:
            obj_key = hashlib.md5(key + struct.pack("<I", content_no)[:3] + b"\x00\x00").digest()[: len(key) + 5]
            text = _rc4(obj_key, text)
        objects.append(b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream")
        assert page_no == len(objects) - 1
    if encrypt:
        objects.append(encrypt_dict)

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer = b"<< /Size %d /Root 1 0 R /ID [<%s> <%s>]" % (len(objects) + 1, file_id.hex().encode(), file_id.hex().encode())
    if encrypt:
        trailer += b" /Encrypt %d 0 R" % len(objects)
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def png_info(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_pixels(data: bytes) -> bytes:
    """The raw rows (filter 0 only, as encode_png writes them)."""
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
    return zlib.decompress(idat)


# rendering ----------------------------------------------------------------------------

@pytest.mark.parametrize("n_pages", [1, 3, 12])
def test_every_page_becomes_a_png_1280_wide(tmp_path: Path, n_pages: int):
    data = make_pdf(n_pages)
    assert slides.check_pdf(data, **LIMITS) == n_pages
    assert slides.render_pdf(data, tmp_path, **LIMITS) == n_pages
    files = sorted(tmp_path.iterdir(), key=lambda p: int(p.stem))
    assert [p.name for p in files] == [f"{n}.png" for n in range(1, n_pages + 1)]
    for path in files:
        width, height = png_info(path.read_bytes())
        assert width == 1280 and 880 <= height <= 920  # A4 landscape: 1280 × 905


def test_pages_differ_and_carry_ink(tmp_path: Path):
    slides.render_pdf(make_pdf(2), tmp_path, **LIMITS)
    first, second = (png_pixels((tmp_path / f"{n}.png").read_bytes()) for n in (1, 2))
    assert first != second
    # mostly white paper, with dark text and a blue bar drawn on it
    assert first.count(b"\xff\xff\xff") > len(first) // 6
    assert b"\x00\x00\x00" in first or b"\x01\x01\x01" in first


def test_portrait_pages_are_capped_in_height(tmp_path: Path):
    slides.render_pdf(make_pdf(1, landscape=False), tmp_path, **LIMITS)
    width, height = png_info((tmp_path / "1.png").read_bytes())
    assert height == slides.MAX_PAGE_HEIGHT and width < 1280


def test_encode_png_drops_row_padding():
    rgb = bytes([255, 0, 0, 0, 255, 0, 9, 9]) + bytes([0, 0, 255, 255, 255, 255, 9, 9])  # 2×2, stride 8
    png = slides.encode_png(2, 2, 8, rgb)
    assert png_info(png) == (2, 2)
    assert png_pixels(png) == b"\x00" + rgb[:6] + b"\x00" + rgb[8:14]


# refusals ------------------------------------------------------------------------------

def refused(data: bytes, **limits) -> SlideFileError:
    with pytest.raises(SlideFileError) as info:
        slides.check_pdf(data, **{**LIMITS, **limits})
    return info.value


@pytest.mark.parametrize("data, code", [
    (b"", "slides.empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "slides.not_pdf"),
    ("Bài giảng chuyên đề 1\n".encode() * 50, "slides.not_pdf"),
    (b"PK\x03\x04" + b"\x00" * 500 + b"%%EOF", "slides.not_pdf"),  # a .pptx renamed .pdf
    (b"%PDF-1.7\n" + b"\x00" * 300 + b"\n%%EOF\n", "slides.corrupt"),  # a header and nothing else
    (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n", "slides.corrupt"),
])
def test_files_that_are_not_usable_pdfs_are_refused(data: bytes, code: str):
    assert refused(data).code == code


def test_a_truncated_upload_is_refused():
    data = make_pdf(5)
    for cut in (len(data) // 3, len(data) // 2, len(data) - 40):
        err = refused(data[:cut])
        assert err.code == "slides.corrupt"


def test_garbage_in_the_middle_is_refused_or_rendered_never_crashes(tmp_path: Path):
    data = bytearray(make_pdf(3))
    data[200:700] = b"\xff" * 500  # the page tree and the first page are gone
    try:
        n = slides.render_pdf(bytes(data), tmp_path, **LIMITS)
    except SlideFileError as err:
        assert err.code in ("slides.corrupt", "slides.no_pages")
    else:  # PDFium rebuilt what it could: whatever it says it rendered is there
        assert n == len(list(tmp_path.iterdir()))


@pytest.mark.parametrize("mode", ["user", "owner"])
def test_encrypted_pdfs_are_refused(mode: str):
    assert refused(make_pdf(2, encrypt=mode)).code == "slides.encrypted"


def test_the_encrypted_fixture_is_a_real_encrypted_pdf():
    """The owner-password file opens with PDFium and decrypts to the text we wrote."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(make_pdf(1, encrypt="owner"))
    try:
        assert pdf[0].get_textpage().get_text_range().strip() == "Trang 1"
    finally:
        pdf.close()
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(make_pdf(1, encrypt="user"))
    pdf = pdfium.PdfDocument(make_pdf(1, encrypt="user"), password="bi-mat")
    pdf.close()


def test_limits_on_size_and_pages():
    data = make_pdf(4)
    err = refused(data, max_bytes=len(data) - 1)
    assert err.code == "slides.too_large" and err.details["max_bytes"] == len(data) - 1
    err = refused(data, max_pages=3)
    assert err.code == "slides.too_many_pages" and err.details == {"n_pages": 4, "max_pages": 3}
    assert slides.check_pdf(data, max_bytes=len(data), max_pages=4) == 4


def test_a_pdf_with_no_pages_is_refused():
    data = (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n")
    xref = len(data)
    data += (b"xref\n0 3\n0000000000 65535 f \n%010d 00000 n \n%010d 00000 n \n" % (9, data.index(b"2 0 obj"))
             + b"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    assert refused(data).code in ("slides.no_pages", "slides.corrupt")
