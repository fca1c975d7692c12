"""What /ready (and the console) says of the USD -> COP rate: pure, from a ``RateState``.

Codes: ``rate_fallback`` (trm mode, no TRM accepted yet: the fixed rate is served),
``rate_held`` (a fetched TRM moved too far, or was implausible: the last accepted one is
served until an operator accepts it), ``rate_unparsable`` (the source's last answer was no TRM
row), ``rate_unreachable`` (the last fetch failed: the last rate is kept, with its age).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pricing_service.curation import SelectorDataset
from pricing_service.domain import DegradationCode

if TYPE_CHECKING:
    from datetime import datetime

    from pricing_service.currency import Currency
    from pricing_service.domain import RateState

__all__ = ["rate_readiness"]

Problem = tuple[DegradationCode, str, dict[str, Any]]


def rate_readiness(
    state: RateState, now: datetime, local: Currency
) -> tuple[dict[str, Any], list[Problem]]:
    """/ready's ``currency`` (the served rate, its source, dates and age) and its problems."""
    current = state.current
    currency = SelectorDataset.currency_for(
        local, current.rate, current.source, current.valid_from, current.valid_to
    )
    confirmed = current.checked_at
    age = int((now - confirmed).total_seconds()) if confirmed is not None else None
    # /ready is encoded by Litestar, which writes a Decimal as a string: the rate goes out as
    # the same JSON number the selector's answers carry (a TRM has two decimals).
    currency["rate"] = float(current.rate)
    currency.update(
        mode=state.mode,
        rate_id=current.id,
        checked_at=confirmed.isoformat() if confirmed is not None else None,
        age_seconds=age,
        held=[
            {
                "id": held.id,
                "rate": float(held.rate),
                "valid_from": _day(held),
                "reason": held.reason,
            }
            for held in state.held
        ],
    )
    problems: list[Problem] = []
    if state.fallback:
        problems.append(
            (
                DegradationCode.RATE_FALLBACK,
                f"no TRM accepted yet: serving the fixed rate {current.rate} ({current.source})",
                {"rate": str(current.rate), "source": current.source},
            )
        )
    for held in state.held:
        problems.append(
            (
                DegradationCode.RATE_HELD,
                f"COP rate {held.rate} (TRM valid from {_day(held)}) held: {held.reason}; "
                f"serving {current.rate} until an operator accepts it "
                f"(pricing-service rate --accept {held.id})",
                {
                    "rate_id": held.id,
                    "rate": str(held.rate),
                    "valid_from": _day(held),
                    "detail": held.reason,
                    "served": str(current.rate),
                },
            )
        )
    if state.unparsable is not None:
        problems.append(
            (
                DegradationCode.RATE_UNPARSABLE,
                f"the TRM source's last answer could not be read ({state.unparsable}): held, "
                f"serving the last rate {current.rate}",
                {"detail": state.unparsable, "served": str(current.rate)},
            )
        )
    if state.last_error is not None:
        aged = f", last confirmed {age} s ago" if age is not None else ""
        problems.append(
            (
                DegradationCode.RATE_UNREACHABLE,
                f"TRM source unreachable ({state.last_error}): keeping the rate "
                f"{current.rate} valid from {current.valid_from or '-'}{aged}",
                {
                    "error": state.last_error,
                    "rate": str(current.rate),
                    "valid_from": current.valid_from.isoformat() if current.valid_from else None,
                    "age_seconds": age,
                },
            )
        )
    return currency, problems


def _day(rate: Any) -> str | None:
    return rate.valid_from.isoformat() if rate.valid_from is not None else None
