"""Listing photos: ``marketplace.photos.process`` on a 12-megapixel phone JPEG into every
size, in megapixels per second, against a bare Pillow open-orient-resize-save of the same
outputs in the same run (goal: ours ≤ 1.3 × the bare time); and the peak memory of
processing a 12- and a 48-megapixel JPEG, each in a fresh interpreter, against the bare
code's peak measured the same way.

**The upload.** Generated here, deterministically (no binary fixture): a photo-like scene
(gradients and seeded shapes at an eighth of the size, blown up bilinearly, so there are
soft edges at every scale) with seeded per-channel noise on top (sensor grain, so the file
compresses as a camera's does, not as a flat image), 4:3, stored landscape as a sensor
writes it, saved as JPEG at quality :data:`UPLOAD_QUALITY` with EXIF orientation 6 (a phone
held upright: the photo comes out 3:4 portrait) and a GPS position, make and model.

**Timing.** :data:`ROUNDS` rounds after :data:`WARMUP` of each, the configurations
interleaved in rotating order within each round (all see the same machine load):

- ``photos``: ``photos.process(data)``, with the module's :data:`photos.WIDTHS` (type from
  magic bytes, pixel limit from the header, JPEG draft decoding, EXIF orientation, sRGB,
  metadata stripped, each size from the one above it, WebP + JPEG each, a blurhash).
- ``bare`` (the baseline of the goal): what one writes with Pillow and nothing else:
  ``Image.open``, ``ImageOps.exif_transpose``, then for each size of
  ``photos.output_sizes`` a LANCZOS resize of the upright image and a WebP and a JPEG
  save, with photos.py's qualities (:data:`photos.WEBP_QUALITY`,
  :data:`photos.JPEG_QUALITY`) and encoder options (WebP ``method=4``, JPEG
  ``optimize=True``, as ``photos._save``); no checks, no metadata handling, no blurhash.
- ``bareChained`` (for reference): the same, but resampled the way photos.py does it
  (each size from the one above it, ``reducing_gap=3.0``): its ratio is what the checks,
  the draft decoding, the colour handling and the blurhash cost or save, with the
  resampling strategy held equal.

Both bare ones are checked to make exactly the renditions ``process`` makes (sizes and
formats, in order). Megapixels per second are the upload's pixels over a median time.

**Memory.** Each configuration processes each size (:data:`MEMORY_MEGAPIXELS`) in a fresh
``sys.executable`` that imports Pillow and ``marketplace.photos`` only (the bare code is
sent as its source, the same functions as timed here), reads the file, then processes it;
the peak is ``VmHWM`` from ``/proc/self/status``, as ``tests/photos/test_processing.py``
measures it (not ``ru_maxrss``, which carries the parent's resident size over the exec).
Reported as the peak and as the rise above the high-water mark just before processing
(interpreter, imports and the file's bytes).

Run: ``python -m bench.photo_processing [--rounds N] [--megapixels M]`` (no emulators).
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import PIL
from PIL import ExifTags, Image, ImageDraw, ImageFilter, ImageOps

from bench import common
from marketplace import photos

NAME = "photo_processing"
MEGAPIXELS = 12.0
ROUNDS = 10
WARMUP = 2
MEMORY_MEGAPIXELS = (12.0, 48.0)
CONFIGS = ("photos", "bare", "bareChained")
BASELINE = "bare"
GOAL_RATIO = 1.3
SEED = 16
ORIENTATION = 6
UPLOAD_QUALITY = 90
NOISE = 0.1
"""The weight of the uniform per-channel noise blended over the scene (±13 levels)."""
FUNCTIONS = common.ROOT / "functions"
MEMORY_TIMEOUT = 300

Output = tuple[int, int, str, bytes]
"""A rendition as (width, height, format, encoded bytes)."""


# -- the upload -------------------------------------------------------------------------------


def stored_size(megapixels: float) -> tuple[int, int]:
    """The landscape 4:3 (width, height) of about ``megapixels``: 12 -> 4000x3000."""
    width = round(math.sqrt(megapixels * 1_000_000 * 4 / 3))
    return width, round(width * 3 / 4)


def photo_like(size: tuple[int, int], seed: int = SEED) -> Image.Image:
    """A deterministic RGB image that encodes like a photo (module docstring)."""
    width, height = size
    chance = random.Random(seed)
    small = (max(8, width // 8), max(6, height // 8))
    red = Image.linear_gradient("L").resize(small)
    green = Image.linear_gradient("L").rotate(90).resize(small)
    blue = Image.radial_gradient("L").resize(small)
    scene = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(scene)
    for _ in range(60):
        x, y = chance.randrange(small[0]), chance.randrange(small[1])
        w, h = chance.randrange(4, small[0] // 3 + 5), chance.randrange(4, small[1] // 3 + 5)
        colour = tuple(chance.randrange(256) for _ in range(3))
        shape = draw.ellipse if chance.random() < 0.5 else draw.rectangle
        shape((x, y, x + w, y + h), fill=colour)
    for _ in range(40):
        points = [(chance.randrange(small[0]), chance.randrange(small[1])) for _ in range(2)]
        draw.line(points, fill=tuple(chance.randrange(256) for _ in range(3)), width=2)
    scene = scene.filter(ImageFilter.GaussianBlur(1))
    with scene.resize(size, Image.Resampling.BILINEAR) as big:
        noise = Image.frombytes("RGB", size, chance.randbytes(width * height * 3))
        blended = Image.blend(big, noise, NOISE)
        noise.close()
    scene.close()
    return blended


def phone_exif(orientation: int = ORIENTATION) -> Image.Exif:
    """What a phone writes: make, model, orientation, and where the photo was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "BenchPhone"
    exif[ExifTags.Base.Model] = "Model 16"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.DateTime] = "2026:12:03 06:00:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 26.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 39.0)
    return exif


def upload(megapixels: float, seed: int = SEED) -> bytes:
    """The phone JPEG of about ``megapixels`` (stored landscape, EXIF orientation 6, GPS)."""
    with photo_like(stored_size(megapixels), seed) as image:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=UPLOAD_QUALITY, exif=phone_exif())
    return out.getvalue()


def describe(data: bytes) -> dict[str, Any]:
    """What the upload is, as the bench made it (checked, and kept in the params)."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        stored = image.size
    return {
        "format": "JPEG",
        "storedSize": list(stored),
        "megapixels": round(stored[0] * stored[1] / 1e6, 2),
        "bytes": len(data),
        "quality": UPLOAD_QUALITY,
        "exifOrientation": exif.get(ExifTags.Base.Orientation),
        "gpsTags": len(gps),
    }


# -- the bare baseline ------------------------------------------------------------------------
# Sent by source to the memory children: bodies use only io, Image, ImageOps and photos.


def bare(data: bytes, widths: Sequence[int] = photos.WIDTHS) -> list[Output]:
    """Open, orient, resize the upright image to each size, save WebP and JPEG each."""
    outputs = []
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)
    for width, height in photos.output_sizes(upright.size, widths):
        with upright.resize((width, height), Image.Resampling.LANCZOS) as resized:
            webp, jpeg = io.BytesIO(), io.BytesIO()
            resized.save(webp, format="WEBP", quality=photos.WEBP_QUALITY, method=4)
            resized.save(jpeg, format="JPEG", quality=photos.JPEG_QUALITY, optimize=True)
            outputs += [(width, height, "webp", webp.getvalue())]
            outputs += [(width, height, "jpeg", jpeg.getvalue())]
    upright.close()
    return outputs


def bare_chained(data: bytes, widths: Sequence[int] = photos.WIDTHS) -> list[Output]:
    """As :func:`bare`, each size resampled from the one above it (as photos.py does)."""
    outputs = []
    with Image.open(io.BytesIO(data)) as image:
        previous = ImageOps.exif_transpose(image)
    for width, height in reversed(photos.output_sizes(previous.size, widths)):
        if previous.size != (width, height):
            resized = previous.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
            previous.close()
            previous = resized
        webp, jpeg = io.BytesIO(), io.BytesIO()
        previous.save(webp, format="WEBP", quality=photos.WEBP_QUALITY, method=4)
        previous.save(jpeg, format="JPEG", quality=photos.JPEG_QUALITY, optimize=True)
        outputs += [(width, height, "webp", webp.getvalue())]
        outputs += [(width, height, "jpeg", jpeg.getvalue())]
    previous.close()
    outputs.sort(key=lambda o: (o[0], o[2] != "webp"))
    return outputs


def ours(data: bytes, widths: Sequence[int] = photos.WIDTHS) -> list[Output]:
    """``photos.process``, its renditions as :data:`Output` tuples."""
    return [(r.width, r.height, r.format, r.data) for r in photos.process(data, widths).renditions]


RUNNERS: dict[str, Callable[[bytes], list[Output]]] = {
    "photos": ours,
    "bare": bare,
    "bareChained": bare_chained,
}
CHILD_CALLS = {
    "photos": "photos.process(data)",
    "bare": "bare(data)",
    "bareChained": "bare_chained(data)",
}


# -- memory -----------------------------------------------------------------------------------

CHILD_HEAD = textwrap.dedent(
    """
    from __future__ import annotations
    import io, json, re, sys
    from collections.abc import Sequence
    from PIL import Image, ImageOps
    from marketplace import photos

    def high_water_kib():
        with open("/proc/self/status") as status:
            return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read())[1])
    """
)
CHILD_TAIL = textwrap.dedent(
    """
    data = open(sys.argv[1], "rb").read()
    before = high_water_kib()
    started = time.perf_counter()
    {call}
    seconds = time.perf_counter() - started
    print(json.dumps({{"beforeKib": before, "peakKib": high_water_kib(), "seconds": seconds}}))
    """
)


def child_code(config: str) -> str:
    """The program a memory child runs: the bare functions' own source, then one call."""
    sources = "\n\n".join(inspect.getsource(f) for f in (bare, bare_chained))
    tail = CHILD_TAIL.format(call=CHILD_CALLS[config])
    return CHILD_HEAD + "import time\n\n" + sources + "\n" + tail


def peak_memory(config: str, path: Path) -> dict[str, Any]:
    """``config`` processing the upload at ``path`` in a fresh interpreter: its peak."""
    child = subprocess.run(
        [sys.executable, "-c", child_code(config), str(path)],
        cwd=FUNCTIONS,
        capture_output=True,
        text=True,
        timeout=MEMORY_TIMEOUT,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"{config} memory child failed: {child.stderr[-2000:]}")
    measured = json.loads(child.stdout)
    return {
        "peakMiB": round(measured["peakKib"] / 1024, 1),
        "aboveStartMiB": round((measured["peakKib"] - measured["beforeKib"]) / 1024, 1),
        "startMiB": round(measured["beforeKib"] / 1024, 1),
        "seconds": round(measured["seconds"], 3),
    }


def measure_memory(
    sizes: Sequence[float], configs: Sequence[str], directory: Path
) -> dict[str, dict[str, Any]]:
    """``{label: {config: peak}}`` for each upload size (labels like ``"12MP"``)."""
    peaks: dict[str, dict[str, Any]] = {}
    for megapixels in sizes:
        label = f"{megapixels:g}MP"
        path = directory / f"{label}.jpg"
        path.write_bytes(upload(megapixels))
        peaks[label] = {"upload": describe(path.read_bytes())}
        for config in configs:
            peaks[label][config] = peak_memory(config, path)
        path.unlink()
    return peaks


# -- timing -----------------------------------------------------------------------------------


def time_rounds(
    data: bytes, rounds: int, warmup: int, configs: Sequence[str]
) -> dict[str, list[float]]:
    """Seconds per call of each configuration, interleaved in rotating order."""
    seconds: dict[str, list[float]] = {config: [] for config in configs}
    for index in range(warmup + rounds):
        shift = index % len(configs)
        for config in [*configs[shift:], *configs[:shift]]:
            started = time.perf_counter()
            RUNNERS[config](data)
            elapsed = time.perf_counter() - started
            if index >= warmup:
                seconds[config].append(elapsed)
    return seconds


def check_same_outputs(data: bytes, configs: Sequence[str]) -> list[list[Any]]:
    """The renditions (width, height, format) every configuration makes: the same for all."""
    made = {config: [o[:3] for o in RUNNERS[config](data)] for config in configs}
    first = made[configs[0]]
    for config, renditions in made.items():
        if renditions != first:
            raise AssertionError(f"{config} makes {renditions}, {configs[0]} makes {first}")
    return [list(r) for r in first]


def _stats(values: Sequence[float], megapixels: float) -> dict[str, float]:
    median = statistics.median(values)
    return {
        "medianS": round(median, 4),
        "meanS": round(statistics.fmean(values), 4),
        "minS": round(min(values), 4),
        "maxS": round(max(values), 4),
        "megapixelsPerSecond": round(megapixels / median, 2),
    }


def run(
    *,
    megapixels: float = MEGAPIXELS,
    rounds: int = ROUNDS,
    warmup: int = WARMUP,
    memory_megapixels: Sequence[float] = MEMORY_MEGAPIXELS,
    configs: Sequence[str] = CONFIGS,
) -> dict[str, Any]:
    """Time each configuration on one upload of ``megapixels``, then measure the peaks."""
    data = upload(megapixels)
    described = describe(data)
    pixels = described["megapixels"]
    renditions = check_same_outputs(data, configs)
    upright = photos.dimensions(data, "jpeg")
    if tuple(described["storedSize"]) == upright or not described["gpsTags"]:
        raise AssertionError(f"not a turned phone photo with GPS: {described}")
    seconds = time_rounds(data, rounds, warmup, configs)
    stats = {config: _stats(values, pixels) for config, values in seconds.items()}
    with tempfile.TemporaryDirectory(prefix="photo-bench-") as directory:
        memory = measure_memory(memory_megapixels, configs, Path(directory))

    baseline = stats[BASELINE]
    ratios: dict[str, Any] = {}
    for config in configs:
        if config == BASELINE:
            continue
        ratios[config] = {
            "median": common.ratio(stats[config]["medianS"], baseline["medianS"]),
            "mean": common.ratio(stats[config]["meanS"], baseline["meanS"]),
            "min": common.ratio(stats[config]["minS"], baseline["minS"]),
        }
        ratios[config]["peakMemory"] = {
            label: common.ratio(peaks[config]["peakMiB"], peaks[BASELINE]["peakMiB"])
            for label, peaks in memory.items()
        }
    if "photos" in stats and "bareChained" in stats:
        ratios["photosOverBareChained"] = common.ratio(
            stats["photos"]["medianS"], stats["bareChained"]["medianS"]
        )
    ratios["goal"] = f"photos median time <= {GOAL_RATIO} x bare's (same upload, same run)"
    ratios["goalMet"] = (ratios.get("photos", {}).get("median") or math.inf) <= GOAL_RATIO

    rows = []
    for config in configs:
        row: dict[str, Any] = {
            "config": config,
            "rounds": len(seconds[config]),
            "median s": stats[config]["medianS"],
            "mean s": stats[config]["meanS"],
            "MP/s": stats[config]["megapixelsPerSecond"],
            "x bare": None if config == BASELINE else ratios[config]["median"],
        }
        for label, peaks in memory.items():
            row[f"peak MiB {label}"] = peaks[config]["peakMiB"]
            row[f"rise MiB {label}"] = peaks[config]["aboveStartMiB"]
        rows.append(row)

    return {
        "figures": {
            config: {**stats[config], "seconds": [round(s, 4) for s in seconds[config]]}
            for config in configs
            if config != BASELINE
        }
        | {"memory": memory, "renditions": renditions},
        "baseline": {
            **baseline,
            "seconds": [round(s, 4) for s in seconds[BASELINE]],
            "what": "Image.open, ImageOps.exif_transpose, a LANCZOS resize of the upright "
            "image to each of photos.output_sizes, WebP and JPEG saves with photos.py's "
            "qualities and options; no checks, no metadata handling, no blurhash",
        },
        "ratios": ratios,
        "params": {
            "upload": described,
            "uprightSize": list(upright),
            "widths": list(photos.WIDTHS),
            "webpQuality": photos.WEBP_QUALITY,
            "jpegQuality": photos.JPEG_QUALITY,
            "rounds": rounds,
            "warmup": warmup,
            "configs": list(configs),
            "memoryMegapixels": list(memory_megapixels),
            "seed": SEED,
            "noise": NOISE,
            "pillow": PIL.__version__,
            "loadAverage": list(os.getloadavg()),
            "sample": "one call on the upload's bytes, configurations interleaved in "
            "rotating order each round; MP/s = the upload's megapixels / median seconds",
            "memory": "each size and configuration in a fresh sys.executable importing "
            "Pillow and marketplace.photos only; VmHWM peak, and its rise above the mark "
            "just before processing (interpreter, imports, the file's bytes)",
            "goal": f"photos <= {GOAL_RATIO} x bare (median time)",
        },
        "rows": rows,
    }


def write(outcome: Mapping[str, Any], directory: Path = common.RESULTS) -> Path:
    """The outcome of :func:`run` as ``<directory>/photo_processing.json``."""
    return common.write_outcome(NAME, outcome, directory)


def columns(outcome: Mapping[str, Any]) -> list[str]:
    """The table's columns: every key of the rows, in order."""
    return list(outcome["rows"][0]) if outcome["rows"] else []


def main() -> None:
    """Run the benchmark (no emulators), write and print its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--megapixels", type=float, default=MEGAPIXELS)
    args = parser.parse_args()
    outcome = run(megapixels=args.megapixels, rounds=args.rounds)
    path = common.report(NAME, outcome, columns(outcome))
    ratios = outcome["ratios"]
    print(
        f"photos / bare (median): {ratios['photos']['median']}; goal <= {GOAL_RATIO}: "
        f"{'met' if ratios['goalMet'] else 'NOT met'}; "
        f"photos / bareChained: {ratios['photosOverBareChained']}"
    )
    print(f"written to {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
