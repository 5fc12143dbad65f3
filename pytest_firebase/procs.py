"""Process groups and the run marker that finds every process a stack started.

firebase-tools spawns the Java emulators *detached* (each in a session of its own), so
ending our own process group does not reach them if the CLI dies before it can stop them.
Every process we start therefore carries a unique marker in its environment; children
inherit it, detached or not, and a sweep of ``/proc`` finds whatever is left by identity,
never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

MARKER_VAR = "PYTEST_FIREBASE_RUN_MARKER"


def new_marker() -> str:
    """A fresh marker value, unique to one run."""
    return f"run-{uuid.uuid4().hex}"


def spawn_group(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: IO[bytes] | int | None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new session and process group."""
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def marked_pids(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``marker`` (Linux ``/proc``)."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone, or not ours to read
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_until_gone(pids: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop_group(proc: subprocess.Popen[bytes], *, grace: float = 15.0) -> None:
    """Ask a group leader's whole group to stop (SIGINT, then SIGTERM, then SIGKILL)."""
    if proc.poll() is not None:
        _signal_group(proc.pid, signal.SIGKILL)  # the leader is gone; its group may not be
        return
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        _signal_group(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    _signal_group(proc.pid, signal.SIGKILL)


def sweep(marker: str, *, grace: float = 5.0) -> list[int]:
    """End the process group of every process still carrying ``marker``.

    Returns the pids that had to be swept (empty when everything stopped on its own).
    """
    leftovers = [pid for pid in marked_pids(marker) if pid != os.getpid()]
    if not leftovers:
        return []
    groups = {os.getpgid(pid) for pid in leftovers if _alive(pid)} - {os.getpgrp()}
    for pgid in groups:
        _signal_group(pgid, signal.SIGTERM)
    if not _wait_until_gone(leftovers, grace):
        for pgid in groups:
            _signal_group(pgid, signal.SIGKILL)
        _wait_until_gone(leftovers, grace)
    return leftovers
