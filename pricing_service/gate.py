"""The sanity gate: which runs and which prices are doubtful, and what a run changes.

Pure: no I/O. The refresher asks ``run_hold_reason`` whether a fetched catalogue may be applied
at all, and ``plan_snapshot`` what applying it means: the new current prices (doubtful ones
keep their last accepted figure, missing models stay for a grace period marked unlisted), the
prices held for an operator, and the change-feed events.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from pricing_service.domain import ChangeKind, HoldReason, PriceStatus
from pricing_service.errors import SanityCheckFailed
from pricing_service.normalize import PriceIndex

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence
    from datetime import datetime

    from pricing_service.domain import ModelPrice, NormalizedCatalogue

# A run with fewer priced models than this share of the baseline's is held (a truncated or
# half-broken answer must not turn curated models unknown).
MIN_PRICED_SHARE = Decimal("0.8")
# A run with more than this many times the baseline's models is held (a duplicated or runaway
# listing must not become the baseline that every normal run is then compared with).
MAX_MODEL_GROWTH = 3
# One model's price moving by more than this factor either way is held for a person to confirm.
MAX_PRICE_RATIO = Decimal(10)
# No chat model costs this much per million tokens; a figure above it is a unit or data error.
MAX_USD_PER_MILLION = Decimal(1000)


@dataclass(frozen=True, slots=True)
class Baseline:
    """The last accepted snapshot (the seed included), as the gate compares runs with it."""

    snapshot_id: int
    source: str
    models: int  # models the upstream listed in it
    priced: int  # of those, with both prices known


@dataclass(frozen=True, slots=True)
class Doubt:
    model_id: str
    reason: HoldReason
    detail: str
    proposed: ModelPrice
    accepted: ModelPrice | None  # what stays served (None: nothing accepted yet, so unknown)


@dataclass(frozen=True, slots=True)
class Event:
    model_id: str
    kind: ChangeKind
    old: ModelPrice | None
    new: ModelPrice | None


@dataclass(frozen=True, slots=True)
class Plan:
    rows: tuple[ModelPrice, ...]  # the new current prices, listed or within their grace
    doubts: tuple[Doubt, ...]  # prices held by this plan
    events: tuple[Event, ...]
    settled: frozenset[str]  # models whose earlier held price this plan resolves
    listed: int = 0
    priced: int = 0
    dropped: tuple[str, ...] = field(default=())  # delisted past the grace: no longer served


def check_catalogue(catalogue: NormalizedCatalogue) -> None:
    """Refuse outright what no operator could accept: an empty answer or one without prices."""
    if catalogue.rows_seen == 0 or not catalogue.prices:
        raise SanityCheckFailed("upstream returned an empty model list")
    if catalogue.priced_count == 0:
        raise SanityCheckFailed(
            f"upstream returned {len(catalogue.prices)} models and not one price"
        )


def run_hold_reason(
    catalogue: NormalizedCatalogue,
    baseline: Baseline | None,
    curated_without_price: Sequence[str] = (),
) -> str | None:
    """Why the whole run must wait for an operator, or None when it may be applied."""
    if baseline is None:
        return None
    reasons = []
    floor = MIN_PRICED_SHARE * baseline.priced
    if catalogue.priced_count < floor:
        reasons.append(
            f"{catalogue.priced_count} priced models, under {MIN_PRICED_SHARE:.0%} of the "
            f"{baseline.priced} in the accepted {baseline.source} snapshot #{baseline.snapshot_id}"
        )
    if len(catalogue.prices) > MAX_MODEL_GROWTH * baseline.models:
        reasons.append(
            f"{len(catalogue.prices)} models, over {MAX_MODEL_GROWTH}x the {baseline.models} "
            f"in the accepted {baseline.source} snapshot #{baseline.snapshot_id}"
        )
    if curated_without_price:
        shown = ", ".join(curated_without_price[:10])
        reasons.append(f"curated models listed without a price: {shown}")
    return "; ".join(reasons) or None


def curated_without_price(
    curated_ids: Iterable[str],
    aliases: Mapping[str, str],
    accepted: Sequence[ModelPrice],
    proposed: Sequence[ModelPrice],
) -> list[str]:
    """Curated ids priced in the accepted prices that the run lists with an unknown price.

    A curated model the run does not list at all is not here: it is delisted and keeps its
    price for a grace period.
    """
    before = PriceIndex(accepted, aliases)
    after = PriceIndex(proposed, aliases)
    lost = []
    for model_id in dict.fromkeys(curated_ids):
        old = before.resolve(model_id)
        new = after.resolve(model_id)
        if old is None or new is None or not old.listed:
            continue
        if old.price_status is not PriceStatus.UNKNOWN and new.price_status is PriceStatus.UNKNOWN:
            lost.append(model_id)
    return lost


def price_doubt(
    proposed: ModelPrice, accepted: ModelPrice | None, free_ids: Collection[str]
) -> tuple[HoldReason, str] | None:
    """Why one proposed price must be held, or None when it may be served."""
    pairs = (
        ("input", proposed.input_usd_per_million, _old(accepted, "input")),
        ("output", proposed.output_usd_per_million, _old(accepted, "output")),
    )
    for side, new, _ in pairs:
        if new is not None and (not new.is_finite() or new > MAX_USD_PER_MILLION):
            return HoldReason.CEILING, (
                f"{side} {_fmt(new)} USD per million is above {MAX_USD_PER_MILLION}"
            )
    for side, new, old in pairs:
        if new is None or old is None or old <= 0:
            continue
        if new == 0:
            if proposed.model_id in free_ids:
                continue
            return HoldReason.ZERO, (
                f"{side} dropped from {_fmt(old)} to 0 USD per million and the catalog "
                "does not declare the model free"
            )
        ratio = new / old
        if ratio > MAX_PRICE_RATIO or ratio < 1 / MAX_PRICE_RATIO:
            return HoldReason.RATIO, (
                f"{side} moved from {_fmt(old)} to {_fmt(new)} USD per million, "
                f"more than {MAX_PRICE_RATIO}x"
            )
    return None


def plan_snapshot(
    current: Mapping[str, ModelPrice],
    proposed: Sequence[ModelPrice],
    *,
    now: datetime,
    grace_seconds: float,
    free_ids: Collection[str] = (),
    accepted_ids: Collection[str] = (),
    full_listing: bool = True,
) -> Plan:
    """What applying ``proposed`` to the ``current`` prices (by model id) produces.

    ``full_listing``: ``proposed`` is the upstream's whole listing, so a current model missing
    from it is delisted (kept, marked, for ``grace_seconds``, then dropped). False applies just
    the given prices (an operator accepting held ones). ``accepted_ids`` skip the price doubts.
    """
    rows: dict[str, ModelPrice] = {}
    doubts: list[Doubt] = []
    events: list[Event] = []
    dropped: list[str] = []
    for price in proposed:
        old = current.get(price.model_id)
        doubt = None
        if price.model_id not in accepted_ids:
            doubt = price_doubt(price, old if old is not None else None, free_ids)
        if doubt is not None:
            doubts.append(Doubt(price.model_id, doubt[0], doubt[1], price, old))
            # The last accepted price stays; with none yet, the model is served as unknown.
            kept = (
                replace(old, listed=True, delisted_at=None, held=None)
                if old is not None
                else replace(price, input_usd_per_million=None, output_usd_per_million=None)
            )
            if old is None or not old.listed:
                events.append(Event(price.model_id, ChangeKind.ADDED, None, kept))
            rows[price.model_id] = kept
            continue
        new = replace(price, listed=True, delisted_at=None, held=None)
        if old is None or not old.listed:
            events.append(Event(price.model_id, ChangeKind.ADDED, old, new))
        elif _figures(old) != _figures(new):
            events.append(Event(price.model_id, ChangeKind.CHANGED, old, new))
        rows[price.model_id] = new
    for model_id, old in current.items():
        if model_id in rows:
            continue
        if not full_listing:
            rows[model_id] = replace(old, held=None)
        elif old.listed:
            rows[model_id] = replace(old, listed=False, delisted_at=now, held=None)
            events.append(Event(model_id, ChangeKind.REMOVED, old, None))
        elif (
            old.delisted_at is not None and (now - old.delisted_at).total_seconds() > grace_seconds
        ):
            dropped.append(model_id)
        else:
            rows[model_id] = replace(old, held=None)
    if not current:
        events = []  # the first snapshot ever (usually the seed) populates: it changes nothing
    ordered = tuple(rows[k] for k in sorted(rows))
    listed = [r for r in ordered if r.listed]
    return Plan(
        rows=ordered,
        doubts=tuple(doubts),
        events=tuple(events),
        settled=frozenset(p.model_id for p in proposed)
        if full_listing
        else frozenset(accepted_ids),
        listed=len(listed),
        priced=sum(1 for r in listed if r.price_status is not PriceStatus.UNKNOWN),
        dropped=tuple(dropped),
    )


def change_pct(old: Decimal | None, new: Decimal | None) -> float | None:
    """Percentage change for the feed; None from or to nothing, from 0, or to an extreme."""
    if old is None or new is None or old <= 0 or not new.is_finite():
        return None
    ratio = new / old
    if ratio > MAX_PRICE_RATIO**3 or ratio < 1 / MAX_PRICE_RATIO**3:
        return None
    return round(float(ratio - 1) * 100, 2)


def _expired(price: ModelPrice, now: datetime, grace_seconds: float) -> bool:
    if price.delisted_at is None:
        return False
    return (now - price.delisted_at).total_seconds() > grace_seconds


def _old(price: ModelPrice | None, side: str) -> Decimal | None:
    if price is None:
        return None
    return price.input_usd_per_million if side == "input" else price.output_usd_per_million


def _figures(price: ModelPrice) -> tuple[Decimal | None, Decimal | None]:
    return price.input_usd_per_million, price.output_usd_per_million


def _fmt(value: Decimal) -> str:
    text = format(value, "f")
    return text if len(text) <= 24 else f"{value:.3e}"
