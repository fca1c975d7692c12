"""What every handler may ask of a request: its client, its id, a body that cannot crash us."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException

from pricing_service.api.middleware import DISCONNECTED_KEY, REQUEST_ID_KEY, client_of_scope


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
