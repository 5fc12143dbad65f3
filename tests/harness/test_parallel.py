"""pytest-xdist: each worker its own stack (ports, marker), files in the serial order.

`./scripts/test.sh -n 2` runs pytest on 2 workers. What keeps their tests as isolated
as in a serial run: worker gw<n> runs a stack of its own on the run's port offset
plus n times the worker shift, every process of it carries a marker the controller chose,
and what the stacks share on disk is safe to share (localstripe's pickle, below).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

import devstack
from pytest_firebase import parallel, procs, stack
from pytest_firebase.plugin import DEFAULT_WORKER_PORT_SHIFT, OFFSET_VAR
from pytest_firebase.stack import (
    ALWAYS_STARTED,
    FETCH_BLOCKED_PORTS,
    FIRESTORE_WEBSOCKET_PORT,
    EmulatorStack,
)

from .test_process_hygiene import HYGIENE_OFFSETS

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = Path(__file__).parent / "sample_project"
RUN_OFFSETS = (0, 3000, 4000, 5000, 6000, 6500, 7000)
"""Offsets whole runs use side by side: ours, beside `make dev` (README), and the ones
engineers use on a shared machine for targeted runs and hand checks."""
WORKERS = 2
FUNCTIONS_WORKER_PORTS = range(8081, 9250)
"""Where the Functions emulator's Python workers take ports (8081 + randint(0, 1000),
then upwards to the first free one): a stack starting later must not need one of them."""
EPHEMERAL_START = 32768
"""Linux's first port for outgoing connections (ip_local_port_range)."""


def stack_ports(offset: int) -> set[int]:
    """Every port our stack on ``offset`` listens on: emulators, hub and the CLI's own,
    Firestore's websocket, sidecars."""
    stack = EmulatorStack(devstack.stack_config(offset=offset))
    names = {*stack.config.emulators, *ALWAYS_STARTED}
    ports = {stack.port(name) for name in names}
    ports.add(FIRESTORE_WEBSOCKET_PORT + offset)
    return ports | {s.port for s in stack.config.sidecars}


def sample_ports(offset: int) -> set[int]:
    """The package test's sample project, run on ``offset`` (it inherits the run's)."""
    declared = json.loads((SAMPLE / "firebase.json").read_text())["emulators"]
    ports = {v["port"] for v in declared.values() if isinstance(v, dict) and "port" in v}
    ports.add(declared["firestore"]["websocketPort"])
    return {port + offset for port in ports}


def test_worker_n_runs_on_the_runs_offset_plus_n_shifts() -> None:
    assert parallel.worker_offset(0, "gw0", 10000) == 0
    assert parallel.worker_offset(0, "gw1", 10000) == 10000
    assert parallel.worker_offset(4000, "gw2", 10000) == 24000
    with pytest.raises(ValueError, match="not an xdist worker id"):
        parallel.worker_number("popen-1")


def test_the_worker_shift_keeps_every_workers_stack_clear_of_every_other_stack() -> None:
    shift = DEFAULT_WORKER_PORT_SHIFT
    runs = {base: [base + n * shift for n in range(WORKERS)] for base in RUN_OFFSETS}
    for base, offsets in runs.items():
        ours = [stack_ports(o) for o in offsets]
        for n, ports in enumerate(ours):
            where = f"run at {base}, gw{n} (offset {offsets[n]})"
            assert not ports & FETCH_BLOCKED_PORTS, where
            assert max(ports | sample_ports(offsets[n])) < EPHEMERAL_START, where
            for m, other in enumerate(ours):
                assert m == n or not ports & other, f"{where} and gw{m}"
            if n == 0:
                continue  # the run's own offset: the choice of whoever runs it
            assert not ports & set(FUNCTIONS_WORKER_PORTS), where
            assert not sample_ports(offsets[n]) & set(FUNCTIONS_WORKER_PORTS), where
            # Other runs' stacks, the stacks the hygiene tests start, the sample project.
            for other_base in RUN_OFFSETS:
                assert other_base == base or not ports & stack_ports(other_base), where
            for nested in HYGIENE_OFFSETS:
                assert not ports & stack_ports(nested), f"{where}, hygiene {nested}"
                assert not sample_ports(offsets[n]) & stack_ports(nested), where
            for m in range(WORKERS):
                assert m == n or not sample_ports(offsets[m]) & ports, f"{where}, sample"
                assert m == n or not sample_ports(offsets[n]) & ours[m], f"{where}, sample"


def test_files_go_out_in_the_serial_order_one_unit_per_stretch() -> None:
    # As the plugin orders them: the trigger tests of a.py and b.py first, then the rest.
    collection = [
        "t/a.py::e2e",
        "t/b.py::e2e",
        "t/a.py::one",
        "t/a.py::two",
        "t/c.py::one",
        "t/c.py::two",
        "t/c.py::three",
        "t/b.py::one",
    ]
    assert parallel.work_units(collection)["t/b.py::one"] == "t/b.py::<stretch 2>"

    class Node:
        def __init__(self, name: str) -> None:
            self.gateway = SimpleNamespace(id=name)
            self.sent: list[list[int]] = []
            self.shutting_down = False

        def send_runtest_some(self, indices: list[int]) -> None:
            self.sent.append(indices)

        def shutdown(self) -> None:
            self.shutting_down = True

    option = SimpleNamespace(loadscopereorder=True, tx=["popen", "popen"])
    config = SimpleNamespace(option=option, getvalue=lambda name: getattr(option, name))
    scheduler = parallel.serial_order_scheduling(config)
    gw0, gw1 = Node("gw0"), Node("gw1")
    for node in (gw0, gw1):
        scheduler.add_node(node)
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()

    # xdist's loadfile would send c.py (the most tests) first.
    assert gw0.sent == [[0], [2, 3]]
    assert gw1.sent == [[1], [4, 5, 6]]
    assert option.loadscopereorder is True  # the option is left as it was
    for index in (0, 2, 3):
        scheduler.mark_test_complete(gw0, index)
    assert gw0.sent[-1] == [7]  # b.py's second stretch, to whoever asks first
    for index in (1, 4, 5, 6):
        scheduler.mark_test_complete(gw1, index)
    scheduler.mark_test_complete(gw0, 7)
    assert scheduler.tests_finished


def test_each_worker_gets_its_offset_and_marker_and_points_its_clients_there(
    tmp_path: Path,
) -> None:
    # The wiring of a real `pytest -n 2` run, on a project whose tests only report what
    # their worker was given (no emulator starts).
    (tmp_path / "firebase.json").write_text(
        json.dumps({"emulators": {"firestore": {"port": 8080}}})
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    report = tmp_path / "workers.jsonl"
    for name in ("test_one.py", "test_two.py"):
        (tmp_path / name).write_text(
            textwrap.dedent(f"""
            import json, os

            def test_report(request):
                given = request.config.workerinput
                with open({str(report)!r}, "a") as out:
                    out.write(json.dumps({{
                        "worker": given["workerid"],
                        "offset": os.environ["{OFFSET_VAR}"],
                        "firestore": os.environ["FIRESTORE_EMULATOR_HOST"],
                        "marker": given["{parallel.MARKER_KEY}"],
                    }}) + "\\n")
            """)
        )
    env = {**os.environ, OFFSET_VAR: "7"}
    for var in ("FIRESTORE_EMULATOR_HOST", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER"):
        env.pop(var, None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadfile", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    seen = {r["worker"]: r for r in map(json.loads, report.read_text().splitlines())}
    assert {w: (r["offset"], r["firestore"]) for w, r in seen.items()} == {
        "gw0": ("7", "127.0.0.1:8087"),
        "gw1": ("10007", "127.0.0.1:18087"),
    }
    assert seen["gw0"]["marker"] != seen["gw1"]["marker"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _customers(port: int) -> list[str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/customers")
    request.add_header("Authorization", "Bearer sk_test_parallel")
    with urllib.request.urlopen(request, timeout=10) as response:
        return [c["email"] for c in json.loads(response.read())["data"]]


def _add_customer(port: int, email: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/customers", data=f"email={email}".encode()
    )
    request.add_header("Authorization", "Bearer sk_test_parallel")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def test_localstripes_side_by_side_share_a_pickle_file_but_never_its_data(
    tmp_path: Path,
) -> None:
    # Every localstripe dumps its store to /tmp/localstripe.pickle after each write; ours
    # start --from-scratch, so none reads another's.
    sidecar = devstack.localstripe()
    assert "--from-scratch" in sidecar.argv
    marker = procs.new_marker()
    env = {**os.environ, procs.STACK_MARKER_VAR: marker}
    ports, started = [], []
    try:
        for name in ("first", "second"):
            port = _free_port()
            argv = [arg.format(port=port) for arg in sidecar.argv]
            with (tmp_path / f"{name}.log").open("wb") as log:
                started.append(procs.spawn_group(argv, env=env, cwd=ROOT, log=log))
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert _customers(port) == []  # it starts empty
                    break
                except OSError:
                    assert time.monotonic() < deadline, (tmp_path / f"{name}.log").read_text()
                    time.sleep(0.1)
            _add_customer(port, f"{name}@example.test")  # and dumps its store
            ports.append(port)

        assert _customers(ports[0]) == ["first@example.test"]
        assert _customers(ports[1]) == ["second@example.test"]
    finally:
        for proc in started:
            procs.stop_group(proc, grace=2.0)
    assert procs.marked_pids(marker) == []


def test_one_functions_emulator_at_a_time_discovers_its_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI serves the functions' list on the first free port from 8081, checked before
    # Python binds it: two stacks discovering at once took the same port (seen under -n 2).
    monkeypatch.setattr(stack, "DISCOVERY_LOCK", tmp_path / "discovery.lock")
    with stack.functions_discovery():
        started = time.monotonic()
        refused = pytest.raises(stack.StackError, match="kept discovering its functions")
        with refused, stack.functions_discovery(timeout=0.5):
            pass
        assert time.monotonic() - started >= 0.5
    with stack.functions_discovery(timeout=0.5):
        pass  # free again
