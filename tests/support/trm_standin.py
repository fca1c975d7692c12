"""A loopback stand-in for the TRM open-data endpoint (Socrata JSON rows), real HTTP.

``body`` is what the next GET answers (``status`` with it); ``stop()`` closes the port so the
source is unreachable. Every request's query is kept (``queries``) to check what was asked.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def trm_rows(valor: str, desde: str, hasta: str | None = None) -> bytes:
    row: dict[str, Any] = {
        "valor": valor,
        "unidad": "COP",
        "vigenciadesde": f"{desde}T00:00:00.000",
    }
    if hasta is not None:
        row["vigenciahasta"] = f"{hasta}T00:00:00.000"
    return json.dumps([row]).encode()


class TrmStandIn:
    def __init__(self) -> None:
        self.body = trm_rows("3912.45", "2026-12-02", "2026-12-02")
        self.status = 200
        self.queries: list[dict[str, list[str]]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.queries.append(parse_qs(urlsplit(self.path).query))
                body = stand_in.body
                self.send_response(stand_in.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.timeout = 5
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/resource/32sa-8pi3.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
