"""pytest-xdist: one emulator stack per worker, and ``--dist loadfile`` in the serial order.

Each worker (``-n N``) starts a stack of its own, on ports shifted by the worker's number
times the worker shift (worker ``gw0`` keeps the run's own offset, ``gw1`` adds the shift,
``gw2`` twice that, ...), and every process that stack starts carries a marker the
controller chose, so a worker that dies is swept by the controller. Its tests see exactly
what a serial run's tests see: their own emulators, emptied by the fixtures.

``--dist loadfile`` sends each test file to one worker; xdist orders the files by their
number of tests. pytest-firebase keeps the collection's order instead, the one a serial
run has (the tests that need background triggers first, see
``plugin.pytest_collection_modifyitems``), and gives a file whose tests come in two
stretches of that order (its trigger tests first, the rest later) one unit per stretch,
as a serial run also sets up its module fixtures once per stretch. Each worker then runs
its stack's trigger tests before the tests that leave a backlog of paused deliveries.

xdist is imported only by :func:`serial_order_scheduling`, which xdist itself calls:
pytest-firebase does not need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

OFFSET_KEY = "pytest_firebase_port_offset"
"""The worker's port offset, in the ``workerinput`` the controller sends it."""
MARKER_KEY = "pytest_firebase_stack_marker"
"""The marker every process of the worker's stack carries, ditto."""


def worker_number(worker_id: str) -> int:
    """``gw3`` -> 3 (xdist names its local workers ``gw<n>``, a replacement the next n)."""
    digits = worker_id.removeprefix("gw")
    if not digits.isdigit():
        raise ValueError(f"not an xdist worker id: {worker_id!r}")
    return int(digits)


def worker_offset(base: int, worker_id: str, shift: int) -> int:
    """The port offset of worker ``worker_id`` in a run whose own offset is ``base``."""
    return base + worker_number(worker_id) * shift


def work_units(collection: Sequence[str]) -> dict[str, str]:
    """Each test's work unit: its file, or, for the second and later stretch of a file in
    the collection's order, the file and that stretch's number."""
    units: dict[str, str] = {}
    stretches: dict[str, int] = {}
    previous = None
    for nodeid in collection:
        path = nodeid.split("::", 1)[0]
        if path != previous:
            stretches[path] = stretches.get(path, 0) + 1
            previous = path
        stretch = stretches[path]
        units[nodeid] = path if stretch == 1 else f"{path}::<stretch {stretch}>"
    return units


def serial_order_scheduling(config: Any, log: Any = None) -> Any:
    """An xdist scheduler: ``--dist loadfile`` that hands out files in the collection's
    order, one unit per stretch of a file (see the module docstring)."""
    from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]

    class SerialOrderScheduling(LoadFileScheduling):  # type: ignore[misc]  # xdist is untyped
        def __init__(self, config: Any, log: Any = None) -> None:
            super().__init__(config, log)
            self._units: dict[str, str] = {}

        def schedule(self) -> None:
            if self.collection is None and self.collection_is_completed:
                first = next(iter(self.registered_collections.values()))
                self._units = work_units(first)
            # xdist sorts the units by size unless told not to; the order is the point.
            option = self.config.option
            reorder = option.loadscopereorder
            option.loadscopereorder = False
            try:
                super().schedule()
            finally:
                option.loadscopereorder = reorder

        def _split_scope(self, nodeid: str) -> str:
            unit = self._units.get(nodeid)
            return unit if unit is not None else str(super()._split_scope(nodeid))

    return SerialOrderScheduling(config, log)
