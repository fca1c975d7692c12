"""Refuses request lines no route could mean, before routing, handlers or the database.

A NUL or another control character in a path or a query value reached PostgreSQL as a 500
("database error (DataError)") or the static files router as one (``ValueError: embedded null
byte``, ``OSError: File name too long``). No route takes such text: a model id, a category, a
date or a file name never holds one. So the guard answers them with a 4xx naming the part of the
request at fault, and the routes keep their own checks (ranges, lengths, known values).

Not on the selector's hot path: ``RequestObserver`` answers the cached selector GETs before this
runs, and those answers match only parameter values the service rendered itself.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from litestar.enums import ScopeType

from pricing_service.normalize import UNSAFE_TEXT

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

# Over either: 400 (the status every route documents for a bad parameter), not 414.
MAX_PATH = 2048  # characters of the decoded path
MAX_QUERY = 8192  # bytes of the raw query string
STATIC_PREFIX = "/admin/static/"
# The console's static files are named like console.css: anything else is no file of ours (a
# long name was an OSError from the file system, a NUL a ValueError, both 500s).
_STATIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
CONSOLE_PREFIX = "/admin"


def _body(status: int, detail: str) -> bytes:
    return json.dumps({"status_code": status, "detail": detail}).encode()


class InputGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope["path"], scope["query_string"])
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, detail = refused
        body = _body(status, detail)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    @staticmethod
    def refusal(path: str, query: bytes) -> tuple[int, str] | None:
        """The status and detail a request line gets, or None when it may go on."""
        console = path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")
        if len(path) > MAX_PATH:
            return 400, ("ruta demasiado larga" if console else "path too long")
        if UNSAFE_TEXT.search(path):
            return 400, (
                "la ruta tiene caracteres de control (control characters are not allowed)"
                if console
                else "path: control characters are not allowed"
            )
        if path.startswith(STATIC_PREFIX) and not _STATIC_NAME.fullmatch(
            path[len(STATIC_PREFIX) :]
        ):
            return 404, "no existe ese archivo"
        if not query:
            return None
        if len(query) > MAX_QUERY:
            return 400, ("consulta demasiado larga" if console else "query string too long")
        text = query.decode("latin-1")
        if "%" not in text and not UNSAFE_TEXT.search(text):
            return None  # nothing encoded, nothing to decode
        for pair in text.split("&"):
            name, _, value = pair.partition("=")
            for part in (name, value):
                decoded = unquote(part.replace("+", " "), errors="replace")
                if UNSAFE_TEXT.search(decoded):
                    shown = unquote(name, errors="replace")
                    shown = UNSAFE_TEXT.sub("?", shown)[:40]
                    return 400, (
                        f"parámetro {shown}: caracteres de control no admitidos "
                        "(control characters are not allowed)"
                        if console
                        else f"query parameter {shown}: control characters are not allowed"
                    )
        return None
