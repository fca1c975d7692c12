"""HEAD on every GET route: answered as the GET, with the headers and without the body."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """Runs a HEAD request as a GET and drops the body it sends.

    Litestar answers HEAD with 405 on GET routes (its ``@head`` handlers must have no body), yet
    caches and CORS preflights use HEAD to read ETag and Content-Length. The status and headers
    (Content-Length included) are the GET's, as HTTP asks; a path without a GET handler answers
    HEAD as it answers GET (404, or 405 with its Allow header).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # A copy, never the server's own scope: uvicorn reads scope["method"] when the answer
        # goes out, and on a "GET" it expects the Content-Length's bytes, logs "Response content
        # shorter than Content-Length" and drops the keep-alive connection. The "state" dict is
        # shared by reference, and the route template the router sets is copied back below for
        # the outer observer (which read the method, HEAD, before calling in).
        inner: Scope = {**scope, "method": "GET"}

        async def head_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # swallow the chunks; the last one closes the response
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        try:
            await self.app(inner, receive, head_send)
        finally:
            template = inner.get("path_template")
            if template is not None:
                scope["path_template"] = template
