"""Untrusted bytes: every bad input is an ImageError with the right code, and nothing breaks.

These tests build their inputs (no photographs needed) and use the Haar detector, which
ships inside OpenCV, so they run on any machine.
"""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from proctor_fixtures import encode, haar  # noqa: F401  (fixture)

import proctor
from proctor import ImageError, analyse, decode_image, one_face_check, probe
from proctor.decoding import MESSAGES


def pattern(width: int = 640, height: int = 480) -> np.ndarray:
    """A textured test card: edges everywhere, nothing flat, no face."""
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


GOOD_JPEG = encode(pattern())
GOOD_PNG = cv2.imencode(".png", pattern(320, 240))[1].tobytes()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims width×height (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def jpeg_header_only(width: int, height: int) -> bytes:
    """SOI, a baseline SOF claiming width×height, a scan header, a few bytes, EOI."""
    sof = struct.pack(">BHHB", 8, height, width, 3) + bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])
    sos = bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0])
    return (
        b"\xff\xd8"
        + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof
        + b"\xff\xda" + struct.pack(">H", len(sos) + 2) + sos
        + b"\x12\x34\x56" * 10
        + b"\xff\xd9"
    )


def patched_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose SOF0 now claims another size."""
    i = data.index(b"\xff\xc0")
    return data[: i + 5] + struct.pack(">HH", height, width) + data[i + 9 :]


def corrupt_png_data() -> bytes:
    data = bytearray(GOOD_PNG)
    i = data.index(b"IDAT") + 40
    data[i : i + 64] = bytes(64)  # the chunk's CRC no longer matches
    return bytes(data)


GIF_1x1 = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

BAD_INPUTS = [
    ("empty bytes", b"", "empty"),
    ("text", "xin chào".encode(), "not_image"),
    ("html", b"<!doctype html><html></html>", "not_image"),
    ("random bytes", np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "not_image"),
    ("not bytes at all", None, "not_image"),
    ("a str", "ảnh.jpg", "not_image"),
    ("gif", GIF_1x1, "unsupported_format"),
    ("bmp", cv2.imencode(".bmp", pattern(64, 48))[1].tobytes(), "unsupported_format"),
    ("webp", b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(24), "unsupported_format"),
    ("tiff", b"II*\x00" + bytes(100), "unsupported_format"),
    ("jpeg cut in half", GOOD_JPEG[: len(GOOD_JPEG) // 2], "truncated"),
    ("jpeg cut in its header", GOOD_JPEG[:40], "truncated"),
    ("jpeg without its last byte", GOOD_JPEG[:-1], "truncated"),
    ("png cut in half", GOOD_PNG[: len(GOOD_PNG) // 2], "truncated"),
    ("png signature only", GOOD_PNG[:20], "truncated"),
    ("jpeg bomb 60000x60000 header", jpeg_header_only(60000, 60000), "too_large"),
    ("real jpeg claiming 60000x60000", patched_jpeg_size(GOOD_JPEG, 60000, 60000), "too_large"),
    ("png bomb 60000x60000 header", png_header_only(60000, 60000), "too_large"),
    ("png 100000x1 header", png_header_only(100_000, 200), "too_large"),
    ("png zero width", png_header_only(0, 480), "empty"),
    ("png 1x1", cv2.imencode(".png", pattern(16, 16)[:1, :1])[1].tobytes(), "too_small"),
    ("jpeg 4000x1", encode(np.full((1, 4000, 3), 99, np.uint8)), "too_small"),
    ("png 15x400", cv2.imencode(".png", pattern(400, 16)[:15])[1].tobytes(), "too_small"),
    ("jpeg zero height", jpeg_header_only(640, 0), "empty"),
    ("jpeg junk after a segment", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x12" * 50, "corrupt"),
    ("jpeg with no frame header", b"\xff\xd8\xff\xda\x00\x08" + bytes(6) + b"\xff\xd9", "corrupt"),
    ("png with damaged data", corrupt_png_data(), "corrupt"),
    ("png with a wrong first chunk", b"\x89PNG\r\n\x1a\n" + png_chunk(b"tEXt", b"x" * 13) + png_chunk(b"IEND", b""), "corrupt"),
]


@pytest.mark.parametrize("name, data, code", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_an_image_error_and_analysis_goes_on(haar, name, data, code):
    with pytest.raises(ImageError) as caught:
        analyse(data, haar)
    err = caught.value
    assert err.code == code
    assert err.message and any(ord(ch) > 127 for ch in err.message)  # Vietnamese, with diacritics
    assert one_face_check(data, haar) == (False, code)
    # The worker carries on with the next snapshot.
    after = analyse(GOOD_JPEG, haar)
    assert (after.width, after.height) == (640, 480) and after.headcount == 0


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_code_has_a_vietnamese_message(code):
    err = ImageError(code, fmt="GIF", width=1, height=2, limit="3", size="4")
    assert err.code == code and err.message and str(err).startswith(code)


@pytest.mark.parametrize(
    "data, fmt, size",
    [
        (GOOD_JPEG, "jpeg", (640, 480)),
        (GOOD_PNG, "png", (320, 240)),
        (jpeg_header_only(4000, 3000), "jpeg", (4000, 3000)),
        (GOOD_JPEG + b"\x00" * 16 + b"SEFT trailer", "jpeg", (640, 480)),  # phones append data after EOI
    ],
)
def test_probe_reads_the_header(data, fmt, size):
    info = probe(data)
    assert (info.format, info.width, info.height) == (fmt, *size)


@pytest.mark.parametrize("shape", [(16, 4000), (4000, 16), (16, 16), (17, 23), (3000, 200)])
def test_odd_shapes_are_analysed_without_error(haar, shape):
    image = pattern(max(shape[1], 16), max(shape[0], 16))[: shape[0], : shape[1]]
    data = encode(np.ascontiguousarray(image))
    first = analyse(data, haar, now=0)
    second = analyse(data, haar, first.history, now=10)
    assert (second.width, second.height) == (shape[1], shape[0]) and second.frozen


def test_messages_write_numbers_the_vietnamese_way(haar):
    with pytest.raises(ImageError) as caught:
        analyse(GOOD_JPEG, haar, max_pixels=100_000)
    assert "100.000" in caught.value.message and "640×480" in caught.value.message


def test_pixel_limit_is_a_parameter(haar):
    with pytest.raises(ImageError) as caught:
        analyse(GOOD_JPEG, haar, max_pixels=640 * 480 - 1)
    assert caught.value.code == "too_large"
    assert analyse(GOOD_JPEG, haar, max_pixels=640 * 480).width == 640


def test_png_alpha_is_composited_over_white():
    bgra = np.zeros((40, 60, 4), np.uint8)
    bgra[:, :, :3] = 30
    bgra[:, 30:, 3] = 255  # right half opaque dark grey, left half transparent
    image, info = decode_image(cv2.imencode(".png", bgra)[1].tobytes())
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8 and info.format == "png"
    assert (image[:, :30] == 255).all() and (image[:, 30:] == 30).all()


@pytest.mark.parametrize(
    "array",
    [
        np.full((30, 40), 100, np.uint8),  # grey
        np.full((30, 40), 100 * 257, np.uint16),  # 16-bit grey
        np.full((30, 40, 3), 100 * 257, np.uint16),  # 16-bit colour
    ],
    ids=["grey", "grey16", "colour16"],
)
def test_png_variants_decode_to_8_bit_bgr(array):
    image, _ = decode_image(cv2.imencode(".png", array)[1].tobytes())
    assert image.shape == (30, 40, 3) and image.dtype == np.uint8 and abs(int(image.mean()) - 100) <= 1


def test_large_jpeg_decodes_reduced_but_reports_its_size(haar):
    big = encode(pattern(2560, 1440))
    image, info = decode_image(big, min_side=640)
    assert image.shape[:2] == (360, 640) and (info.width, info.height) == (2560, 1440)  # libjpeg at 1/4
    a = analyse(big, haar)
    assert (a.width, a.height) == (2560, 1440)


def test_public_api_is_exported():
    for name in ("analyse", "one_face_check", "make_detector", "verify_model", "SiteHistory", "ImageError", "Face"):
        assert hasattr(proctor, name)
