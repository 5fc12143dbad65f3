"""A health endpoint for uptime checks and for humans poking the dev stack."""

from __future__ import annotations

import json
import os

from firebase_functions import https_fn
from flask import Request, Response

from firekit.bootstrap import is_emulated
from marketplace import __version__, config


@https_fn.on_request()
def health(request: Request) -> Response:
    """Report the backend's version and whether it runs under the emulators."""
    if request.method not in ("GET", "HEAD"):
        return Response("Method Not Allowed", status=405, headers={"Allow": "GET, HEAD"})
    body = {
        "status": "ok",
        "service": config.MARKETPLACE_NAME.value,
        "version": __version__,
        "revision": os.environ.get("K_REVISION"),
        "emulated": is_emulated(),
    }
    return Response(
        json.dumps(body),
        status=200,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )
