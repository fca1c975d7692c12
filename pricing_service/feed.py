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
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import msgspec

from pricing_service.currency import cop_amount, tidy_usd
from pricing_service.domain import ChangeKind
from pricing_service.errors import InvalidRequest
from pricing_service.gate import change_pct

if TYPE_CHECKING:
    from collections.abc import Sequence

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


class PriceChangeEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A price change, arrival or removal; prices in USD per million tokens (exact decimals,
    JSON numbers; null: none, or not a number)."""

    model_id: str
    kind: ChangeKind
    changed_at: str
    old_input_usd_per_million: Decimal | None
    new_input_usd_per_million: Decimal | None
    old_output_usd_per_million: Decimal | None
    new_output_usd_per_million: Decimal | None
    input_change_pct: Decimal | None  # rounded to 2 decimals (gate.change_pct)
    output_change_pct: Decimal | None
    # The same figures in COP per million tokens at the service's rate (null: unknown).
    old_input_cop_per_million: Decimal | None
    new_input_cop_per_million: Decimal | None
    old_output_cop_per_million: Decimal | None
    new_output_cop_per_million: Decimal | None


class PriceChanges(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of GET /api/v1/pricing/changes: newest first, or after a cursor oldest first."""

    items: list[PriceChangeEntry]
    next_cursor: str  # pass back as cursor= for what comes after (opaque)
    order: Literal["newest_first", "oldest_first"]
    usd_to_cop: Decimal


def _usd(value: Decimal | None) -> Decimal | None:
    # Stored prices are finite and non-negative (normalize.py); anything else is not a price.
    if value is None or not value.is_finite() or value < 0:
        return None
    return tidy_usd(value)


def _cop(value: Decimal | None, rate: Decimal) -> Decimal | None:
    usd = _usd(value)
    return None if usd is None else cop_amount(usd, rate)


def item(change: PriceChange, rate: Decimal) -> PriceChangeEntry:
    old_in, new_in = change.old_input_usd_per_million, change.new_input_usd_per_million
    old_out, new_out = change.old_output_usd_per_million, change.new_output_usd_per_million
    return PriceChangeEntry(
        model_id=change.model_id,
        kind=change.kind,
        changed_at=change.changed_at.isoformat(),
        old_input_usd_per_million=_usd(old_in),
        new_input_usd_per_million=_usd(new_in),
        old_output_usd_per_million=_usd(old_out),
        new_output_usd_per_million=_usd(new_out),
        input_change_pct=change_pct(old_in, new_in),
        output_change_pct=change_pct(old_out, new_out),
        old_input_cop_per_million=_cop(old_in, rate),
        new_input_cop_per_million=_cop(new_in, rate),
        old_output_cop_per_million=_cop(old_out, rate),
        new_output_cop_per_million=_cop(new_out, rate),
    )


def feed_body(
    changes: Sequence[PriceChange],
    rate: Decimal,
    next_cursor: int,
    order: Literal["newest_first", "oldest_first"],
) -> PriceChanges:
    return PriceChanges(
        items=[item(c, rate) for c in changes],
        next_cursor=encode_cursor(next_cursor),
        order=order,
        usd_to_cop=rate,
    )
