"""The selector's query parameters, parsed: bounds and 400 messages in one place.

Used by the full routes (``api/pricing.py``) and the hot path (``api/fast.py``), so both read a
query the same way; the service receives parsed values.
"""

from __future__ import annotations

from pricing_service.curation import VIEWS
from pricing_service.domain import View
from pricing_service.errors import InvalidRequest
from pricing_service.replies import ViewKey

MAX_IDS = 100
MAX_IDS_LENGTH = 4000
# The /models parameters the hot path answers from memory (``ids=`` always takes the full route).
VIEW_PARAMS = frozenset({"view", "category", "local"})


def parse_view(value: str) -> str:
    if value not in VIEWS:
        raise InvalidRequest(f"view must be one of {', '.join(VIEWS)}, not {value!r}")
    return value


def parse_local(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"local must be true or false, not {value!r}")


def parse_ids(value: str | None) -> list[str] | None:
    if value is None:
        return None
    if len(value) > MAX_IDS_LENGTH:
        raise InvalidRequest(f"ids is too long: at most {MAX_IDS_LENGTH} characters")
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not ids:
        raise InvalidRequest("ids is empty: give one or more comma-separated model ids")
    if len(ids) > MAX_IDS:
        raise InvalidRequest(f"too many ids: at most {MAX_IDS}, got {len(ids)}")
    return ids


def view_key(params: dict[str, str]) -> ViewKey | None:
    """The rendered view a /models query names, or None when only the full route can answer
    (an ``ids=`` lookup, an unknown parameter, a bad ``local``): the hot path's key."""
    if "ids" in params or not params.keys() <= VIEW_PARAMS:
        return None
    try:
        local_flag = parse_local(params.get("local"))
    except InvalidRequest:
        return None
    return (params.get("view", View.CURATED.value), params.get("category"), local_flag)
