"""Process groups and the run marker that finds every process a stack started.

firebase-tools spawns the Java emulators *detached* (each in a session of its own), so
ending our own process group does not reach them if the CLI dies before it can stop them.
Every process we start therefore carries a unique marker in its environment; children
inherit it, detached or not, and a sweep of ``/proc`` finds whatever is left by identity,
never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

STACK_MARKER_VAR = "PYTEST_FIREBASE_STACK_MARKER"
"""Set on every process one stack starts; a stack sweeps only its own marker."""
RUN_MARKER_VAR = "PYTEST_FIREBASE_RUN_MARKER"
"""Set by a whole test command; what is left with it after the run is a leak."""


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


def _stat(pid: int | str) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def ancestors() -> set[int]:
    """This process and its ancestors: they carry an inherited marker but are not leaks."""
    chain: set[int] = set()
    pid = os.getpid()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        fields = _stat(pid)
        if fields is None:
            break
        pid = int(fields[1])
    return chain


def marked_pids(marker: str, var: str = STACK_MARKER_VAR) -> list[int]:
    """Pids of live processes, other than our ancestors, whose environment has ``var=marker``.

    Reads Linux ``/proc``; a process whose environment we may not read is not ours.
    """
    needle = f"{var}={marker}".encode()
    skip = ancestors()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        pid = int(entry.name)
        if pid not in skip and needle in environ.split(b"\0") and alive(pid):
            found.append(int(entry.name))
    return found


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_until_gone(pids: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return not any(alive(pid) for pid in pids)


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return 0


def alive(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) process."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def stop_group(proc: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
    """Ask a group leader's whole group to stop (SIGINT, then SIGTERM, then SIGKILL).

    ``grace``: an idle firebase CLI stops on SIGINT in about a second, but at the end of
    a test session it outlasted a 15 s grace (the session's teardown took 21 s): the
    SIGTERM after ``grace`` ends it, and the sweep by marker ends whatever it detached."""
    if proc.poll() is not None:
        _signal_group(proc.pid, signal.SIGKILL)  # the leader is gone; its group may not be
        return
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        _signal_group(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    _signal_group(proc.pid, signal.SIGKILL)


def sweep(marker: str, *, var: str = STACK_MARKER_VAR, grace: float = 5.0) -> list[int]:
    """End the process group of every process (not our ancestor) with ``var=marker``.

    Returns the pids that had to be swept (empty when everything stopped on its own).
    """
    leftovers = marked_pids(marker, var)
    if not leftovers:
        return []
    groups = {_pgid(pid) for pid in leftovers} - {os.getpgrp(), 0}
    for pgid in groups:
        _signal_group(pgid, signal.SIGTERM)
    if not _wait_until_gone(leftovers, grace):
        for pgid in groups:
            _signal_group(pgid, signal.SIGKILL)
        _wait_until_gone(leftovers, grace)
    return leftovers


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_firebase.procs <run-marker>``: fail if any marked process is left.

    The test command runs this after pytest, so "nothing left running" is checked on the
    real command, not assumed.
    """
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    time.sleep(1.0)  # let exiting children be reaped
    left = marked_pids(args[0], RUN_MARKER_VAR)
    for pid in left:
        cmd = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
        print(f"leaked process {pid}: {cmd[:200]}", file=sys.stderr)
    if left:
        return 1
    print("process hygiene: no process started by this run is left")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
