"""Stack configuration: shifted ports, client environment, refusing unusable ports."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import pytest

import devstack
from pytest_firebase.stack import EmulatorStack, StackError


def test_an_offset_shifts_every_emulator_and_sidecar() -> None:
    stack = EmulatorStack(devstack.stack_config(offset=10))

    assert stack.port("firestore") == 8090
    assert stack.client_env()["FIREBASE_AUTH_EMULATOR_HOST"] == "127.0.0.1:9109"
    assert stack.functions_url("health").startswith("http://127.0.0.1:5011/demo-marketplace/")
    sidecars = {s.name: s for s in stack.config.sidecars}
    assert {n: s.port for n, s in sidecars.items()} == {
        "localstripe": 8430,
        "storage": 4453,
        "storage-bridge": 4490,
    }
    # The stand-in publishes to this stack's Pub/Sub; the bridge posts to its Functions.
    assert sidecars["storage"].env == {"PUBSUB_EMULATOR_HOST": "127.0.0.1:8095"}
    assert "http://127.0.0.1:5011" in sidecars["storage-bridge"].argv


def test_ports_that_nodes_fetch_refuses_are_refused_before_anything_starts() -> None:
    # Offset 2000 puts Firestore on 10080, a port fetch() blocks: the CLI could start the
    # emulator but never register a trigger with it.
    stack = EmulatorStack(devstack.stack_config(offset=2000))

    with pytest.raises(StackError, match="firestore:10080"):
        stack.start()
    assert stack.stop() == []


def test_the_ui_is_enabled_only_where_it_can_be_had(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREBASE_EMULATOR_UI", "0")
    assert devstack.stack_config(offset=0, ui=True).ui is False

    monkeypatch.setenv("FIREBASE_EMULATOR_UI", "1")
    stack = EmulatorStack(devstack.stack_config(offset=10, ui=True))
    assert stack.describe()[0] == ("ui", "http://127.0.0.1:4010")


def test_cached_emulators_count_only_in_the_version_the_cli_wants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from pytest_firebase import toolchain

    monkeypatch.setattr(toolchain, "CLI_CACHE", tmp_path)
    monkeypatch.delenv(toolchain.CLI_VAR, raising=False)
    package = toolchain.firebase_tools_dir(toolchain.find_firebase_cli(devstack.ROOT))
    assert package == devstack.ROOT / "node_modules" / "firebase-tools"
    info = json.loads((package / toolchain.EMULATOR_INFO).read_text())
    wanted_jar = info["firestore"]["downloadPathRelativeToCacheDir"]
    wanted_ui = info["ui"]["main"]["binaryPathRelativeToCacheDir"]

    (tmp_path / "cloud-firestore-emulator-v0.0.1.jar").touch()  # some other version
    assert toolchain.cli_has_cached("firestore", devstack.ROOT) is False
    (tmp_path / wanted_jar).touch()
    assert toolchain.cli_has_cached("firestore", devstack.ROOT) is True

    assert toolchain.cli_has_cached("ui", devstack.ROOT) is False
    (tmp_path / wanted_ui).parent.mkdir(parents=True)
    (tmp_path / wanted_ui).touch()
    assert toolchain.cli_has_cached("ui", devstack.ROOT) is True
    monkeypatch.setenv("PATH", str(tmp_path))  # and no global firebase either
    assert toolchain.cli_has_cached("firestore", tmp_path) is False  # no firebase-tools there


def test_triggers_settle_once_no_run_is_going_or_starting_and_none_began_for_a_while(
    tmp_path: Path,
) -> None:
    stack = EmulatorStack(devstack.stack_config(offset=10))
    stack.emulator_log = tmp_path / "emulators.log"
    worker = "i  functions: Loaded environment variables from functions/.env\n"
    begin = 'i  functions: Beginning execution of "us-central1-on_favorite_written-0"\n'
    finish = 'i  functions: Finished "us-central1-on_favorite_written-0" in 12.5ms\n'
    with stack.emulator_log.open("w") as log:  # a worker loaded to discover the functions
        log.write(worker + "All emulators ready!\n" + begin * 2 + finish + "i  functions: Beg")

    def settle(**timing: float) -> tuple[int, int, bool]:
        seen = stack.settle_triggers(**timing)
        return seen.started, seen.finished, seen.drained

    assert settle(quiet=0.2, timeout=0.6) == (2, 1, False)  # a run is going
    assert "still busy" in stack.settle_triggers(quiet=0.2, timeout=0.3).describe()
    with stack.emulator_log.open("a") as log:
        log.write('inning execution of "us-central1-roll_up_favorites"\n' + finish * 2 + worker)
    assert settle(quiet=0.2, timeout=0.6) == (3, 3, False)  # a cold worker is starting
    with stack.emulator_log.open("a") as log:
        log.write(begin + finish)
    started = time.monotonic()
    assert settle(quiet=0.2, timeout=5) == (4, 4, True)
    assert 0.2 <= time.monotonic() - started < 1
    assert "4 runs done" in stack.settle_triggers(quiet=0, timeout=1).describe()
    with stack.emulator_log.open("a") as log:  # a run the emulator lost never "Finished"
        log.write(begin + "!!  functions: Request to function failed: Error: socket hang up\n")
    assert settle(quiet=0.2, timeout=5) == (5, 5, True)


def test_the_firebase_cli_is_the_named_one_then_the_projects_then_the_one_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_firebase import toolchain

    monkeypatch.delenv(toolchain.CLI_VAR, raising=False)
    own = devstack.ROOT / "node_modules" / ".bin" / "firebase"
    on_path = tmp_path / "bin" / "firebase"
    on_path.parent.mkdir()
    on_path.touch(mode=0o755)
    monkeypatch.setenv("PATH", str(on_path.parent))

    assert toolchain.find_firebase_cli(devstack.ROOT) == own
    assert toolchain.find_firebase_cli(tmp_path) == on_path
    assert toolchain.find_firebase_cli(tmp_path, Path("bin/firebase")) == on_path  # ini
    monkeypatch.setenv(toolchain.CLI_VAR, str(own))
    assert toolchain.find_firebase_cli(tmp_path, Path("bin/firebase")) == own  # env wins

    monkeypatch.setenv(toolchain.CLI_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(toolchain.ToolchainError, match="does not exist"):
        toolchain.find_firebase_cli(devstack.ROOT)
    monkeypatch.delenv(toolchain.CLI_VAR)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(toolchain.ToolchainError, match="npm install --save-dev firebase-tools"):
        toolchain.find_firebase_cli(tmp_path)


def test_an_offset_stack_moves_ports_firebase_json_leaves_to_the_cli(tmp_path: Path) -> None:
    import json

    from pytest_firebase.stack import StackConfig

    (tmp_path / "firebase.json").write_text(json.dumps({"emulators": {"auth": {"port": 9199}}}))
    config = StackConfig(tmp_path, "demo-x", emulators=("auth", "firestore"), port_offset=100)
    stack = EmulatorStack(config)

    (flag, name) = stack._config_args()
    ports = {
        k: v["port"] for k, v in json.loads((tmp_path / name).read_text())["emulators"].items()
    }
    assert flag == "--config"
    assert ports == {
        "auth": 9299,
        "firestore": 8180,
        "hub": 4500,
        "logging": 4600,
        "eventarc": 9399,
        "tasks": 9599,
    }
    assert stack.client_env()["FIRESTORE_EMULATOR_HOST"] == "127.0.0.1:8180"


def test_a_folder_without_firebase_json_is_refused_by_name(tmp_path: Path) -> None:
    from pytest_firebase.stack import StackConfig

    with pytest.raises(StackError, match=r"No firebase\.json in"):
        EmulatorStack(StackConfig(tmp_path, "demo-x"))


def test_tests_that_need_triggers_run_first_each_group_in_its_own_order() -> None:
    from pytest_firebase import plugin

    class Item:
        def __init__(self, name: str, e2e: bool) -> None:
            self.name, self.e2e = name, e2e

        def get_closest_marker(self, marker: str) -> object | None:
            return object() if self.e2e and marker == "e2e" else None

    class Config:
        def getini(self, name: str) -> str:
            assert name == "firebase_triggers_marker"
            return "e2e"

    items: list[Any] = [Item("a", False), Item("b", True), Item("c", False), Item("d", True)]
    plugin.pytest_collection_modifyitems(cast(Any, Config()), items)
    assert [i.name for i in items] == ["b", "d", "a", "c"]
