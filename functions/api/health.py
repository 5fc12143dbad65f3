"""A health endpoint for uptime checks and for humans poking the dev stack."""

from __future__ import annotations

import json
import os

from firebase_functions import https_fn

from firekit.bootstrap import is_emulated
from marketplace import __version__


@https_fn.on_request()
def health(request: https_fn.Request) -> https_fn.Response:
    """Report the backend's version and whether it runs under the emulators."""
    if request.method not in ("GET", "HEAD"):
        return https_fn.Response("Method Not Allowed", status=405, headers={"Allow": "GET, HEAD"})
    body = {
        "status": "ok",
        "version": __version__,
        "revision": os.environ.get("K_REVISION"),
        "emulated": is_emulated(),
    }
    return https_fn.Response(json.dumps(body), status=200, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})  # fmt: skip
