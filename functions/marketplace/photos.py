"""Listing photos: from the bytes a phone uploaded to the files a listing page shows.

Pure functions over bytes; no Storage, no Firestore. The upload trigger reads an upload,
calls :func:`process`, stores each :class:`Rendition` and records the :class:`Processed`
photo, or records the :class:`PhotoRefused` reason and deletes the upload.

**Trust nothing the client said.** The type is decided from the file's first bytes
(:func:`detect`), never from its name or declared content type, and only that format's
decoder ever sees the file. The pixel count is read from the header (:func:`dimensions`)
and anything over :data:`MAX_PIXELS` is refused before a pixel is decoded: a 1 kB PNG can
claim gigapixels (a decompression bomb). That check is the guard; Pillow's own
(``Image.MAX_IMAGE_PIXELS``, a process-wide setting left at its default) runs at the same
moment, and its error only comes first for images far larger, with the same verdict.

**Nothing of the original survives but its pixels.** Phones write the place a photo was
taken into its EXIF; sellers photograph their homes. Every output is a new encode of bare
pixels: no EXIF, GPS, XMP, IPTC, maker notes, comments, embedded thumbnails or colour
profile. So that the pixels still mean what they meant, the EXIF orientation is applied
first (the output is upright with no tag to say so) and an embedded colour profile is
converted to sRGB, which is what browsers assume of an untagged image.

**Sizes.** Each asked width the photo reaches is made, as WebP and a JPEG fallback, with
its height from the upright aspect ratio. A photo is never upscaled: widths above its own
are replaced by one rendition at its own width, so a small photo still gets its full size
and the largest rendition is always ``min(max(widths), photo width)``. A blurhash
(:data:`Processed.placeholder`) stands in while they load.

**Memory.** A 48-megapixel photo decodes to 144 MB of RGB, and a function has little to
spare. A JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still covers the
largest output (``Image.draft``); other formats decode whole and are shrunk by a whole
factor first (``reducing_gap``) on the way to the largest output; a large RGBA image is
put on white in bands rather than copied whole. Smaller sizes are made from the largest,
and each image is closed as soon as the next exists. Peaks measured in a fresh process at
48 megapixels: JPEG 111 MiB, PNG 329 MiB (RGBA 468), HEIC 414 MiB; WebP, which Pillow
cannot decode small, has its own lower limit (:data:`MAX_WEBP_PIXELS`).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import blurhash  # type: ignore[import-untyped]  # pinned in functions/requirements.txt
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps

ImageKind = Literal["jpeg", "png", "webp", "heif"]
"""The formats accepted from clients (HEIF covers the iPhone's HEIC)."""
Refusal = Literal["not_an_image", "too_many_pixels", "unreadable"]
"""Why an upload was refused; stored as is in a listing's ``photoIssues``."""
RenditionFormat = Literal["webp", "jpeg"]

MAX_PIXELS = 50_000_000
"""The most pixels an accepted photo may have (a 48-megapixel phone camera's fit)."""
MAX_WEBP_PIXELS = 25_000_000
"""WebP's lower limit: Pillow decodes it through two full-size RGBA copies (about 16 bytes
a pixel, 400 MiB at this size). No camera writes WebP; it comes from editors and the web."""
WIDTHS = (320, 1024, 2048)
"""The widths a listing page shows: a card, a gallery, a full-screen view."""
WEBP_QUALITY = 80
JPEG_QUALITY = 82
PLACEHOLDER_SIDE = 32
"""The longer side, in pixels, of the thumbnail the blurhash is computed from."""

_PILLOW_FORMAT: dict[ImageKind, str] = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "heif": "HEIF",
}
_HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
"""ISO BMFF brands of HEVC-coded HEIF. Not ``mif1`` alone: AVIF files carry it too."""
_FLATTEN_EARLY = 4_000_000
"""RGBA photos above this many pixels are put on white before resampling (_flattened)."""
_FLATTEN_BAND = 1_000_000
_ROTATED = frozenset({5, 6, 7, 8})
"""EXIF orientations that swap width and height."""
_MESSAGES: dict[Refusal, str] = {
    "not_an_image": "The file is not a JPEG, PNG, WebP or HEIC photo.",
    "too_many_pixels": "The photo has too many pixels: at most 50 megapixels (WebP: 25).",
    "unreadable": "The photo could not be read: it may be damaged or incomplete.",
}


class PhotoRefused(ValueError):  # noqa: N818 - a domain outcome, like NotFound
    """The upload is not a photo this service publishes; ``reason`` says why."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason: Refusal = reason


@dataclass(frozen=True)
class Rendition:
    """One encoded size of a photo, with no metadata at all."""

    width: int
    height: int
    format: RenditionFormat
    data: bytes

    @property
    def content_type(self) -> str:
        """The MIME type to store and serve it with."""
        return f"image/{self.format}"


@dataclass(frozen=True)
class Processed:
    """A photo made ready for a listing page."""

    kind: ImageKind
    """The format it was uploaded in."""
    width: int
    """Upright width of the original, in pixels."""
    height: int
    """Upright height of the original, in pixels."""
    placeholder: str
    """A blurhash of the whole photo, shown while a rendition loads."""
    renditions: tuple[Rendition, ...]
    """Narrowest first; for each width, WebP then JPEG."""


def detect(data: bytes) -> ImageKind:
    """The photo format of ``data`` from its magic bytes, or ``PhotoRefused("not_an_image")``.

    HEIF is an ISO BMFF file whose first box is ``ftyp``: it counts when its major or a
    compatible brand is an HEVC one (an AVIF file, AV1-coded, is refused).
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and _HEVC_BRANDS & set(_ftyp_brands(data)):
        return "heif"
    raise PhotoRefused("not_an_image")


def dimensions(data: bytes, kind: ImageKind) -> tuple[int, int]:
    """The upright (width, height) of a photo of ``kind``, read from its header alone.

    Refuses a photo over :data:`MAX_PIXELS` (:data:`MAX_WEBP_PIXELS` for a WebP) with
    ``too_many_pixels``, and one whose header cannot be parsed as ``kind`` with
    ``unreadable``; no pixel is decoded either way.
    """
    with _reading(), _open(data, kind) as image:
        return _upright_size(image)


def process(data: bytes, widths: Sequence[int] = WIDTHS) -> Processed:
    """``data`` checked, upright, in sRGB and stripped of metadata, at each of ``widths``.

    Raises :class:`PhotoRefused` for any upload that is not a readable photo of an accepted
    format and size (module docstring); a ValueError if ``widths`` is empty or not positive.
    """
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be positive, got {widths!r}")
    kind = detect(data)
    with _reading(), _open(data, kind) as image:
        upright = _upright_size(image)
        sizes = output_sizes(upright, widths)
        largest = _decode(image, kind, sizes[-1])
    renditions: list[Rendition] = []
    placeholder = ""
    with largest:
        for size, pixels in _downscales(largest, sizes):
            renditions += _encode(pixels)
            if size == sizes[0]:
                placeholder = _placeholder(pixels)
    # _downscales runs widest first; a page picks from narrowest to widest.
    renditions.sort(key=lambda r: (r.width, r.format != "webp"))
    return Processed(kind, upright[0], upright[1], placeholder, tuple(renditions))


def output_sizes(upright: tuple[int, int], widths: Sequence[int]) -> list[tuple[int, int]]:
    """The (width, height) of each rendition of a photo ``upright`` in size, narrowest
    first: the asked widths it reaches, plus its own width if it is narrower than any.
    """
    width, height = upright
    kept = {w for w in widths if w <= width}
    if max(widths) > width:
        kept.add(width)
    return [(w, max(1, round(w * height / width))) for w in sorted(kept)]


def _ftyp_brands(data: bytes) -> Iterator[bytes]:
    """The major and compatible brands of the leading ``ftyp`` box."""
    size = min(int.from_bytes(data[:4], "big"), len(data), 4096)
    yield data[8:12]
    for start in range(16, size - 3, 4):
        yield data[start : start + 4]


@functools.cache
def _register_heif() -> None:
    # Lazily: libheif is only loaded by the first HEIC upload, not at every cold start.
    # The extras a HEIC can carry (thumbnails, depth maps) are never read, so never decoded.
    import pillow_heif

    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


@contextmanager
def _reading() -> Iterator[None]:
    """Turns whatever a decoder raises on a hostile or broken file into a refusal.

    Decoders raise all sorts (OSError for a truncated file, SyntaxError, ValueError,
    struct.error ...), so anything but a refusal becomes ``unreadable``, chained to the
    original for the log. A MemoryError is no verdict on the file: it propagates, so the
    trigger fails and the upload is tried again rather than refused.
    """
    try:
        yield
    except (PhotoRefused, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # The warning arrives as an exception where warnings are errors (the tests).
        raise PhotoRefused("too_many_pixels") from error
    except Exception as error:
        raise PhotoRefused("unreadable") from error


@contextmanager
def _open(data: bytes, kind: ImageKind) -> Iterator[ImageFile.ImageFile]:
    """The lazily opened image (header parsed, no pixel decoded), refused if too large."""
    if kind == "heif":
        _register_heif()
    with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[kind]]) as image:
        width, height = image.size
        if width * height > (MAX_WEBP_PIXELS if kind == "webp" else MAX_PIXELS):
            raise PhotoRefused("too_many_pixels")
        yield image


def _upright_size(image: Image.Image) -> tuple[int, int]:
    width, height = image.size
    return (height, width) if _turns_sideways(image) else (width, height)


def _turns_sideways(image: Image.Image) -> bool:
    """Whether the EXIF orientation swaps the stored width and height.

    Read from the header: ``PngImageFile.getexif`` decodes the whole image to look for an
    eXIf chunk after the pixels, so the base class's is called. It caches what it read,
    which ``exif_transpose`` then uses too, so the sizes and the orientation agree.
    """
    exif = Image.Image.getexif(image)
    return exif.get(ExifTags.Base.Orientation) in _ROTATED


def _decode(image: ImageFile.ImageFile, kind: ImageKind, largest: tuple[int, int]) -> Image.Image:
    """The upright photo in sRGB RGB, at ``largest`` (the widest rendition's size).

    Decodes ``image`` at the smallest scale that covers ``largest``, orients it, and
    resamples it; the colour profile is applied after resampling, on the fewest pixels.
    """
    profile = image.info.get("icc_profile")
    if kind == "jpeg":
        # Decodes at 1/2, 1/4 or 1/8 scale, in the decoder, when that still covers it.
        stored = (largest[1], largest[0]) if _turns_sideways(image) else largest
        image.draft(image.mode, stored)
    image.load()
    ImageOps.exif_transpose(image, in_place=True)  # copies only if it turns the pixels
    pixels = _resizable(image)
    resized = pixels.resize(largest, Image.Resampling.LANCZOS, reducing_gap=3.0)
    pixels.close()
    return _to_srgb(resized, profile)


def _resizable(image: Image.Image) -> Image.Image:
    """``image`` in a mode that resamples well and that a colour profile can apply to."""
    if image.mode == "RGBA" and image.width * image.height > _FLATTEN_EARLY:
        return _flattened(image)
    if image.mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return image
    if image.mode.startswith("I"):
        # 16-bit greyscale (PNG): Pillow's own conversion clips it at 255 instead of scaling.
        converted = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    else:  # palette, bilevel, ...
        converted = image.convert("RGBA" if image.has_transparency_data else "RGB")
    image.close()
    return converted


def _flattened(image: Image.Image) -> Image.Image:
    """A large RGBA ``image`` on white, as RGB, a band of rows at a time.

    Resampling RGBA makes a premultiplied full-size copy (Pillow), and pasting it whole
    converts it whole first: either puts a 48-megapixel RGBA photo over 512 MiB. In bands
    it costs one RGB copy. Flattening before resampling also blends edges correctly.
    """
    flat = Image.new("RGB", image.size, "white")
    rows = max(1, _FLATTEN_BAND // image.width)
    for top in range(0, image.height, rows):
        box = (0, top, image.width, min(top + rows, image.height))
        with image.crop(box) as band:
            flat.paste(band, box, mask=band)
    image.close()
    return flat


def _to_srgb(image: Image.Image, profile: bytes | None) -> Image.Image:
    """``image`` as opaque sRGB RGB: the embedded ``profile`` converted, alpha on white.

    A profile that cannot be read or does not fit the pixels is ignored, and the pixels
    are taken as sRGB, which is what a browser would do with the original.
    """
    if profile:
        image = _apply_profile(image, profile)
    if image.mode in ("RGBA", "LA"):
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        image.close()
        return flat
    if image.mode != "RGB":
        rgb = image.convert("RGB")
        image.close()
        return rgb
    return image


def _apply_profile(image: Image.Image, profile: bytes) -> Image.Image:
    output_mode = "RGBA" if image.mode in ("RGBA", "LA") else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        converted = ImageCms.profileToProfile(
            image, source, _srgb_profile(), outputMode=output_mode
        )
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
        return image
    if converted is None:  # only with inPlace=True
        return image
    image.close()
    return converted


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _downscales(
    largest: Image.Image, sizes: list[tuple[int, int]]
) -> Iterator[tuple[tuple[int, int], Image.Image]]:
    """Each of ``sizes`` (narrowest first) from ``largest``, widest first, each made from
    the one before it (cheaper than from the original, and as sharp at these ratios).
    """
    previous = largest
    for size in reversed(sizes):
        current = (
            previous
            if previous.size == size
            else previous.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        )
        if previous is not largest and previous is not current:
            previous.close()
        yield size, current
        previous = current
    if previous is not largest:
        previous.close()


def _encode(pixels: Image.Image) -> list[Rendition]:
    """WebP and JPEG encodes of ``pixels``, with nothing but the pixels in them."""
    # Pillow writes some of an image's info (a JPEG comment, for one) unless told not to;
    # with info empty and no exif=/icc_profile=/xmp= argument, there is nothing to write.
    pixels.info.clear()
    width, height = pixels.size
    return [
        Rendition(width, height, "webp", _save(pixels, "WEBP", quality=WEBP_QUALITY)),
        Rendition(width, height, "jpeg", _save(pixels, "JPEG", quality=JPEG_QUALITY)),
    ]


def _save(pixels: Image.Image, pillow_format: str, *, quality: int) -> bytes:
    out = io.BytesIO()
    options = {"optimize": True} if pillow_format == "JPEG" else {"method": 4}
    pixels.save(out, format=pillow_format, quality=quality, **options)
    return out.getvalue()


def _placeholder(pixels: Image.Image) -> str:
    """The blurhash of ``pixels``: 4 components along the longer side, 3 along the other."""
    with pixels.copy() as small:
        small.thumbnail((PLACEHOLDER_SIDE, PLACEHOLDER_SIDE), Image.Resampling.BOX)
        width, height = small.size
        flat = small.tobytes()
    rows = [
        [flat[i : i + 3] for i in range(row * width * 3, (row + 1) * width * 3, 3)]
        for row in range(height)
    ]
    x, y = (4, 3) if width >= height else (3, 4)
    return str(blurhash.encode(rows, components_x=x, components_y=y))
