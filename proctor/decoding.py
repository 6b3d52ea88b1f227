"""Untrusted image bytes → a BGR array, refusing anything we should not decode.

Snapshots arrive from 164 room cameras and thousands of learners' browsers, so every
byte string is hostile until proven otherwise. The header is parsed by hand *before*
`cv2.imdecode` sees the data: a 60000×60000 JPEG is 60 bytes long and would ask the
decoder for 10 GB. Only JPEG and PNG are accepted (what cameras and `<canvas>` produce).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NoReturn

import cv2
import numpy as np

#: Largest image we decode: 4096×4096 (a 4K camera frame is 8.3 MP).
MAX_PIXELS = 4096 * 4096
#: Largest upload we look at; a 16 MP JPEG at high quality is ~8 MB.
MAX_BYTES = 32 * 1024 * 1024
#: Narrowest side we analyse: below it there is no face to see, and OpenCV's pyramids
#: (ORB, the detectors) fail on 1-pixel-high pictures.
MIN_SIDE = 16

JPEG_SOI = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# SOF markers carry the frame size (C4 = DHT, C8 = JPG extension, CC = DAC are not SOFs).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, 0xD8} | set(range(0xD0, 0xD8))

# Formats we recognise in order to say "not supported" rather than "not an image".
_OTHER_FORMATS = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"),
)

MESSAGES = {
    "empty": "Ảnh rỗng: không có dữ liệu hoặc kích thước bằng 0.",
    "not_image": "Dữ liệu gửi lên không phải là ảnh.",
    "unsupported_format": "Định dạng ảnh {fmt} không được hỗ trợ; chỉ nhận JPEG và PNG.",
    "truncated": "Ảnh bị cắt cụt (chưa tải lên đầy đủ), vui lòng gửi lại.",
    "too_large": "Ảnh quá lớn ({width}×{height} điểm ảnh); tối đa {limit} điểm ảnh.",
    "too_small": "Ảnh quá nhỏ ({width}×{height} điểm ảnh); cần ít nhất {limit} điểm ảnh mỗi chiều.",
    "too_many_bytes": "Tệp ảnh quá lớn ({size} byte); tối đa {limit} byte.",
    "corrupt": "Ảnh bị hỏng, không giải mã được.",
}


class ImageError(ValueError):
    """A snapshot we refuse to analyse: `code` for programs, `message` in Vietnamese for people."""

    def __init__(self, code: str, message: str | None = None, **params):
        self.code = code
        self.message = message or MESSAGES[code].format(**params)
        super().__init__(f"{code}: {self.message}")


def _vn(number: int) -> str:
    """16777216 → "16.777.216", as Vietnamese writes numbers."""
    return f"{number:,}".replace(",", ".")


@dataclass(frozen=True)
class ImageInfo:
    format: str  #: "jpeg" or "png"
    width: int
    height: int


def probe(data: bytes, *, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Read format and size from the header and check the file is complete, without decoding.

    Raises ImageError for anything that is not a whole JPEG or PNG within the pixel limit.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError("not_image")
    data = bytes(data)
    if not data:
        raise ImageError("empty")
    if len(data) > MAX_BYTES:
        raise ImageError("too_many_bytes", size=_vn(len(data)), limit=_vn(MAX_BYTES))
    if data.startswith(JPEG_SOI):
        info = _probe_jpeg(data)
    elif data.startswith(PNG_SIGNATURE):
        info = _probe_png(data)
    else:
        _refuse_other(data)
    if info.width == 0 or info.height == 0:
        raise ImageError("empty")
    if info.width * info.height > max_pixels:
        raise ImageError("too_large", width=info.width, height=info.height, limit=_vn(max_pixels))
    if min(info.width, info.height) < MIN_SIDE:
        raise ImageError("too_small", width=info.width, height=info.height, limit=MIN_SIDE)
    return info


def _refuse_other(data: bytes) -> NoReturn:
    for magic, name in _OTHER_FORMATS:
        if data.startswith(magic):
            raise ImageError("unsupported_format", fmt=name)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        raise ImageError("unsupported_format", fmt="WebP")
    if data[4:8] == b"ftyp":
        raise ImageError("unsupported_format", fmt="HEIF/AVIF")
    raise ImageError("not_image")


def _probe_jpeg(data: bytes) -> ImageInfo:
    """Walk the marker segments up to the first scan: size from SOF, completeness from EOI."""
    size = None
    i, n = 2, len(data)
    while True:
        if i + 2 > n:
            raise ImageError("truncated")
        if data[i] != 0xFF:
            raise ImageError("corrupt")
        while i + 1 < n and data[i + 1] == 0xFF:  # fill bytes
            i += 1
        if i + 2 > n:
            raise ImageError("truncated")
        marker = data[i + 1]
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker == 0xD9:  # EOI before any scan
            raise ImageError("corrupt")
        if i + 4 > n:
            raise ImageError("truncated")
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            raise ImageError("corrupt")
        if marker in _JPEG_SOF:
            if i + 9 > n:
                raise ImageError("truncated")
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            size = (width, height)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        i += 2 + length
    if size is None:
        raise ImageError("corrupt")
    # Inside entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so
    # FFD9 after the first scan is the real end (bytes after it, e.g. a phone's trailer,
    # are tolerated). A cut upload has none: libjpeg would fill the rest with grey.
    if data.find(b"\xff\xd9", i) < 0:
        raise ImageError("truncated")
    return ImageInfo("jpeg", *size)


def _probe_png(data: bytes) -> ImageInfo:
    if len(data) < 33:
        raise ImageError("truncated")
    length, ctype = struct.unpack(">I4s", data[8:16])
    if ctype != b"IHDR" or length != 13:
        raise ImageError("corrupt")
    width, height = struct.unpack(">II", data[16:24])
    if data.rfind(b"IEND", 33) < 0:
        raise ImageError("truncated")
    return ImageInfo("png", width, height)


def decode_image(
    data: bytes, *, max_pixels: int = MAX_PIXELS, min_side: int | None = None
) -> tuple[np.ndarray, ImageInfo]:
    """Decode a JPEG or PNG snapshot to an 8-bit BGR array, after `probe` accepted it.

    With `min_side`, a large JPEG is decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself
    as long as its longest side stays ≥ min_side (a 1920×1080 frame for a 640 px
    detector decodes at 960×540, ~2× faster). PNG alpha is composited over white and
    16-bit or grey PNGs are converted. Returns (image, header info).
    """
    info = probe(data, max_pixels=max_pixels)
    buf = np.frombuffer(bytes(data), dtype=np.uint8)
    try:
        if info.format == "jpeg":
            image = cv2.imdecode(buf, _jpeg_flag(info, min_side))
        else:
            image = _normalise(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))
    except cv2.error as exc:
        raise ImageError("corrupt") from exc
    if image is None or image.size == 0:
        raise ImageError("corrupt")
    return image, info


def _jpeg_flag(info: ImageInfo, min_side: int | None) -> int:
    if min_side:
        longest = max(info.width, info.height)
        for factor, flag in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2)):
            if longest // factor >= min_side:
                return flag
    return cv2.IMREAD_COLOR


def _normalise(image: np.ndarray | None) -> np.ndarray | None:
    if image is None:
        return None
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError("corrupt")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4]
        if alpha.min() == 255:
            return np.ascontiguousarray(image[:, :, :3])
        # Transparent areas would decode as whatever colour sits under them (often black,
        # which reads as "covered"); white is what a browser shows.
        a = alpha.astype(np.float32) / 255.0
        return (image[:, :, :3].astype(np.float32) * a + 255.0 * (1.0 - a)).round().astype(np.uint8)
    if image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image
