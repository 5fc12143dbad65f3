"""The photo processing benchmark cannot rot: it runs on a small upload with one round,
through the same code ``make bench`` runs at 12 megapixels (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import photo_processing


def test_the_photo_bench_times_ours_and_bare_and_measures_their_peaks(tmp_path: Path) -> None:
    outcome = photo_processing.run(megapixels=0.3, rounds=1, warmup=0, memory_megapixels=(0.3,))
    written = json.loads(photo_processing.write(outcome, directory=tmp_path).read_text())

    assert written["source"]["commit"]
    upload = written["params"]["upload"]
    assert upload["exifOrientation"] == photo_processing.ORIENTATION and upload["gpsTags"] > 0
    # Stored landscape, processed upright: the sizes of a portrait photo, WebP then JPEG.
    assert written["params"]["uprightSize"] == upload["storedSize"][::-1]
    assert [r[2] for r in written["figures"]["renditions"]] == ["webp", "jpeg"] * (
        len(written["figures"]["renditions"]) // 2
    )
    assert written["baseline"]["medianS"] > 0 and len(written["baseline"]["seconds"]) == 1
    for config in ("photos", "bareChained"):
        assert written["figures"][config]["megapixelsPerSecond"] > 0
        assert written["ratio"][config]["median"] > 0
    assert isinstance(written["ratio"]["goalMet"], bool)
    peaks = written["figures"]["memory"]["0.3MP"]
    for config in photo_processing.CONFIGS:
        assert peaks[config]["peakMiB"] >= peaks[config]["startMiB"] > 0
    assert [row["config"] for row in written["rows"]] == list(photo_processing.CONFIGS)
