"""Delivers the Cloud Storage stand-in's object events to the Functions emulator.

fake-gcs-server publishes each upload and delete to a Pub/Sub emulator topic; a push
subscription posts them here; each becomes the CloudEvent production delivers
(:func:`pytest_firebase.storage.from_notification`) and goes to the Functions emulator's
``trigger_multicast`` endpoint, the one the Firebase Storage emulator itself uses, so the
deployed ``storage_fn`` handler runs unchanged in its emulator worker. A failed post answers
502, so Pub/Sub redelivers: at-least-once, as in production.

Run as a sidecar: ``python -m pytest_firebase.storage_bridge --port P --functions ORIGIN
--project ID``. ``GET /healthz`` answers once it listens.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pytest_firebase.storage import from_notification

PUSH_PATH = "/push"


def serve(port: int, functions_origin: str, project: str) -> None:
    """Listen on ``port`` until killed."""
    multicast = f"{functions_origin}/functions/projects/{project}/trigger_multicast"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(200 if self.path == "/healthz" else 404)

        def do_POST(self) -> None:
            if self.path != PUSH_PATH:
                self._answer(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                attributes, data = from_notification(json.loads(body)["message"])
            except (KeyError, ValueError) as err:
                # Not an object event: acknowledged (a redelivery would fail the same way).
                self.log_message("dropped a notification that is not an object event: %r", err)
                self._answer(204)
                return
            event = json.dumps({**attributes, "data": data}).encode()
            request = urllib.request.Request(
                multicast,
                data=event,
                headers={"Content-Type": "application/cloudevents+json; charset=UTF-8"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
            except (urllib.error.URLError, OSError) as err:
                self.log_message("multicast failed (Pub/Sub will redeliver): %r", err)
                self._answer(502)
                return
            self.log_message("%s %s", attributes["type"], attributes["subject"])
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--functions", required=True, help="the Functions emulator's origin")
    parser.add_argument("--project", required=True)
    args = parser.parse_args()
    serve(args.port, args.functions.rstrip("/"), args.project)


if __name__ == "__main__":
    main()
