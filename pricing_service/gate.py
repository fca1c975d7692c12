"""The sanity gate: which runs and which prices are doubtful, and what a run changes.

Pure: no I/O. The refresher asks ``run_hold_reason`` whether a fetched listing may be applied
at all, and ``plan_snapshot`` what applying it means: the new current prices (doubtful ones
keep their last accepted figure, missing models stay for a grace period marked unlisted), the
prices held for an operator, and the change-feed events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from pricing_service.domain import (
    ChangeKind,
    CrossSourceEntry,
    CrossSourceReport,
    HoldReason,
    PriceBasis,
    PriceDecision,
    PriceKind,
    PriceStatus,
    SecondPrice,
)
from pricing_service.errors import SanityCheckFailed
from pricing_service.normalize import PriceIndex
from pricing_service.sources import is_author_source

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence
    from datetime import datetime

    from pricing_service.domain import ModelPrice, NormalizedListing

# A run with fewer priced models than this share of the baseline's is held (a truncated or
# half-broken answer must not turn curated models unknown).
MIN_PRICED_SHARE = Decimal("0.8")
# A run with more than this many times the baseline's models is held (a duplicated or runaway
# listing must not become the baseline that every normal run is then compared with).
MAX_MODEL_GROWTH = 3
# One model's price moving by more than this factor either way is held for a person to confirm.
MAX_PRICE_RATIO = Decimal(10)
_PCT_PLACES = Decimal("0.01")
_ONE = Decimal(1)
# No chat model costs this much per million tokens (nor per 1,000 calls: a web search is 10 to
# 35 USD per 1,000); a figure above it is a unit or data error.
MAX_USD_PER_MILLION = Decimal(1000)
# The author's own price, contradicted by the second source by more than this factor either way
# on either price, is held (an order of magnitude: the selector would show it far off).
SECOND_SOURCE_MAX_RATIO = Decimal(3)
# Within this share either way the two sources agree; beyond it the difference is reported.
SECOND_SOURCE_TOLERANCE = Decimal("0.05")
# A run in which get_model failed for more than this share of its models is held as a whole:
# one failure is a model's glitch (that model is held), many are the upstream's (a lost
# session, an outage), and an operator should look before the run is applied.
MAX_DETAIL_FAILED_SHARE = Decimal("0.05")
# A get_model failure quoted in a hold's detail is cut to this many characters.
DETAIL_ERROR_CHARS = 200

# Figures an operator accepted against the second source: (input, output) by model id.
Figures = tuple[Decimal | None, Decimal | None]
# The last accepted non-null price of each kind, by model id: what every check compares with,
# so a run that lists a model without a price (null) erases nothing.
Baselines = Mapping[str, Mapping[PriceKind, Decimal]]


@dataclass(frozen=True, slots=True)
class Baseline:
    """The last accepted snapshot (the seed included), as the gate compares runs with it."""

    snapshot_id: int
    source: str  # the listing source that fetched it, or "seed"
    models: int  # models the upstream listed in it
    priced: int  # of those, with both prices known


@dataclass(frozen=True, slots=True)
class Doubt:
    model_id: str
    reason: HoldReason
    detail: str
    proposed: ModelPrice
    accepted: ModelPrice | None  # what stays served (None: nothing accepted yet, so unknown)
    second: SecondPrice | None = None  # the second source's figures, for SECOND_SOURCE holds


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
    accepted: frozenset[str] = frozenset()  # models an operator accepted a held price of
    # Models served at their baseline figures again (an earlier hold of theirs is "returned").
    at_baseline: frozenset[str] = frozenset()


def check_listing(listing: NormalizedListing) -> None:
    """Refuse outright what no operator could accept: an empty answer or one without prices."""
    if listing.rows_seen == 0 or not listing.prices:
        raise SanityCheckFailed("upstream returned an empty model list")
    if listing.priced_count == 0:
        raise SanityCheckFailed(f"upstream returned {len(listing.prices)} models and not one price")


def run_hold_reason(
    listing: NormalizedListing,
    baseline: Baseline | None,
    curated_without_price: Sequence[str] = (),
) -> str | None:
    """Why the whole run must wait for an operator, or None when it may be applied."""
    reasons = []
    failed = len(listing.detail_failed)
    if failed and failed > MAX_DETAIL_FAILED_SHARE * len(listing.prices):
        shown = ", ".join(sorted(listing.detail_failed)[:10])
        reasons.append(
            f"get_model failed for {failed} of {len(listing.prices)} models, over "
            f"{MAX_DETAIL_FAILED_SHARE:.0%} (first: {shown})"
        )
    if baseline is None:
        return "; ".join(reasons) or None
    floor = MIN_PRICED_SHARE * baseline.priced
    if listing.priced_count < floor:
        reasons.append(
            f"{listing.priced_count} priced models, under {MIN_PRICED_SHARE:.0%} of the "
            f"{baseline.priced} in the accepted {baseline.source} snapshot #{baseline.snapshot_id}"
        )
    if len(listing.prices) > MAX_MODEL_GROWTH * baseline.models:
        reasons.append(
            f"{len(listing.prices)} models, over {MAX_MODEL_GROWTH}x the {baseline.models} "
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
    proposed: ModelPrice,
    accepted: ModelPrice | None,
    free_ids: Collection[str],
    second: SecondPrice | None = None,
    vouched: Figures | None = None,
    *,
    baseline: Mapping[PriceKind, Decimal] | None = None,
    detail_error: str | None = None,
) -> tuple[HoldReason, str] | None:
    """Why one proposed price must be held, or None when it may be served.

    ``accepted``: the model's current row; ``baseline``: its last accepted non-null price of
    each kind (what the zero, ratio and ceiling checks compare with, every kind alike; the
    current row's known figures fill what it lacks). ``detail_error``: why get_model failed for
    it this run. ``second``: the second source's figures for the model; ``vouched``: the
    figures an operator already accepted against it (not held again while the upstream keeps
    stating them).
    """
    if detail_error is not None and not _never_detailed(accepted):
        listed = ", ".join(f"{k} {_fmt(v)}" for k, v in proposed.figures().items()) or "none"
        return HoldReason.DETAIL_UNAVAILABLE, (
            f"get_model failed this run ({detail_error[:DETAIL_ERROR_CHARS]}); the list price "
            f"({listed} USD per million), often a cheaper host's, is not served in its place"
        )
    base = {**(accepted.figures() if accepted is not None else {}), **(baseline or {})}
    for kind in PriceKind:
        new = proposed.figure(kind)
        if new is None or new == base.get(kind):  # an accepted figure is not refused again
            continue
        if not new.is_finite() or new > MAX_USD_PER_MILLION:
            return HoldReason.CEILING, (
                f"{kind} {_fmt(new)} {kind.unit} is above {MAX_USD_PER_MILLION}"
            )
    for kind in PriceKind:
        new, old = proposed.figure(kind), base.get(kind)
        if new is None or old is None or old <= 0:
            continue
        if new == 0:
            if proposed.model_id in free_ids:
                continue
            return HoldReason.ZERO, (
                f"{kind} dropped from {_fmt(old)} to 0 {kind.unit} and the catalog "
                "does not declare the model free"
            )
        ratio = new / old
        if ratio > MAX_PRICE_RATIO or ratio < 1 / MAX_PRICE_RATIO:
            return HoldReason.RATIO, (
                f"{kind} moved from {_fmt(old)} to {_fmt(new)} {kind.unit}, "
                f"more than {MAX_PRICE_RATIO}x"
            )
    if vouched is None or vouched != _figures(proposed):
        contradiction = second_source_contradiction(proposed, second, free_ids)
        if contradiction is not None:
            return HoldReason.SECOND_SOURCE, contradiction
    return None


def second_source_contradiction(
    price: ModelPrice, second: SecondPrice | None, free_ids: Collection[str] = ()
) -> str | None:
    """Why the second source contradicts ``price`` by an order of magnitude, or None.

    Only the author's own price is checked: a host's price may legitimately differ from the
    author's (it is reported, not held). A side where either source knows no figure is skipped;
    a positive figure against a 0, or a 0 against a positive one (a model the catalog does not
    declare free), counts as a contradiction.
    """
    if second is None or not is_author_source(price.provider, price.pricing_source):
        return None
    pairs = (
        ("input", price.input_usd_per_million, second.input_usd_per_million),
        ("output", price.output_usd_per_million, second.output_usd_per_million),
    )
    for side, ours, theirs in pairs:
        if ours is None or theirs is None or (ours == 0 and theirs == 0):
            continue
        if ours == 0 and price.model_id in free_ids:
            continue
        ratio = None if ours == 0 or theirs == 0 else ours / theirs
        if ratio is None or ratio > SECOND_SOURCE_MAX_RATIO or ratio < 1 / SECOND_SOURCE_MAX_RATIO:
            return (
                f"{side} {_fmt(ours)} USD per million from {price.pricing_source}, the author; "
                f"{second.source} says {_fmt(theirs)}, more than {SECOND_SOURCE_MAX_RATIO}x apart"
            )
    return None


def cross_source_report(
    prices: Sequence[ModelPrice],
    second_prices: Mapping[str, SecondPrice],
    *,
    version: str,
    held_ids: Collection[str] = (),
) -> CrossSourceReport:
    """Every priced model compared with the second source; the disagreements, largest first.

    A model both sources price agrees when both figures are within SECOND_SOURCE_TOLERANCE;
    uncovered: we price it, the second source does not know it. Unknown prices are left out.
    """
    agree = disagree = uncovered = 0
    entries: list[CrossSourceEntry] = []
    for price in prices:
        if price.price_status is PriceStatus.UNKNOWN:
            continue
        second = second_prices.get(price.model_id)
        if second is None:
            uncovered += 1
            continue
        factor, differs = _difference(price, second)
        if factor is None and not differs:
            uncovered += 1  # the second source knows the model but neither of its figures
            continue
        if not differs:
            agree += 1
            continue
        disagree += 1
        entries.append(
            CrossSourceEntry(
                model_id=price.model_id,
                provider=price.provider,
                pricing_source=price.pricing_source,
                pricing_source_is_author=is_author_source(price.provider, price.pricing_source),
                input_usd_per_million=price.input_usd_per_million,
                output_usd_per_million=price.output_usd_per_million,
                second_input_usd_per_million=second.input_usd_per_million,
                second_output_usd_per_million=second.output_usd_per_million,
                second_source=second.source,
                factor=factor,
                held=price.model_id in held_ids,
            )
        )
    infinite = Decimal("Infinity")
    entries.sort(key=lambda e: (-(e.factor if e.factor is not None else infinite), e.model_id))
    return CrossSourceReport(
        version=version,
        agree=agree,
        disagree=disagree,
        uncovered=uncovered,
        disagreements=tuple(entries),
    )


def _difference(price: ModelPrice, second: SecondPrice) -> tuple[Decimal | None, bool]:
    """(the larger side's ratio >= 1, or None when not computable; whether they disagree)."""
    factor: Decimal | None = None
    compared = False
    differs = False
    pairs = (
        (price.input_usd_per_million, second.input_usd_per_million),
        (price.output_usd_per_million, second.output_usd_per_million),
    )
    for ours, theirs in pairs:
        if ours is None or theirs is None:
            continue
        compared = True
        if ours == 0 or theirs == 0:
            if ours != theirs:
                differs = True
                factor = None if factor is None else factor
            continue
        ratio = ours / theirs if ours >= theirs else theirs / ours
        if ratio > 1 + SECOND_SOURCE_TOLERANCE:
            differs = True
        factor = ratio if factor is None else max(factor, ratio)
    if not compared:
        return None, False
    if factor is None:
        factor = Decimal(1)
    return factor, differs


def plan_snapshot(
    current: Mapping[str, ModelPrice],
    proposed: Sequence[ModelPrice],
    *,
    now: datetime,
    grace_seconds: float,
    free_ids: Collection[str] = (),
    accepted_ids: Collection[str] = (),
    full_listing: bool = True,
    second_prices: Mapping[str, SecondPrice] | None = None,
    vouched: Mapping[str, Figures] | None = None,
    baselines: Baselines | None = None,
    detail_failed: Mapping[str, str] | None = None,
    decisions: Mapping[str, PriceDecision] | None = None,
) -> Plan:
    """What applying ``proposed`` to the ``current`` prices (by model id) produces.

    ``full_listing``: ``proposed`` is the upstream's whole listing, so a current model missing
    from it is delisted (kept, marked, for ``grace_seconds``, then dropped). False applies just
    the given prices (an operator accepting held ones). ``accepted_ids`` skip the price doubts.
    ``second_prices``: the second source's figures by model id; ``vouched``: figures operators
    accepted against them; ``baselines``: the last accepted non-null figures by model id;
    ``detail_failed``: models whose get_model failed this run (see ``price_doubt``);
    ``decisions``: operators' decisions from the catalog: a model the upstream prices exactly as
    a decision was taken against is served at the decided figure, not held.
    """
    second_prices = second_prices or {}
    vouched = vouched or {}
    baselines = baselines or {}
    detail_failed = detail_failed or {}
    decisions = decisions or {}
    rows: dict[str, ModelPrice] = {}
    doubts: list[Doubt] = []
    events: list[Event] = []
    dropped: list[str] = []
    at_baseline: set[str] = set()
    for price in proposed:
        old = current.get(price.model_id)
        doubt = None
        second = second_prices.get(price.model_id)
        decision = decisions.get(price.model_id)
        decided = decision is not None and decision.applies_to(price)
        if decided and decision is not None:
            price = decided_price(price, decision, second)
        if price.model_id not in accepted_ids and not decided:
            doubt = price_doubt(
                price,
                old,
                free_ids,
                second=second,
                vouched=vouched.get(price.model_id),
                baseline=baselines.get(price.model_id),
                detail_error=detail_failed.get(price.model_id),
            )
        if doubt is not None:
            served = old
            if (
                old is not None
                and doubt[0] is HoldReason.SECOND_SOURCE
                and vouched.get(price.model_id) != _figures(old)
                and second_source_contradiction(
                    replace(old, pricing_source=old.pricing_source or price.pricing_source),
                    second,
                    free_ids,
                )
                is not None
            ):
                served = None  # the figure served so far is the contradicted one: not any more
            doubts.append(Doubt(price.model_id, doubt[0], doubt[1], price, served, second))
            # The last accepted price stays; with none yet, the model is served as unknown.
            kept = (
                replace(served, listed=True, delisted_at=None, held=None)
                if served is not None
                else price.without_prices()
            )
            if old is None or not old.listed:
                events.append(Event(price.model_id, ChangeKind.ADDED, None, kept))
            elif _figures(old) != _figures(kept):
                events.append(Event(price.model_id, ChangeKind.CHANGED, old, kept))
            rows[price.model_id] = kept
            continue
        new = replace(price, listed=True, delisted_at=None, held=None)
        base = baselines.get(price.model_id) or (old.figures() if old is not None else {})
        if new.price_status is not PriceStatus.UNKNOWN and all(
            base.get(kind) == value for kind, value in new.figures().items()
        ):
            at_baseline.add(price.model_id)
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
    # What the upstream lists: the second source's fills (models it does not list) are served
    # but not counted, so a run's counts, and the baseline the next run is compared with, are
    # the upstream's alone (a truncated listing cannot hide behind them).
    listed = [r for r in ordered if r.listed and r.price_basis is not PriceBasis.SECOND_SOURCE]
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
        accepted=frozenset(accepted_ids),
        at_baseline=frozenset(at_baseline),
    )


def decided_price(
    price: ModelPrice, decision: PriceDecision, second: SecondPrice | None
) -> ModelPrice:
    """``price`` at the figure an operator decided on (the second source's, named as its)."""
    if decision.figure == "proposed":
        return price
    return replace(
        price,
        input_usd_per_million=decision.input_usd_per_million,
        output_usd_per_million=decision.output_usd_per_million,
        pricing_source=second.source if second is not None else "genai-prices",
    )


def change_pct(old: Decimal | None, new: Decimal | None) -> Decimal | None:
    """Percentage change for the feed, to 2 decimals (half-even, no trailing zeros: ``-25``,
    ``-16.67``); None from or to nothing, from 0, or to an extreme."""
    if old is None or new is None or old <= 0 or not new.is_finite():
        return None
    ratio = new / old
    if ratio > MAX_PRICE_RATIO**3 or ratio < 1 / MAX_PRICE_RATIO**3:
        return None
    pct = ((ratio - 1) * 100).quantize(_PCT_PLACES, rounding=ROUND_HALF_EVEN)
    if pct == 0:
        return Decimal(0)  # not -0
    return pct.quantize(_ONE) if pct == pct.to_integral_value() else pct.normalize()


def _expired(price: ModelPrice, now: datetime, grace_seconds: float) -> bool:
    if price.delisted_at is None:
        return False
    return (now - price.delisted_at).total_seconds() > grace_seconds


def _never_detailed(accepted: ModelPrice | None) -> bool:
    """The served price is already the list figure (get_model has no record of the model, or
    its detail never completed the price), so this run's list figure is no stand-in."""
    return accepted is not None and accepted.price_basis is PriceBasis.LIST


def _figures(price: ModelPrice) -> tuple[Decimal | None, Decimal | None]:
    return price.input_usd_per_million, price.output_usd_per_million


def _fmt(value: Decimal) -> str:
    text = format(value, "f")
    return text if len(text) <= 24 else f"{value:.3e}"
