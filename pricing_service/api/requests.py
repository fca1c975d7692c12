"""What every handler may ask of a request: its client, its id, a body that cannot crash us,
its query parameters checked against the route's, its conditional headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from litestar import Request
from litestar.exceptions import ClientException

from pricing_service.api.middleware import DISCONNECTED_KEY, REQUEST_ID_KEY, client_of_scope
from pricing_service.errors import InvalidRequest
from pricing_service.replies import accepts_gzip


def _state(request: Request[Any, Any, Any]) -> dict[str, Any]:
    state = request.scope.get("state")
    return state if isinstance(state, dict) else {}


def client_of(request: Request[Any, Any, Any]) -> str:
    """The address rate limits count by (``client_of_scope``)."""
    return client_of_scope(request.scope)


def request_id_of(request: Request[Any, Any, Any]) -> str | None:
    value = _state(request).get(REQUEST_ID_KEY)
    return value if isinstance(value, str) else None


def client_went_away(request: Request[Any, Any, Any]) -> bool:
    return bool(_state(request).get(DISCONNECTED_KEY))


class PricingRequest(Request[Any, Any, Any]):
    """Litestar's request, with JSON bodies that are a client's problem answered as 400.

    msgspec raises RecursionError on deeply nested JSON and UnicodeDecodeError on invalid
    UTF-8; Litestar lets both through as 500s.
    """

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise ClientException("request body: JSON nested too deeply") from None
        except UnicodeDecodeError:
            raise ClientException("request body: not valid UTF-8") from None


def reject_unknown_params(request: Request[Any, Any, Any], allowed: frozenset[str]) -> None:
    """400 naming every query parameter the route does not take (a typo must not be ignored)."""
    query = request.scope.get("query_string", b"")
    if not query:
        return
    names = {name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)}
    unknown = sorted(names - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "none"
        raise InvalidRequest(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''}: "
            f"{', '.join(unknown)} (this route takes: {takes})"
        )


def conditional_headers(request: Request[Any, Any, Any]) -> tuple[bool, str | None]:
    """Whether the client accepts gzip (q-values honoured), and its If-None-Match."""
    accept_encoding = b""
    if_none_match: str | None = None
    for name, value in request.scope["headers"]:
        if name == b"accept-encoding":
            accept_encoding = value
        elif name == b"if-none-match":
            if_none_match = value.decode("latin-1")
    return accepts_gzip(accept_encoding), if_none_match
