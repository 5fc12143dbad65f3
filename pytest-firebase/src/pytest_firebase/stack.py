"""Start, reuse and stop the Firebase Local Emulator Suite (plus sidecar servers).

One ``EmulatorStack`` owns one ``firebase emulators:start`` process group and any sidecars
(for example a local Stripe server). Ports come from ``firebase.json``; a stack with a port
offset writes a derived config next to it, so a second stack can run beside the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_firebase import procs, toolchain

DEFAULT_PORTS = {
    "ui": 4000,
    "hub": 4400,
    "logging": 4500,
    "auth": 9099,
    "firestore": 8080,
    "functions": 5001,
    "pubsub": 8085,
    "hosting": 5000,
    "eventarc": 9299,
    "tasks": 9499,
}
"""The Firebase CLI's own port for an emulator that ``firebase.json`` gives none."""
PORT_KEYS = tuple(DEFAULT_PORTS)
FIRESTORE_WEBSOCKET_PORT = 9150
ALWAYS_STARTED = ("hub", "logging", "eventarc", "tasks")
"""Started beside the chosen emulators, so an offset stack must move them too."""
HOST_VARS = {
    "firestore": "FIRESTORE_EMULATOR_HOST",
    "auth": "FIREBASE_AUTH_EMULATOR_HOST",
    "pubsub": "PUBSUB_EMULATOR_HOST",
    "tasks": "CLOUD_TASKS_EMULATOR_HOST",
}
"""The variable that points the SDKs at each emulator."""
DEFAULT_EMULATORS = ("auth", "firestore", "functions", "pubsub", "hosting")
# Ports Node's fetch refuses by specification (WHATWG "bad ports"); firebase-tools talks
# to the emulators with fetch, so an emulator on one of these silently breaks the suite.
FETCH_BLOCKED_PORTS = frozenset(
    {
        1719,
        1720,
        1723,
        2049,
        3659,
        4045,
        4190,
        5060,
        5061,
        6000,
        6566,
        6665,
        6666,
        6667,
        6668,
        6669,
        6679,
        6697,
        10080,
    }
)


class StackError(RuntimeError):
    """The stack could not start; the message says why and what to do."""


DISCOVERY_LOCK = Path(tempfile.gettempdir()) / "pytest-firebase-functions-discovery.lock"
DISCOVERED = (
    "functions: Loaded functions definitions from source",
    "Failed to load function definition from source",
    "All emulators ready",
)
"""What the CLI prints once its discovery of the functions is over, either way."""


@contextlib.contextmanager
def functions_discovery(timeout: float = 240.0) -> Iterator[None]:
    """Hold this machine's lock on discovering Python functions, while a Functions emulator
    does (its start, and each re-enabling of background triggers, which reloads them).

    The Firebase CLI reads a Python codebase's functions from an admin server it starts on
    the first free port from 8081: it checks the port, then Python binds it a second or more
    later. Two emulators discovering at once (stacks started side by side by test workers)
    both chose 8081; one server lost the port, and its CLI read the other's list of
    functions, which it would not have found had the other stopped first. One at a time,
    each finds 8081 free or sees it taken.
    """
    fd = os.open(DISCOVERY_LOCK, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StackError(
                        f"Another Functions emulator kept discovering its functions for "
                        f"{timeout:.0f} s (it holds {DISCOVERY_LOCK})"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass(frozen=True)
class Sidecar:
    """A server started beside the emulators, e.g. a local Stripe-API server."""

    name: str
    argv: tuple[str, ...]
    """Command line; ``{port}`` in an argument is replaced by the sidecar's port."""
    port: int
    ready_path: str = "/"
    on_ready: Callable[[Sidecar, EmulatorStack], None] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables for this sidecar alone, on top of the stack's environment (from which the
    emulators' host variables are removed: a sidecar that must reach one names it here)."""

    @property
    def url(self) -> str:
        """Base URL of the sidecar."""
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class StackConfig:
    """What to start: the project, its emulators, ports offset and sidecars."""

    project_root: Path
    project_id: str
    emulators: tuple[str, ...] = DEFAULT_EMULATORS
    port_offset: int = 0
    sidecars: tuple[Sidecar, ...] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)
    startup_timeout: float = 240.0
    ui: bool = False
    """Start the Emulator UI too (see ``toolchain.emulator_ui_available``)."""
    firebase_cli: Path | None = None
    """The ``firebase`` executable (default: see ``toolchain.find_firebase_cli``)."""
    state_file: Path | None = None
    """Where a running stack records its marker, so the next start can sweep what a
    crashed or killed run left behind (without it, those processes hold the ports)."""

    def with_offset(self, offset: int) -> StackConfig:
        """The same stack on ports shifted by ``offset``."""
        delta = offset - self.port_offset  # sidecar ports already carry the current offset
        sidecars = tuple(replace(s, port=s.port + delta) for s in self.sidecars)
        return replace(self, port_offset=offset, sidecars=sidecars)


class EmulatorStack:
    """A running (or reused) emulator suite and its sidecars."""

    def __init__(self, config: StackConfig, *, marker: str | None = None) -> None:
        self.config = config
        self.marker = marker or procs.new_marker()
        self.reused = False
        self.triggers_enabled: bool | None = None
        """Whether the Functions emulator's event triggers are on (None: not yet known)."""
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._firebase_json = self._load_firebase_json()
        self.log_dir = config.project_root / ".cache" / "logs"
        self.emulator_log = self.log_dir / f"emulators-{config.port_offset}.log"
        """What ``firebase emulators:start`` prints (a reused suite's is not ours to read)."""

    # ---- addresses -------------------------------------------------------------------
    def _load_firebase_json(self) -> dict[str, Any]:
        path = self.config.project_root / "firebase.json"
        if not path.is_file():
            raise StackError(
                f"No firebase.json in {self.config.project_root}: run pytest from the Firebase "
                "project's folder, or set the ini option firebase_project_root."
            )
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def port(self, emulator: str) -> int:
        """The port ``emulator`` listens on in this stack."""
        declared = self._firebase_json.get("emulators", {}).get(emulator, {})
        base = int(declared.get("port", DEFAULT_PORTS[emulator]))
        return base + self.config.port_offset

    def host(self, emulator: str) -> str:
        """``127.0.0.1:<port>`` of ``emulator``."""
        return f"127.0.0.1:{self.port(emulator)}"

    def client_env(self) -> dict[str, str]:
        """Environment variables that point Google/Firebase SDKs at this stack."""
        project = self.config.project_id
        env = {
            "GCLOUD_PROJECT": project,
            "GOOGLE_CLOUD_PROJECT": project,
            "FUNCTIONS_EMULATOR": "true",
            "FIREBASE_EMULATOR_HUB": self.host("hub"),
        }
        for emulator, var in HOST_VARS.items():
            if emulator in self.config.emulators or emulator == "tasks":
                env[var] = self.host(emulator)
        return env

    def functions_url(self, name: str, region: str = "us-central1") -> str:
        """URL of an HTTPS or callable function in the Functions emulator."""
        return f"http://{self.host('functions')}/{self.config.project_id}/{region}/{name}"

    # ---- lifecycle -------------------------------------------------------------------
    def running_elsewhere(self) -> bool:
        """True when a suite with all our emulators already answers on our hub port.

        The hub does not report its project id; a suite of another project on the same
        ports would be reused too (its data then gets reset by our tests).
        """
        try:
            with urllib.request.urlopen(f"http://{self.host('hub')}/emulators", timeout=2) as r:
                listed = json.loads(r.read())
        except (OSError, ValueError):
            return False
        return all(name in listed for name in self.config.emulators)

    def start(self, *, reuse: bool = True) -> EmulatorStack:
        """Start the suite and sidecars, or reuse a suite already running on our ports."""
        if reuse and self.running_elsewhere():
            self.reused = True
            # A suite started by hand (`firebase emulators:start`) lacks our sidecars.
            for sidecar in self.config.sidecars:
                if not _port_open(sidecar.port):
                    self._start_sidecar(sidecar)
            return self
        self._sweep_previous_run()
        self._refuse_busy_ports()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        tools = toolchain.resolve(
            self.config.project_root / ".cache",
            emulators=self.config.emulators,
            cli=self.config.firebase_cli,
        )
        try:
            self._start_emulators(tools)
            for sidecar in self.config.sidecars:
                self._start_sidecar(sidecar)
        except BaseException:
            self.stop()
            raise
        return self

    def _base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        for var in (*HOST_VARS.values(), "FIREBASE_EMULATOR_HUB"):
            env.pop(var, None)  # the CLI sets these for its children; stale ones mislead it
        env.update(self.config.extra_env)
        env[procs.STACK_MARKER_VAR] = self.marker
        return env

    def _config_args(self) -> list[str]:
        if self.config.port_offset == 0 and not self.config.ui:
            return []
        data = json.loads(json.dumps(self._firebase_json))
        emulators = data.setdefault("emulators", {})
        if self.config.ui:
            emulators.setdefault("ui", {})["enabled"] = True
        # Every port this stack may open is written out shifted, defaults included: one the
        # file leaves out would otherwise sit on the CLI's default beside the unshifted stack.
        for key in sorted({*self.config.emulators, *ALWAYS_STARTED, *emulators} & set(PORT_KEYS)):
            emulators.setdefault(key, {})["port"] = self.port(key)
        if "firestore" in emulators:
            firestore = emulators["firestore"]
            base = int(firestore.get("websocketPort", FIRESTORE_WEBSOCKET_PORT))
            firestore["websocketPort"] = base + self.config.port_offset
        name = f".firebase.ports-{self.config.port_offset}{'-ui' if self.config.ui else ''}.json"
        (self.config.project_root / name).write_text(json.dumps(data, indent=2))
        return ["--config", name]

    def _start_emulators(self, tools: toolchain.Toolchain) -> None:
        log_path = self.emulator_log
        argv = [
            str(tools.cli),
            "emulators:start",
            "--project",
            self.config.project_id,
            "--only",
            ",".join(self.config.emulators),
            *self._config_args(),
        ]
        discovering = "functions" in self.config.emulators
        timeout = self.config.startup_timeout
        lock = functions_discovery(timeout) if discovering else contextlib.nullcontext()
        with lock:  # until the functions are discovered, not until the whole suite is up
            deadline = time.monotonic() + timeout
            with log_path.open("wb") as log:
                proc = procs.spawn_group(
                    argv, env=tools.apply(self._base_env()), cwd=self.config.project_root, log=log
                )
            self._procs.append(("firebase emulators", proc))
            if discovering:
                self._wait_for_log(proc, log_path, DISCOVERED, deadline)
        self._wait_for_log(proc, log_path, ("All emulators ready",), deadline)

    def _wait_for_log(
        self,
        proc: subprocess.Popen[bytes],
        log_path: Path,
        lines: tuple[str, ...],
        deadline: float,
    ) -> None:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(self._explain_failure(log_path))
            text = log_path.read_text(errors="replace")
            if any(line in text for line in lines):
                return
            time.sleep(0.25)
        raise StackError(
            f"Emulators not ready after {self.config.startup_timeout:.0f}s; see {log_path}"
        )

    def _explain_failure(self, log_path: Path) -> str:
        text = log_path.read_text(errors="replace")
        tail = "\n".join(text.splitlines()[-25:])
        for emulator in ("firestore", "pubsub"):
            if f"{emulator}" in text.lower() and (
                "download" in text.lower() or "ENOTFOUND" in text
            ):
                return f"{toolchain.missing_emulator_hint(emulator)}\n--- {log_path} ---\n{tail}"
        return f"firebase emulators:start exited early; see {log_path}:\n{tail}"

    def _refuse_busy_ports(self) -> None:
        names = (*self.config.emulators, "hub", "logging", "eventarc", "tasks")
        blocked = [
            f"{name}:{self.port(name)}" for name in names if self.port(name) in FETCH_BLOCKED_PORTS
        ]
        if blocked:
            raise StackError(
                f"Ports that Node's fetch refuses: {', '.join(blocked)}. Choose another "
                f"port offset (now {self.config.port_offset})."
            )
        busy = [
            f"{name}:{self.port(name)}"
            for name in (*self.config.emulators, "hub")
            if _port_open(self.port(name))
        ]
        busy += [f"{s.name}:{s.port}" for s in self.config.sidecars if _port_open(s.port)]
        if busy:
            raise StackError(
                f"Ports already in use by something that is not our emulator suite: "
                f"{', '.join(busy)}. Stop it, or run with a port offset."
            )

    def _start_sidecar(self, sidecar: Sidecar) -> None:
        log_path = self.log_dir / f"{sidecar.name}-{sidecar.port}.log"
        with log_path.open("wb") as log:
            argv = [arg.format(port=sidecar.port) for arg in sidecar.argv]
            proc = procs.spawn_group(
                argv, env={**self._base_env(), **sidecar.env}, cwd=self.config.project_root, log=log
            )
        self._procs.append((sidecar.name, proc))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"{sidecar.name} exited early; see {log_path}")
            if _http_ok(sidecar.url + sidecar.ready_path):
                if sidecar.on_ready is not None:
                    sidecar.on_ready(sidecar, self)
                return
            time.sleep(0.2)
        raise StackError(f"{sidecar.name} not ready on port {sidecar.port}; see {log_path}")

    def _sweep_previous_run(self) -> None:
        state = self.config.state_file
        if state is None:
            return
        if state.exists():
            marker, _, owner = state.read_text().partition(" ")
            if owner.strip().isdigit() and procs.alive(int(owner)):
                raise StackError(
                    f"Another run (pid {owner.strip()}) owns this stack; stop "
                    "it first, or use another port offset."
                )
            stale = procs.sweep(marker.strip())
            if stale:
                print(f"pytest_firebase: swept {len(stale)} processes of a run that died")
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(f"{self.marker} {os.getpid()}")

    def stop(self, *, grace: float = 5.0) -> list[int]:
        """Stop everything this stack started; returns pids that had to be swept.

        ``grace``: how long each process group may take to stop on SIGINT (see
        :func:`procs.stop_group`); a developer's Ctrl-C can wait longer than a test."""
        for _name, proc in reversed(self._procs):
            procs.stop_group(proc, grace=grace)
        self._procs.clear()
        if self.reused:
            return procs.sweep(self.marker)  # only what we started beside a reused suite
        swept = procs.sweep(self.marker)
        state = self.config.state_file
        if state is not None and state.exists() and state.read_text().startswith(self.marker):
            state.unlink()
        return swept

    def settle_triggers(self, *, quiet: float = 3.0, timeout: float = 120.0) -> Settled:
        """Wait until the functions have run every event so far, or ``timeout`` passed.

        The Firestore emulator delivers trigger events one at a time, in order, each
        waiting for the function to finish, so its backlog shows as an unbroken series of
        runs in the Functions emulator's log, the only place that emulator reports its
        pending work. Settled means: no run going, no worker starting (a cold worker
        imports the code before its run begins), and nothing new for ``quiet`` seconds
        (a webhook arrives about a second after its cause).
        """
        tally = _RunTally()
        started = last_change = time.monotonic()
        offset = 0
        while True:
            with self.emulator_log.open("rb") as log:
                log.seek(offset)
                new = log.read()
            lines = new[: new.rfind(b"\n") + 1]  # whole lines only
            offset += len(lines)
            if lines:
                last_change = time.monotonic()
                tally.read(lines)
            now = time.monotonic()
            if not tally.busy and now - last_change >= quiet:
                return tally.result(now - started, drained=True)
            if now - started >= timeout:
                return tally.result(now - started, drained=False)
            time.sleep(0.2)

    def describe(self) -> list[tuple[str, str]]:
        """(service, address) rows for humans."""
        rows = [(name, f"http://{self.host(name)}") for name in self.config.emulators]
        if self.config.ui:
            rows.insert(0, ("ui", f"http://{self.host('ui')}"))
        rows.append(("hub", f"http://{self.host('hub')}"))
        rows += [(s.name, s.url) for s in self.config.sidecars]
        return rows


class _RunTally:
    """Function runs and worker start-ups, counted from the emulator log's lines."""

    def __init__(self) -> None:
        self.emulators_ready = False  # workers loaded before this only discovered functions
        self.starting = self.begun = self.finished = 0

    def read(self, lines: bytes) -> None:
        for line in lines.splitlines():
            if b"All emulators ready" in line:
                self.emulators_ready = True
            elif b"functions: Loaded environment variables" in line and self.emulators_ready:
                self.starting += 1  # a worker starts for a delivery; its run begins next
            elif b"functions: Beginning execution of " in line:
                self.begun += 1
                self.starting = max(0, self.starting - 1)
            elif b'functions: Finished "' in line or b"Request to function failed" in line:
                # A run the emulator lost (its worker's socket hung up, or it timed out)
                # logs the failure and never "Finished": it is over all the same.
                self.finished += 1

    @property
    def busy(self) -> bool:
        return self.starting > 0 or self.begun > self.finished

    def result(self, seconds: float, *, drained: bool) -> Settled:
        return Settled(self.begun, self.finished, seconds, drained)


@dataclass(frozen=True)
class Settled:
    """What :meth:`EmulatorStack.settle_triggers` saw while it waited."""

    started: int
    """Function runs that began since the suite started."""
    finished: int
    seconds: float
    drained: bool
    """False when it gave up with runs still going or still starting."""

    def describe(self) -> str:
        """One line for humans."""
        if self.drained:
            return f"triggers: {self.finished} runs done, all quiet ({self.seconds:.1f} s)"
        return (
            f"triggers: still busy after {self.seconds:.0f} s ({self.started} runs began, "
            f"{self.finished} finished); recipes may wait behind them"
        )


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered; any status means it is up
    except OSError:
        return False
