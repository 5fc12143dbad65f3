"""Seeded photos: a small pool of generated pictures, really processed and stored.

Each picture is drawn here (a house against a sky, in its own colours), then goes through
the same :func:`marketplace.photos.process` an upload does; its renditions are written
once to the photos bucket under ``seed/`` and listings take their entries from the pool,
so the dev stack shows real thumbnails without processing hundreds of uploads.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from functools import cache
from typing import Any

from PIL import Image, ImageDraw

from marketplace import photo_uploads, photos

POOL_SIZE = 12
WIDTH, HEIGHT = 960, 640
ADDED_AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FOLDER = "seed/"
_WALLS = ((196, 164, 132), (222, 211, 190), (150, 82, 64), (240, 240, 235), (120, 130, 140))
_DOORS = ((32, 64, 120), (140, 20, 30), (20, 90, 50), (40, 40, 40))


def photo_id(n: int) -> str:
    """The pool's ``n``-th id (20 letters and digits, like an upload's)."""
    return f"SeedPhoto{n:011d}"


def picture(n: int) -> bytes:
    """The ``n``-th generated picture, as a phone would upload it (a JPEG)."""
    rng = random.Random(n)
    image = Image.new("RGB", (WIDTH, HEIGHT), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    for y in range(HEIGHT // 2):  # a sky that pales towards the horizon
        shade = 150 + y * 90 // (HEIGHT // 2)
        draw.line([(0, y), (WIDTH, y)], fill=(shade - 40, shade, 245))
    draw.rectangle([0, HEIGHT * 2 // 3, WIDTH, HEIGHT], fill=(70, 140 + rng.randrange(40), 60))
    left = rng.randrange(120, 360)
    right = left + rng.randrange(360, 520)
    top, ground = HEIGHT // 3, HEIGHT * 2 // 3 + 30
    draw.rectangle([left, top, right, ground], fill=rng.choice(_WALLS))
    draw.polygon(
        [(left - 30, top), ((left + right) // 2, top - 140), (right + 30, top)],
        fill=(90 + rng.randrange(60), 50, 40),
    )
    door = left + (right - left) // 2 - 30
    draw.rectangle([door, ground - 120, door + 60, ground], fill=rng.choice(_DOORS))
    for x in (left + 40, right - 120):
        draw.rectangle([x, top + 50, x + 80, top + 130], fill=(200, 225, 245), outline=(255,) * 3)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


@cache
def _processed(n: int) -> photos.Processed:
    return photos.process(picture(n))


def _prefix(n: int) -> str:
    return f"{FOLDER}{photo_id(n)}/"


def entry(n: int) -> dict[str, Any]:
    """The pool's ``n``-th photo as a listing records it (the URLs of the stored pool)."""
    return photo_uploads.photo_entry(photo_id(n), _prefix(n), _processed(n), ADDED_AT)


def choose(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """``count`` different photos of the pool, in a random order."""
    return [entry(n) for n in rng.sample(range(POOL_SIZE), count)]


def store_pool() -> int:
    """Write every rendition of the pool (once: a second load finds them); how many new."""
    return sum(photo_uploads.write_renditions(_prefix(n), _processed(n)) for n in range(POOL_SIZE))
