"""Pure pieces behind the client endpoints: q-values, the bounded unknown-id counts, one call's
cost, the catalog's aliases against the recorded upstream, the Space's tier fit."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pricing_service.catalog import load_catalog, parameters_billions
from pricing_service.currency import COP, call_cost
from pricing_service.normalize import PriceIndex
from pricing_service.replies import accepts_gzip, etag_matches
from pricing_service.space import fits
from pricing_service.unknown_ids import UNKNOWN_OTHER, UnknownIds
from tests.support.recorded_service import recorded_listing
from tests.support.recording import CATALOG_DIR

CATALOG = load_catalog(Path(CATALOG_DIR))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        (b"", False),
        (b"gzip", True),
        (b"GZIP", True),
        (b"x-gzip", True),
        (b"gzip;q=0", False),
        (b"gzip ; q=0.0", False),
        (b"gzip;q=0.001", True),
        (b"deflate, gzip;q=1.0, br", True),
        (b"*", True),
        (b"*;q=0", False),
        (b"*, gzip;q=0", False),
        (b"gzip;q=0, *", False),
        (b"identity", False),
        (b"br", False),
        (b"gzip;q=2", False),
        (b"gzip;q=", False),
        ("gzip, deflate", True),
    ],
)
def test_accepts_gzip(header: bytes | str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


ETAG = '"9746d8bc38ceff9dd39c569948051d1d"'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        (ETAG, True),  # the common case, compared as is
        (f"W/{ETAG}", True),
        (f'"other", {ETAG}', True),
        (f" {ETAG} ", True),
        ("*", True),
        ('"other"', False),
        (ETAG[:-1], False),
        (ETAG[:-1] + '-gz"', False),  # the gzip representation's tag is another tag
    ],
)
def test_etag_matches(header: str | None, expected: bool) -> None:
    assert etag_matches(header, ETAG) is expected


def test_unknown_ids_stay_bounded() -> None:
    counts = UnknownIds(max_ids=2)
    assert counts.add("a") == "a"
    assert counts.add("b") == "b"
    assert counts.add("a") == "a"
    assert counts.add("c") == UNKNOWN_OTHER
    assert counts.add("d") == UNKNOWN_OTHER
    assert counts.snapshot() == {"a": 2, "b": 1, UNKNOWN_OTHER: 2}
    assert counts.add("x" * 1000) == UNKNOWN_OTHER


def test_unknown_ids_cut_long_ids() -> None:
    counts = UnknownIds()
    assert counts.add("x" * 1000) == "x" * 200


def test_call_cost_is_exact_and_never_rounds_usd() -> None:
    cost = call_cost(1234, 567, Decimal(3), Decimal(15), Decimal(4000), COP)
    assert (cost.input_usd, cost.output_usd, cost.total_usd) == (
        Decimal("0.003702"),
        Decimal("0.008505"),
        Decimal("0.012207"),
    )
    assert cost.total_cop == Decimal("48.828")
    assert cost.total_cop_display == "48,83 COP"
    tiny = call_cost(1, 0, Decimal("0.02"), Decimal(0), Decimal(4000), COP)
    assert tiny.total_usd == Decimal("0.00000002")
    assert tiny.total_cop == Decimal("0.00008")
    # 1 token at 0.0001 USD/M x 1 COP: 1e-10 COP, settled to the smallest positive step.
    assert call_cost(1, 0, Decimal("0.0001"), Decimal(0), Decimal(1), COP).total_cop == Decimal(
        "0.000001"
    )
    assert call_cost(0, 0, Decimal(3), Decimal(15), Decimal(4000), COP).total_cop == 0


@pytest.mark.parametrize("tokens", [-1, True])
def test_call_cost_refuses_bad_tokens(tokens: int) -> None:
    with pytest.raises((ValueError, TypeError)):
        call_cost(tokens, 0, Decimal(1), Decimal(1), Decimal(4000), COP)


@pytest.mark.parametrize("alias", sorted(CATALOG.aliases))
def test_every_alias_prices_a_recorded_model(alias: str) -> None:
    index = PriceIndex(recorded_listing().prices, CATALOG.aliases)
    price = index.resolve(alias)
    assert price is not None, f"{alias} -> {CATALOG.aliases[alias]} is not in the recording"
    assert price.input_usd_per_million is not None
    assert price.output_usd_per_million is not None
    # The provider-prefixed spelling resolves to the same model, another provider's does not.
    assert index.resolve(f"{price.provider}/{alias}") is price
    other = "openai" if price.provider != "openai" else "anthropic"
    assert index.resolve(f"{other}/{alias}") is None


@pytest.mark.parametrize(
    "dated", ["gpt-4o-2024-05-13", "gpt-4o-2024-11-20", "claude-3-5-sonnet-20240620"]
)
def test_dated_ids_priced_differently_stay_unknown(dated: str) -> None:
    assert PriceIndex(recorded_listing().prices, CATALOG.aliases).resolve(dated) is None


@pytest.mark.parametrize(
    ("text", "billions"),
    [("3.8B", Decimal("3.8")), ("70B", Decimal(70)), ("270M", Decimal("0.270")), ("7b", 7)],
)
def test_parameters_as_a_number(text: str, billions: Decimal) -> None:
    assert parameters_billions(text) == billions


@pytest.mark.parametrize("text", ["", "7", "B", "seven B", "7 GB"])
def test_parameters_that_are_not_a_count(text: str) -> None:
    assert parameters_billions(text) is None


def test_every_local_model_fits_its_suggested_tier() -> None:
    for model in CATALOG.local_models:
        assert fits(model, CATALOG.hardware[model.hardware]), model.ollama_tag
