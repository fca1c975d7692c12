"""GET /api/v1/pricing/changes as a feed: the items (USD and COP), the opaque cursor (pure).

A cursor names a position in the change feed (after the change with that id). Without one, the
newest changes come first as before and ``next_cursor`` is the newest change the feed held when
it answered; with one, the changes after it come oldest first, at most ``limit``, and
``next_cursor`` is the last one returned (the same cursor when nothing is new). A client that
keeps passing ``next_cursor`` back sees every change once, in order. ``cursor=`` (empty) starts
at the beginning. Change ids follow the order snapshots were stored in (one at a time, under
the refresh lease).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from pricing_service.currency import cop_amount
from pricing_service.errors import InvalidRequest
from pricing_service.gate import change_pct

if TYPE_CHECKING:
    from collections.abc import Sequence
    from decimal import Decimal

    from pricing_service.domain import PriceChange

_PREFIX = "c1."
MAX_CURSOR_LENGTH = 64


def encode_cursor(change_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{change_id}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    """The change id a cursor names; 0 for the empty cursor (the beginning)."""
    text = text.strip()
    if not text:
        return 0
    problem = InvalidRequest(
        "cursor is not one this service gave: pass next_cursor back as it came, "
        "or an empty cursor= to start at the beginning"
    )
    if len(text) > MAX_CURSOR_LENGTH:
        raise problem
    try:
        plain = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise problem from None
    number = plain.removeprefix(_PREFIX)
    if plain == number or not number.isdigit() or len(number) > 12:
        raise problem
    return int(number)


def _number(value: Decimal | None) -> float | None:
    # A JSON number, as every price of the service (prices carry a handful of digits).
    return None if value is None or not value.is_finite() else float(value)


def _cop(value: Decimal | None, rate: Decimal) -> float | None:
    if value is None or not value.is_finite() or value < 0:
        return None
    return float(cop_amount(value, rate))


def item(change: PriceChange, rate: Decimal) -> dict[str, Any]:
    old_in, new_in = change.old_input_usd_per_million, change.new_input_usd_per_million
    old_out, new_out = change.old_output_usd_per_million, change.new_output_usd_per_million
    return {
        "model_id": change.model_id,
        "kind": change.kind.value,
        "changed_at": change.changed_at.isoformat(),
        "old_input_usd_per_million": _number(old_in),
        "new_input_usd_per_million": _number(new_in),
        "old_output_usd_per_million": _number(old_out),
        "new_output_usd_per_million": _number(new_out),
        "input_change_pct": change_pct(old_in, new_in),
        "output_change_pct": change_pct(old_out, new_out),
        "old_input_cop_per_million": _cop(old_in, rate),
        "new_input_cop_per_million": _cop(new_in, rate),
        "old_output_cop_per_million": _cop(old_out, rate),
        "new_output_cop_per_million": _cop(new_out, rate),
    }


def feed_body(
    changes: Sequence[PriceChange], rate: Decimal, next_cursor: int, order: str
) -> dict[str, Any]:
    return {
        "items": [item(c, rate) for c in changes],
        "next_cursor": encode_cursor(next_cursor),
        "order": order,
        "usd_to_cop": _number(rate),
    }
