"""Property tests across modules: normalize -> curation -> rendered bytes, ETag and gzip.

test_normalize.py already covers order-freedom, repeats and null-stays-null for one row;
test_currency.py covers usd_to_cop against Fraction arithmetic. These extend them to what the
selector receives: the encoded body, its ETag and its gzip twin.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from pricing_service.curation import SelectorDataset
from pricing_service.currency import COP, MAX_PLACES, TYPICAL_INPUT_TOKENS, TYPICAL_OUTPUT_TOKENS
from pricing_service.domain import ModelPrice, PriceStatus, SnapshotInfo, SnapshotSource
from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.normalize import canonical_provider
from pricing_service.replies import render
from tests.support.recording import CATALOG, DETAILS, ROWS, normalized_recording

PRICES = normalized_recording().prices
FETCHED_AT = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)
TTL = 12 * 3600

COP_KEYS = (
    "input_cop_per_million",
    "output_cop_per_million",
    "input_cop_per_10k",
    "output_cop_per_10k",
    "typical_message_cop",
    "input_cop_per_10k_display",
    "output_cop_per_10k_display",
    "typical_message_cop_display",
)

rates = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal(100_000), places=2, allow_nan=False
)


def _dataset(prices: list[ModelPrice], rate: Decimal) -> SelectorDataset:
    return SelectorDataset(
        snapshot=SnapshotInfo(
            id=1,
            fetched_at=FETCHED_AT,
            source=SnapshotSource.PRICEPERTOKEN,
            model_count=len(prices),
        ),
        prices=prices,
        catalog=CATALOG,
        rate=rate,
        rate_source="fixed: test",
        currency=COP,
    )


def _decoded(body: bytes) -> Any:
    return json.loads(body, parse_float=Decimal)


def _settled(exact: Fraction) -> Fraction:
    """currency.py's numeric rule: exact up to 6 decimal places; beyond, half-even to 6 places,
    and a positive amount that would become 0 is 0.000001 instead (a priced model never looks
    free)."""
    scale = 10**MAX_PLACES
    if (exact * scale).denominator == 1:
        return exact
    settled = Fraction(round(exact * scale), scale)  # round() on a Fraction is half-even
    if settled == 0 and exact > 0:
        return Fraction(1, scale)
    return settled


# -- normalization --------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(rows=st.lists(st.sampled_from(ROWS), min_size=1, max_size=60))
def test_normalizing_the_winning_rows_again_changes_nothing(rows: list[dict[str, Any]]) -> None:
    first = normalize_listing(rows, DETAILS)
    winners = list(first.raw_by_model_id.values())
    again = normalize_listing(
        [w["row"] for w in winners],
        {w["row"]["slug"]: w["detail"] for w in winners if w["detail"] is not None},
    )
    assert again.prices == first.prices
    assert again.raw_by_model_id == first.raw_by_model_id


AUTHORS = sorted(
    {str(r.get("author")) for r in ROWS if r.get("author")}
    | {str(r.get("author_name")) for r in ROWS if r.get("author_name")}
)


@given(author=st.one_of(st.sampled_from(AUTHORS), st.text(max_size=20)))
def test_canonical_provider_is_idempotent(author: str) -> None:
    once = canonical_provider(author)
    assert canonical_provider(once) == once


# -- null stays null, COP is exact, all the way into the encoded body ----------------------

_BLANKS = st.sampled_from(["none", "input", "output", "both"])


@settings(max_examples=30, deadline=None)
@given(
    picks=st.lists(
        st.tuples(st.sampled_from(PRICES), _BLANKS),
        min_size=1,
        max_size=25,
        unique_by=lambda p: p[0],
    ),
    rate=rates,
)
# The cheapest recorded model at the smallest rate: every COP figure is far below 0.0000005 and
# settles to 0.000001, not to 0 and not to the nearest 6-place figure.
@example(
    picks=[(next(p for p in PRICES if p.model_id == "lfm2-24b-a2b-preview"), "none")],
    rate=Decimal("0.01"),
)
def test_rendered_body_keeps_null_as_null_and_cop_exact(
    picks: list[tuple[ModelPrice, str]], rate: Decimal
) -> None:
    prices = [
        dataclasses.replace(
            price,
            input_usd_per_million=None
            if blank in ("input", "both")
            else price.input_usd_per_million,
            output_usd_per_million=None
            if blank in ("output", "both")
            else price.output_usd_per_million,
        )
        for price, blank in picks
    ]
    dataset = _dataset(prices, rate)
    body = _decoded(
        render(dataset.render(view="all", now=FETCHED_AT, ttl_seconds=TTL), compress=False).body
    )
    by_slug = {i["slug"]: i for i in body["items"] if i["slug"] is not None}
    assert set(by_slug) == {p.slug for p in prices}
    assert body["currency"]["rate"] == rate
    for price in prices:
        item = by_slug[price.slug]
        usd_in, usd_out = price.input_usd_per_million, price.output_usd_per_million
        if usd_in is None or usd_out is None:
            assert item["price_status"] == PriceStatus.UNKNOWN.value
            assert item["input_usd_per_million"] is None
            assert item["output_usd_per_million"] is None
            assert all(item[key] is None for key in COP_KEYS), item
            continue
        assert item["price_status"] == price.price_status.value
        assert item["input_usd_per_million"] == usd_in
        assert item["output_usd_per_million"] == usd_out
        r = Fraction(rate)
        exact = {
            "input_cop_per_million": Fraction(usd_in) * r,
            "output_cop_per_million": Fraction(usd_out) * r,
            "input_cop_per_10k": Fraction(usd_in) * r / 100,
            "output_cop_per_10k": Fraction(usd_out) * r / 100,
            "typical_message_cop": (
                Fraction(usd_in) * TYPICAL_INPUT_TOKENS + Fraction(usd_out) * TYPICAL_OUTPUT_TOKENS
            )
            * r
            / 1_000_000,
        }
        # Exact wherever the exact figure has at most 6 places (per million, usually), settled
        # by the rule elsewhere: 0.00012 USD x 0.01 COP/USD is 0.0000012, shown as 0.000001.
        for key, value in exact.items():
            assert Fraction(Decimal(str(item[key]))) == _settled(value), (key, item[key], value)


# -- ETag and gzip --------------------------------------------------------------------------


def test_both_encodings_tag_one_body_and_gzip_is_deterministic() -> None:
    payload = {"items": [{"model_id": "gpt-4o", "price": Decimal("2.5")}], "note": "ñ"}
    plain, zipped = render(payload, compress=False), render(payload, compress=True)
    assert zipped.etag == plain.etag  # one body, one hash; the gzip bytes get their own tag
    assert zipped.gzip_etag == plain.etag[:-1] + '-gz"' != plain.etag
    assert plain.gzip is None
    assert zipped.gzip is not None
    assert gzip.decompress(zipped.gzip) == zipped.body == plain.body
    # Same bytes every time (mtime=0): a re-render for the same body cannot split caches.
    assert render(payload, compress=True).gzip == zipped.gzip
    other = render({**payload, "note": "n"}, compress=False)
    assert other.etag != plain.etag


FULL = _dataset(list(PRICES), Decimal(4000))


@settings(max_examples=30, deadline=None)
@given(
    view=st.sampled_from(["curated", "all"]),
    seconds=st.tuples(
        st.integers(min_value=0, max_value=3 * TTL), st.integers(min_value=0, max_value=3 * TTL)
    ),
)
def test_views_share_an_etag_exactly_when_their_bytes_match(
    view: str, seconds: tuple[int, int]
) -> None:
    first, second = (
        render(
            FULL.render(view=view, now=FETCHED_AT + timedelta(seconds=s), ttl_seconds=TTL),
            compress=True,
        )
        for s in seconds
    )
    assume(first.gzip is not None and second.gzip is not None)
    # The body holds no age: the bytes change only when the snapshot turns stale (at the TTL).
    same_staleness = (seconds[0] > TTL) == (seconds[1] > TTL)
    assert (first.etag == second.etag) == (first.body == second.body) == same_staleness
    assert gzip.decompress(first.gzip or b"") == first.body
