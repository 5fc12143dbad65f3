"""Random moments for seed timelines, all relative to one ``now`` and whole seconds."""

from __future__ import annotations

import datetime as dt
import random

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def seconds(moment: dt.datetime) -> dt.datetime:
    """``moment`` without its microseconds (timestamps read better that way)."""
    return moment.replace(microsecond=0)


def between(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """A moment in ``[start, end]`` (``start`` itself if the range is empty)."""
    span = max((end - start).total_seconds(), 0.0)
    return seconds(start + dt.timedelta(seconds=rng.uniform(0, span)))


def days_ago(rng: random.Random, now: dt.datetime, low: float, high: float) -> dt.datetime:
    """A moment between ``high`` and ``low`` days before ``now``."""
    return between(rng, now - high * DAY, now - low * DAY)
