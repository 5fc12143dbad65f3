"""A health endpoint for uptime checks, the admin console and humans poking the dev stack."""

from __future__ import annotations

import json

from firebase_functions import https_fn
from flask import Request, Response

from firekit.bootstrap import db


@https_fn.on_request()
def health(request: Request) -> Response:
    """Version, emulated or not, and every check (marketplace.health): 200 if all pass,
    503 naming the ones that failed."""
    if request.method not in ("GET", "HEAD"):
        return Response("Method Not Allowed", status=405, headers={"Allow": "GET, HEAD"})
    from marketplace import health as checks  # lazy: the fan-out engine is not cold-start

    status, body = checks.current_report(db())
    return Response(
        json.dumps(body),
        status=status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )
