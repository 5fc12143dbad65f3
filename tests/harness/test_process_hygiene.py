"""Nothing the dev or test command starts outlives it.

The test command proves it of itself: its last step (``python -m pytest_firebase.procs``,
``scripts/test.sh``) fails if any process carrying the run's marker is still running
after pytest exits. The tests here prove it of the dev command, and of a stack whose
CLI was killed outright.

Both run beside the session's own suite on ports shifted by an offset (clear of the
default ports, of each other, of ports Node's fetch refuses, and of 8081-9081, where the
Functions emulator picks random ports for its Python workers: a worker of the session's
own suite sitting on a nested stack's port made that stack refuse to start), each with a run marker
that every descendant inherits (the detached Java emulators included), so "left running"
is checked by identity in /proc, not guessed from process names.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

import devstack
from pytest_firebase.procs import RUN_MARKER_VAR, marked_pids, new_marker, sweep
from pytest_firebase.stack import EmulatorStack
from pytest_firebase.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
DEV_READY = "Dev stack ready."


def marked_commands(marker: str) -> list[str]:
    commands = []
    for pid in marked_pids(marker, RUN_MARKER_VAR):
        try:
            commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return commands


HYGIENE_OFFSETS = (1100, 1300)
"""Every port of these stacks lies outside 8081-9081 (see the module docstring)."""


def child_env(marker: str, offset: int) -> dict[str, str]:
    return {**os.environ, RUN_MARKER_VAR: marker, "PYTEST_FIREBASE_PORT_OFFSET": str(offset)}


class Output:
    """Collects a child's output lines on a thread, so reading never blocks the test."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line)

    def join(self) -> None:
        self._thread.join(timeout=10)

    def text(self) -> str:
        return "".join(self.lines)


@pytest.mark.stack
@pytest.mark.timeout(900)
def test_ctrl_c_of_the_dev_command_stops_everything_it_started() -> None:
    marker = new_marker()
    # The whole stack, scheduler included; without the seed, whose load and trigger runs
    # (the seed's own tests and the quickstart's cover them) would take a minute here.
    with subprocess.Popen(
        [sys.executable, "scripts/dev.py", "--no-seed"],
        cwd=ROOT,
        env=child_env(marker, HYGIENE_OFFSETS[0]),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as proc:
        output = Output(proc)
        try:
            wait_for(
                lambda: DEV_READY in output.text() or proc.poll() is not None,
                timeout=360,
                what="the dev stack to be ready",
            )
            assert DEV_READY in output.text(), output.text()
            assert "roll_up_favorites" in output.text()  # its scheduler is running
            running = marked_commands(marker)
            assert any("cloud-firestore-emulator" in c for c in running), running
            assert any("localstripe" in c for c in running), running

            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            assert proc.wait(timeout=90) == 0, output.text()
        finally:
            # On a failure above, still stop gracefully, then sweep by the run marker:
            # a SIGKILL of dev.py alone would orphan the emulators it started.
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.5)
            left = marked_commands(marker)  # what the command itself failed to stop
            sweep(marker, var=RUN_MARKER_VAR)  # then never leave it behind
        output.join()
    assert left == []
    assert "Stopped" in output.text()


@pytest.mark.stack
@pytest.mark.timeout(600)
def test_emulators_orphaned_by_a_killed_cli_are_swept() -> None:
    # firebase-tools starts the Java emulators in sessions of their own: when the CLI is
    # killed outright, they live on. Stopping the stack must still find and end them.
    config = devstack.stack_config(offset=HYGIENE_OFFSETS[1])
    stack = EmulatorStack(replace(config, emulators=("firestore",), sidecars=()))
    stack.start(reuse=False)
    try:
        java = [p for p in marked_pids(stack.marker) if b"java" in _cmdline(p)]
        assert java, "the Firestore emulator should be running"
        cli = stack._procs[0][1]
        os.killpg(cli.pid, signal.SIGKILL)
        cli.wait(timeout=30)
        time.sleep(1.0)
        assert all(p in marked_pids(stack.marker) for p in java), "orphans expected"
    finally:
        swept = stack.stop()

    assert set(java) <= set(swept)
    assert marked_pids(stack.marker) == []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.stack
@pytest.mark.timeout(600)
def test_ctrl_c_while_the_dev_command_starts_stops_at_once() -> None:
    marker = new_marker()
    with subprocess.Popen(
        [sys.executable, "scripts/dev.py"],
        cwd=ROOT,
        env=child_env(marker, HYGIENE_OFFSETS[0]),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as proc:
        output = Output(proc)
        try:
            wait_for(
                lambda: "Starting the emulator suite" in output.text(),
                timeout=60,
                what="the dev command to begin starting",
            )
            wait_for(
                lambda: (
                    marked_commands(marker)
                    and any("firebase" in c for c in marked_commands(marker))
                ),
                timeout=60,
                what="the Firebase CLI to be running",
            )
            started = time.monotonic()
            os.killpg(proc.pid, signal.SIGINT)
            assert proc.wait(timeout=90) == 0, output.text()
            assert time.monotonic() - started < 60
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.5)
            left = marked_commands(marker)
            sweep(marker, var=RUN_MARKER_VAR)
        output.join()
    assert "Interrupted while starting" in output.text(), output.text()
    assert DEV_READY not in output.text()
    assert left == []
