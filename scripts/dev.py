"""`make dev`: the whole backend on this machine until Ctrl-C, then nothing left running."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import devlog  # noqa: E402
import devstack  # noqa: E402
from pytest_firebase import schedules  # noqa: E402
from pytest_firebase.stack import EmulatorStack, StackError  # noqa: E402
from pytest_firebase.toolchain import ToolchainError  # noqa: E402

if TYPE_CHECKING:  # the seed is imported once the environment points at the emulators
    from seed.accounts import SeedUser

READY_LINE = "Dev stack ready."


def _print_banner(
    stack: EmulatorStack, users: list[SeedUser], scheduler: schedules.Scheduler
) -> None:
    print("\nServices:")
    rows = [*stack.describe(), ("health", stack.functions_url("health"))]
    width = max(len(name) for name, _ in rows)
    for name, address in rows:
        print(f"  {name:<{width}} {address}")
    print(f"\nProject: {stack.config.project_id}. Point clients at the emulators, e.g.")
    print(f"  connectAuthEmulator(auth, 'http://{stack.host('auth')}')")
    print(f"  connectFirestoreEmulator(db, '127.0.0.1', {stack.port('firestore')})")
    print(f"  connectFunctionsEmulator(functions, '127.0.0.1', {stack.port('functions')})")
    print("\nSign in as (email / password / role):" if users else "\nNo seed data: sign up.")
    for user in users:
        print(f"  {user.email:<26} {user.password:<18} {user.role.value}")
    print("\nSchedules (run here on their schedule; each run prints a line):")
    for function, next_run in scheduler.jobs:
        when = next_run.astimezone(dt.UTC)
        print(f"  {function.name:<26} {function.schedule:<18} next {when:%H:%M:%S} UTC")
    admin = next((user for user in users if user.role.value == "admin"), None)
    print(f"\nAdmin console: http://{stack.host('hosting')}/")
    if admin is not None:
        print(f"  sign in as {admin.email} / {admin.password}")
    log = stack.emulator_log.relative_to(devstack.ROOT)
    print(f"\nFunction logs follow: a line per invocation (all of it in {log}).")
    print(f"\n{READY_LINE} Press Ctrl-C to stop everything.", flush=True)


class _StartupInterruptedError(Exception):
    """Ctrl-C (or SIGTERM/SIGHUP) while starting: stop now, not once start-up is over."""


def _interrupt(*_: object) -> None:
    raise _StartupInterruptedError


NO_SEED = "--no-seed"
"""Start with empty emulators (no accounts, no listings): for trying an app from sign-up,
and for the process-hygiene test, which needs the stack and not its data."""


def main(argv: list[str] | None = None) -> int:
    """Start, seed (unless ``--no-seed``), announce, wait for Ctrl-C or SIGTERM, stop."""
    args = sys.argv[1:] if argv is None else argv
    unknown = [a for a in args if a != NO_SEED]
    if unknown:
        print(f"usage: dev.py [{NO_SEED}] (unknown: {' '.join(unknown)})", file=sys.stderr)
        return 2
    seeded = NO_SEED not in args
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    stack = EmulatorStack(devstack.stack_config(ui=True))
    try:
        print("Starting the emulator suite and localstripe...", flush=True)
        stack.start(reuse=False)
        os.environ.update(stack.client_env())
        # The seed calls localstripe through the functions' own code, on this stack's port.
        os.environ.update(devstack.stripe_environment(stack.config.port_offset))
        os.environ.update(devstack.storage_environment(stack.config.port_offset))
        from seed.load import load_all, seed_users

        if seeded:
            print(load_all().describe(), flush=True)
            # The seed's writes queue hundreds of trigger runs: announce the stack once
            # they are done, or the first thing a developer tries waits behind them.
            print(stack.settle_triggers().describe(), flush=True)
        scheduler = schedules.run_in_background(
            stack.host("functions"), stack.config.project_id, stop
        )
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: stop.set())  # up and running: stop calmly
        # The sign-in accounts, not everyone (none without the seed).
        _print_banner(stack, list(seed_users()) if seeded else [], scheduler)
        devlog.start_following(stack.emulator_log, stop, color=sys.stdout.isatty())
        while not stop.wait(1.0):
            pass
    except _StartupInterruptedError:
        print("\nInterrupted while starting.", flush=True)
    except (StackError, ToolchainError, schedules.ScheduleError) as err:
        print(f"\nCould not start the dev stack:\n{err}", file=sys.stderr)
        return 1
    finally:
        stop.set()  # the scheduler's thread ends with the stack
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: stop.set())  # a second Ctrl-C must not cut the stop short
        print("\nStopping...", flush=True)
        # Time for the CLI to stop its function workers itself (a test's 5 s is not).
        swept = stack.stop(grace=20.0)
        print(f"Stopped{f' (swept {len(swept)} stray processes)' if swept else ''}.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
