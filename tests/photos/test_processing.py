"""Photo processing, pure: the type from magic bytes, orientation, stripping, sizes, refusals.

Every image is generated here (HEIC with pillow-heif's writer); no binary fixture.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import blurhash  # type: ignore[import-untyped]
import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile, IptcImagePlugin, PngImagePlugin

from marketplace import photos
from marketplace.photos import PhotoRefused, detect, dimensions, output_sizes, process

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
RED, GREEN, GREY = (255, 0, 0), (0, 255, 0), (128, 128, 128)
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description'
    b' xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="HomefrontTestCam"/>'
    b"</rdf:RDF></x:xmpmeta>"
)
# Strings that would betray metadata anywhere in an output file (long enough that
# compressed pixels never contain them by chance).
METADATA_SIGNATURES = (
    b"Exif\x00\x00",
    b"http://ns.adobe.com/xap",
    b"8BIM",
    b"Photoshop 3.0",
    b"ICC_PROFILE",
    b"HomefrontTestCam",
    b"TestPhoneMaker",
)


def encoded(image: Image.Image, pillow_format: str, **options: Any) -> bytes:
    if pillow_format == "HEIF":
        photos._register_heif()
    out = io.BytesIO()
    image.save(out, format=pillow_format, **options)
    return out.getvalue()


def scene(size: tuple[int, int] = (600, 400)) -> Image.Image:
    """A photo-like RGB image: gradients, so every size encodes to something real."""
    width, height = size
    red = Image.linear_gradient("L").resize(size)
    green = Image.linear_gradient("L").rotate(90).resize(size)
    blue = Image.radial_gradient("L").resize((width, height))
    return Image.merge("RGB", (red, green, blue))


def opened(data: bytes) -> ImageFile.ImageFile:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def nearest(colour: Any) -> tuple[int, int, int]:
    """Which of RED, GREEN and GREY a decoded pixel is (lossy encodes shift it a little)."""
    return min(
        (RED, GREEN, GREY), key=lambda c: sum((a - b) ** 2 for a, b in zip(c, colour, strict=True))
    )


def near(pixel: Any, expected: tuple[int, ...], tolerance: int) -> bool:
    """Whether each channel of ``pixel`` is within ``tolerance`` of ``expected``'s."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` RGB and holds 16 bytes of pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        import zlib

        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", bytes(16))
        + chunk(b"IEND", b"")
    )


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = b"ftyp" + major + bytes(4) + b"".join(compatible)
    return (len(body) + 4).to_bytes(4, "big") + body + bytes(64)


# -- what a file is -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pillow_format", "kind"),
    [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("HEIF", "heif")],
)
def test_each_accepted_format_is_known_by_its_first_bytes(pillow_format: str, kind: str) -> None:
    assert detect(encoded(scene((64, 48)), pillow_format)) == kind


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"Hello, this is a text file named photo.jpg\n" * 20, id="text"),
        pytest.param(b"GIF89a" + bytes(64), id="gif"),
        pytest.param(ftyp(b"avif", b"mif1", b"miaf"), id="avif"),
        pytest.param(ftyp(b"mif1", b"miaf"), id="heif-without-hevc"),
        pytest.param(ftyp(b"isom", b"mp41"), id="mp4"),
        pytest.param(b"RIFF\x00\x00\x00\x00WAVEfmt ", id="wav"),
    ],
)
def test_anything_else_is_not_an_image(data: bytes) -> None:
    with pytest.raises(PhotoRefused) as refused:
        detect(data)
    assert refused.value.reason == "not_an_image"


def test_a_heif_is_known_by_a_compatible_hevc_brand_too() -> None:
    assert detect(ftyp(b"mif1", b"mif1", b"heic")) == "heif"


def test_a_text_file_named_jpg_is_refused_whatever_it_claims() -> None:
    # The declared name and content type never reach processing: only the bytes do.
    with pytest.raises(PhotoRefused) as refused:
        process(b"This is not a photo, whatever photo.jpg and image/jpeg say.\n")
    assert refused.value.reason == "not_an_image"
    assert "JPEG, PNG, WebP or HEIC" in str(refused.value)


# -- refused before decoding -----------------------------------------------------------------


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every pixel decode (ImageFile.load) instead of doing it."""
    loads: list[str] = []

    def load(self: ImageFile.ImageFile) -> Any:
        loads.append(f"{self.format} {self.size}")
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return loads


def test_a_60_megapixel_png_is_refused_without_being_decoded(no_decoding: list[str]) -> None:
    bomb = png_header(8000, 7500)
    with pytest.raises(PhotoRefused) as refused:
        process(bomb)
    assert refused.value.reason == "too_many_pixels"
    with pytest.raises(PhotoRefused):
        dimensions(bomb, "png")
    assert no_decoding == []


def test_a_gigapixel_claim_is_refused_the_same_way(no_decoding: list[str]) -> None:
    # Pillow's own guard raises first at this size; the verdict is the same.
    with pytest.raises(PhotoRefused) as refused:
        process(png_header(40_000, 25_000))
    assert refused.value.reason == "too_many_pixels"
    assert no_decoding == []


def test_a_webp_over_25_megapixels_is_refused_without_being_decoded(
    no_decoding: list[str],
) -> None:
    # Pillow decodes WebP through full-size RGBA copies: its limit is lower (photos.py).
    flat = encoded(Image.new("RGB", (5100, 5000), GREY), "WEBP", lossless=True, method=0)
    with pytest.raises(PhotoRefused) as refused:
        process(flat)
    assert refused.value.reason == "too_many_pixels"
    assert no_decoding == []


def test_exactly_50_megapixels_is_allowed_and_measured_from_the_header(
    no_decoding: list[str],
) -> None:
    assert dimensions(png_header(10_000, 5_000), "png") == (10_000, 5_000)
    assert no_decoding == []


def test_dimensions_are_upright() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    assert dimensions(encoded(scene((300, 200)), "JPEG", exif=exif), "jpeg") == (200, 300)


# -- refused when broken ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="half"),
        pytest.param(lambda data: data[:300], id="headers-only"),
        pytest.param(lambda data: data[:4], id="marker-only"),
    ],
)
def test_a_truncated_jpeg_is_refused_cleanly(cut: Any) -> None:
    data = encoded(scene((1200, 800)), "JPEG", quality=90)
    with pytest.raises(PhotoRefused) as refused:
        process(cut(data))
    assert refused.value.reason == "unreadable"
    assert refused.value.__cause__ is not None  # the decoder's error, kept for the log


@pytest.mark.parametrize("pillow_format", ["PNG", "WEBP", "HEIF"])
def test_other_truncated_formats_are_refused_cleanly(pillow_format: str) -> None:
    data = encoded(scene((400, 300)), pillow_format)
    with pytest.raises(PhotoRefused) as refused:
        process(data[: len(data) // 2])
    assert refused.value.reason == "unreadable"


@pytest.mark.parametrize("pillow_format", ["JPEG", "PNG", "WEBP"])
def test_corrupted_bytes_end_in_a_photo_or_a_refusal_never_another_error(
    pillow_format: str,
) -> None:
    original = encoded(scene((160, 120)), pillow_format)
    chance = random.Random(pillow_format)
    for _ in range(25):
        data = bytearray(original)
        for _ in range(chance.randint(1, 8)):
            data[chance.randrange(len(data))] = chance.randrange(256)
        with contextlib.suppress(PhotoRefused):
            process(bytes(data))


# -- upright ---------------------------------------------------------------------------------

# Where the upright photo's top-left and top-right corners are in the stored pixels, for
# each EXIF orientation, from the tag's definition ("row 0 is the visual ..., column 0 is
# the visual ..."), independently of Pillow's mapping to transpositions.
STORED_CORNERS = {
    1: ("top-left", "top-right"),
    2: ("top-right", "top-left"),
    3: ("bottom-right", "bottom-left"),
    4: ("bottom-left", "bottom-right"),
    5: ("top-left", "bottom-left"),
    6: ("bottom-left", "top-left"),
    7: ("bottom-right", "top-right"),
    8: ("top-right", "bottom-right"),
}


def stored_photo(orientation: int, upright: tuple[int, int] = (480, 320)) -> Image.Image:
    """Grey pixels that, shown with ``orientation``, have a red top-left corner and a green
    top-right one (two marks, so no mirror or turn of the photo can pass for upright).
    """
    width, height = upright if orientation <= 4 else upright[::-1]
    image = Image.new("RGB", (width, height), GREY)
    side = 80
    for corner, colour in zip(STORED_CORNERS[orientation], (RED, GREEN), strict=True):
        vertical, horizontal = corner.split("-")
        x = 0 if horizontal == "left" else width - side
        y = 0 if vertical == "top" else height - side
        image.paste(colour, (x, y, x + side, y + side))
    return image


@pytest.mark.parametrize("orientation", sorted(STORED_CORNERS))
def test_every_exif_orientation_comes_out_upright(orientation: int) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    data = encoded(stored_photo(orientation), "JPEG", exif=exif, quality=95)

    photo = process(data)

    assert (photo.width, photo.height) == (480, 320)
    for rendition in photo.renditions:
        image = opened(rendition.data).convert("RGB")
        assert image.size == (rendition.width, rendition.height)
        assert rendition.width > rendition.height
        inset = 8
        assert nearest(image.getpixel((inset, inset))) == RED, rendition.format
        assert nearest(image.getpixel((image.width - inset, inset))) == GREEN
        assert nearest(image.getpixel((image.width // 2, image.height - inset))) == GREY
        assert nearest(image.getpixel((inset, image.height - inset))) == GREY


def test_an_orientation_in_a_png_or_webp_is_applied_too() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    for pillow_format in ("PNG", "WEBP"):
        photo = process(encoded(stored_photo(6), pillow_format, exif=exif.tobytes()))
        image = opened(photo.renditions[0].data).convert("RGB")
        assert (photo.width, photo.height) == (480, 320)
        assert nearest(image.getpixel((8, 8))) == RED
        assert nearest(image.getpixel((image.width - 8, 8))) == GREEN


# -- nothing but pixels ----------------------------------------------------------------------


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestPhoneMaker"
    exif[ExifTags.Base.Model] = "Model 7"
    exif[ExifTags.Base.Orientation] = 1
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 26.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 39.0)
    return exif


def iptc_segment() -> bytes:
    """An APP13 Photoshop segment holding an IPTC record (a by-line), as cameras write it."""
    record = b"\x1c\x02\x50" + len(b"A. Seller").to_bytes(2, "big") + b"A. Seller"
    resource = b"8BIM\x04\x04\x00\x00" + len(record).to_bytes(4, "big") + record
    body = b"Photoshop 3.0\x00" + resource
    return b"\xff\xed" + (len(body) + 2).to_bytes(2, "big") + body


def srgb_profile() -> bytes:
    profile: bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return profile


def tagged_upload(pillow_format: str) -> bytes:
    """A photo carrying everything a phone writes: EXIF with GPS, XMP, an ICC profile, and
    for a JPEG a comment and an IPTC record."""
    image, exif, profile = scene(), gps_exif(), srgb_profile()
    if pillow_format == "JPEG":
        data = encoded(image, "JPEG", exif=exif, xmp=XMP, icc_profile=profile, comment="x")
        return data[:2] + iptc_segment() + data[2:]
    if pillow_format == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        return encoded(image, "PNG", exif=exif, icc_profile=profile, pnginfo=info)
    return encoded(image, pillow_format, exif=exif.tobytes(), xmp=XMP, icc_profile=profile)


def jpeg_headers(data: bytes) -> list[tuple[int, bytes]]:
    """The (marker, payload) of each segment of a JPEG up to its first scan."""
    segments, position = [], 2
    while True:
        marker = data[position + 1]
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        segments.append((marker, data[position + 4 : position + 2 + length]))
        position += 2 + length
        if marker == 0xDA:
            return segments


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (fourcc, payload) of each chunk of a WebP file."""
    chunks, position = [], 12
    while position < len(data):
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        chunks.append((data[position : position + 4], data[position + 8 : position + 8 + size]))
        position += 8 + size + size % 2
    return chunks


def assert_bare(rendition: photos.Rendition) -> None:
    """Nothing but pixels: by Pillow's reading, by the file's structure, and byte by byte."""
    image = opened(rendition.data)
    assert image.format == {"webp": "WEBP", "jpeg": "JPEG"}[rendition.format]
    assert len(image.getexif()) == 0
    assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    leaked = {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "photoshop", "comment", "adobe"}
    assert leaked & set(image.info) == set()
    if rendition.format == "jpeg":
        assert IptcImagePlugin.getiptcinfo(image) is None
        headers = jpeg_headers(rendition.data)
        # APP0 (JFIF), tables, frame and scan; no APP1..APP15 (EXIF, XMP, ICC, IPTC), no COM.
        assert {marker for marker, _ in headers} <= {0xE0, 0xDB, 0xC0, 0xC2, 0xC4, 0xDD, 0xDA}
        header_bytes = b"".join(payload for _, payload in headers)
    else:
        chunks = webp_chunks(rendition.data)
        assert {fourcc for fourcc, _ in chunks} <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}
        for fourcc, payload in chunks:
            if fourcc == b"VP8X":
                assert payload[0] & 0b0010_1100 == 0  # no ICC, EXIF or XMP flag
        header_bytes = b"".join(p for f, p in chunks if f not in (b"VP8 ", b"VP8L"))
    assert b"GPS" not in header_bytes
    for signature in METADATA_SIGNATURES:
        assert signature not in rendition.data


@pytest.mark.parametrize("pillow_format", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_no_metadata_survives_in_any_output(pillow_format: str) -> None:
    upload = tagged_upload(pillow_format)
    original = opened(upload)
    # The upload really carries what must not come out.
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert original.getexif()[ExifTags.Base.Make] == "TestPhoneMaker"
    assert b"http://ns.adobe.com/xap" in upload

    photo = process(upload)

    assert len(photo.renditions) == 4  # 320 and 600 wide, WebP and JPEG
    for rendition in photo.renditions:
        assert_bare(rendition)


def test_a_jpeg_with_gps_and_iptc_really_carries_them_before_processing() -> None:
    original = opened(tagged_upload("JPEG"))
    assert IptcImagePlugin.getiptcinfo(original) == {(2, 80): b"A. Seller"}
    assert "icc_profile" in original.info
    assert original.info.get("comment") == b"x"


def test_an_unusable_colour_profile_is_ignored_not_fatal() -> None:
    lab: bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    for profile in (lab, b"not a profile at all"):
        photo = process(encoded(scene(), "JPEG", icc_profile=profile))
        assert_bare(photo.renditions[-1])


def test_an_embedded_profile_is_converted_to_srgb_keeping_the_colours() -> None:
    image = Image.new("RGB", (400, 300), (200, 120, 40))
    photo = process(encoded(image, "PNG", icc_profile=srgb_profile()))
    webp = opened(photo.renditions[0].data).convert("RGB")
    assert near(webp.getpixel((50, 50)), (200, 120, 40), 6)


# -- formats and modes -----------------------------------------------------------------------


def test_a_heic_photo_converts() -> None:
    upload = encoded(Image.new("RGB", (640, 480), (30, 90, 200)), "HEIF", quality=90)
    assert upload[4:12] == b"ftypheic"

    photo = process(upload)

    assert (photo.kind, photo.width, photo.height) == ("heif", 640, 480)
    assert [r.width for r in photo.renditions] == [320, 320, 640, 640]
    pixel = opened(photo.renditions[-1].data).convert("RGB").getpixel((320, 240))
    assert near(pixel, (30, 90, 200), 12)


def test_a_heic_photo_is_upright_as_its_container_says() -> None:
    # libheif applies HEIF's own rotation (and pillow-heif the EXIF one) on reading.
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    photo = process(encoded(stored_photo(6), "HEIF", exif=exif.tobytes(), quality=95))
    image = opened(photo.renditions[0].data).convert("RGB")
    assert (photo.width, photo.height) == (480, 320)
    assert nearest(image.getpixel((8, 8))) == RED
    assert nearest(image.getpixel((image.width - 8, 8))) == GREEN


def test_transparency_comes_out_white_not_black() -> None:
    image = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 200, 300))
    photo = process(encoded(image, "PNG"))
    jpeg = opened(photo.renditions[0].data).convert("RGB")
    assert nearest(jpeg.getpixel((40, 100))) == RED
    assert near(jpeg.getpixel((300, 100)), (255, 255, 255), 8)


def test_a_large_transparent_photo_is_put_on_white_before_resampling() -> None:
    # Over 4 megapixels, RGBA is flattened in bands first (photos._flattened), for memory.
    image = Image.new("RGBA", (2600, 2000), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 1300, 1000))
    image.paste((255, 0, 0, 128), (0, 1000, 1300, 2000))
    photo = process(encoded(image, "PNG", compress_level=1))
    jpeg = opened(photo.renditions[0].data).convert("RGB")
    assert jpeg.size == (320, 246)
    assert near(jpeg.getpixel((40, 40)), (255, 0, 0), 8)
    assert near(jpeg.getpixel((40, 200)), (255, 127, 127), 10)  # half red on white
    assert near(jpeg.getpixel((280, 120)), (255, 255, 255), 8)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param(Image.new("I;16", (400, 300), 30_000), (117, 117, 117), id="16-bit-grey"),
        pytest.param(Image.new("L", (400, 300), 60), (60, 60, 60), id="grey"),
        pytest.param(Image.new("RGB", (400, 300), (0, 0, 255)).convert("P"), (0, 0, 255), id="P"),
        pytest.param(Image.new("1", (400, 300), 1), (255, 255, 255), id="bilevel"),
    ],
)
def test_other_pixel_modes_come_out_as_rgb(image: Image.Image, expected: tuple[int, ...]) -> None:
    photo = process(encoded(image, "PNG"))
    out = opened(photo.renditions[0].data)
    assert out.mode == "RGB"
    assert near(out.getpixel((100, 100)), expected, 4)


def test_a_cmyk_jpeg_comes_out_as_rgb() -> None:
    photo = process(encoded(Image.new("RGB", (400, 300), (0, 0, 255)).convert("CMYK"), "JPEG"))
    assert opened(photo.renditions[0].data).mode == "RGB"


# -- sizes -----------------------------------------------------------------------------------


def test_each_width_keeps_the_aspect_ratio_as_webp_and_jpeg() -> None:
    photo = process(encoded(scene((3000, 2000)), "JPEG"))

    assert (photo.kind, photo.width, photo.height) == ("jpeg", 3000, 2000)
    assert [(r.width, r.height, r.format) for r in photo.renditions] == [
        (320, 213, "webp"),
        (320, 213, "jpeg"),
        (1024, 683, "webp"),
        (1024, 683, "jpeg"),
        (2048, 1365, "webp"),
        (2048, 1365, "jpeg"),
    ]
    for rendition in photo.renditions:
        assert opened(rendition.data).size == (rendition.width, rendition.height)
        assert rendition.content_type == f"image/{rendition.format}"


def test_a_small_photo_is_never_upscaled() -> None:
    photo = process(encoded(scene((800, 600)), "PNG"))
    assert [(r.width, r.height) for r in photo.renditions[::2]] == [(320, 240), (800, 600)]


@pytest.mark.parametrize(
    ("upright", "widths", "sizes"),
    [
        ((4000, 3000), (320, 1024, 2048), [(320, 240), (1024, 768), (2048, 1536)]),
        ((1024, 768), (320, 1024, 2048), [(320, 240), (1024, 768)]),
        ((1500, 3000), (320, 1024, 2048), [(320, 640), (1024, 2048), (1500, 3000)]),
        ((200, 100), (320, 1024, 2048), [(200, 100)]),
        ((5000, 1), (320,), [(320, 1)]),
        ((4000, 3000), (2048, 320, 320), [(320, 240), (2048, 1536)]),
    ],
)
def test_output_sizes(
    upright: tuple[int, int], widths: tuple[int, ...], sizes: list[tuple[int, int]]
) -> None:
    assert output_sizes(upright, widths) == sizes


def test_widths_must_be_positive() -> None:
    for widths in ((), (0, 320)):
        with pytest.raises(ValueError, match="widths"):
            process(encoded(scene((64, 48)), "PNG"), widths)


# -- placeholder -----------------------------------------------------------------------------

BLURHASH = re.compile(r"[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]+")


@pytest.mark.parametrize(
    ("size", "components"), [((600, 400), (4, 3)), ((400, 600), (3, 4))], ids=["wide", "tall"]
)
def test_the_placeholder_is_a_blurhash_of_the_photo(
    size: tuple[int, int], components: tuple[int, int]
) -> None:
    photo = process(encoded(Image.new("RGB", size, (200, 40, 40)), "PNG"))

    assert BLURHASH.fullmatch(photo.placeholder)
    x, y = components
    assert len(photo.placeholder) == 6 + 2 * (x * y - 1)
    assert blurhash.components(photo.placeholder) == components
    decoded = blurhash.decode(photo.placeholder, 4, 4)
    assert near(decoded[2][2], (200, 40, 40), 8)


# -- memory ----------------------------------------------------------------------------------

# The peak is read from VmHWM, the high-water mark of the child's own address space.
# getrusage's ru_maxrss would not do: Linux carries the parent's resident size at the fork
# (this test process, with the 48-megapixel image it just wrote) over the exec into it.
MEASURE = textwrap.dedent(
    """
    import json, re, sys
    from marketplace import photos

    def high_water_kib():
        with open("/proc/self/status") as status:
            return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read())[1])

    data = open(sys.argv[1], "rb").read()
    before = high_water_kib()
    photo = photos.process(data)
    print(json.dumps({"before_kib": before, "peak_kib": high_water_kib(), "width": photo.width}))
    """
)


def peak_memory(upload: Path) -> dict[str, int]:
    """Processes ``upload`` in a fresh interpreter: its peak resident memory, in KiB."""
    child = subprocess.run(
        [sys.executable, "-c", MEASURE, str(upload)],
        cwd=FUNCTIONS,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, int] = json.loads(child.stdout)
    return result


def test_a_48_megapixel_photo_is_processed_in_under_512_mib(tmp_path: Path) -> None:
    upload = tmp_path / "48mp.jpg"
    # Detail at every scale (so the JPEG is a phone-sized file, not a flat one): a small
    # scene blown up, with noise on top.
    with scene((1000, 750)).resize((8000, 6000), Image.Resampling.BILINEAR) as big:
        noise = Image.effect_noise((8000, 6000), 24).convert("RGB")
        Image.blend(big, noise, 0.25).save(upload, "JPEG", quality=88)
        noise.close()

    measured = peak_memory(upload)

    assert measured["width"] == 8000
    assert measured["peak_kib"] < 512 * 1024, measured
