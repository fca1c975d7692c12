"""The recorded PricePerToken answers (2026-04-29) and the curation catalog, loaded once.

``ROWS``, ``DETAILS`` and ``PROVIDERS`` are shared by every test in the process: read them,
never change them (``recorded_listing()`` hands out a private deep copy to change).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pricing_service.catalog import load_catalog
from pricing_service.curation import SelectorDataset
from pricing_service.currency import COP
from pricing_service.domain import SnapshotInfo, SnapshotSource
from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.second_source import second_source

if TYPE_CHECKING:
    from pricing_service.domain import Catalog, NormalizedListing

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "pricepertoken" / "2026-04-29"
CATALOG_DIR = ROOT / "catalog"


@dataclass(slots=True)
class Listing:
    """The data the loopback server answers with."""

    rows: list[dict[str, Any]]
    details: dict[str, dict[str, Any]]
    providers: list[dict[str, Any]]


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


ROWS: list[dict[str, Any]] = _load("get_all_models.json")
DETAILS: dict[str, dict[str, Any]] = {m["slug"]: m for m in _load("get_model.json")}
PROVIDERS: list[dict[str, Any]] = _load("get_providers.json")
SELECTOR: dict[str, Any] = json.loads(
    (ROOT / "tests" / "fixtures" / "cognitia" / "selector.json").read_text(encoding="utf-8")
)
CATALOG = load_catalog(CATALOG_DIR)


@functools.cache
def undecided_catalog_dir() -> Path:
    """A copy of the repository's catalog without its operators' decisions (decisions.toml),
    made once per process: for the tests of what the gate holds and how a hold is shown and
    accepted, which need the bundled seed's second-source holds that the decisions settle."""
    import atexit
    import shutil
    import tempfile

    from pricing_service.catalog import DECISIONS_FILE

    directory = Path(tempfile.mkdtemp(prefix="pricing-undecided-catalog-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    for source in CATALOG_DIR.glob("*.toml"):
        if source.name != DECISIONS_FILE:
            shutil.copy(source, directory / source.name)
    return directory


@functools.cache
def undecided_catalog() -> Catalog:
    """The repository's catalog without its decisions (see ``undecided_catalog_dir``)."""
    return load_catalog(undecided_catalog_dir())


def recorded_listing() -> Listing:
    """A fresh deep copy of the recorded answers, safe to change."""
    return Listing(
        rows=copy.deepcopy(ROWS),
        details=copy.deepcopy(DETAILS),
        providers=copy.deepcopy(PROVIDERS),
    )


@functools.cache
def normalized_recording() -> NormalizedListing:
    """The recording as a refresh normalizes it: the same call on the same rows and details."""
    return normalize_listing(ROWS, DETAILS)


@functools.cache
def recorded_dataset(*, extras: bool, rate: int = 4000) -> SelectorDataset:
    """The selector over the normalized recording (fetched 2026-04-29 08:14 UTC) at ``rate``;
    ``extras``: with the per-call prices and long-context tiers a refresh stores with each price
    (``SecondSource.with_call_prices_and_tiers``)."""
    fetched_at = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)
    prices = normalized_recording().prices
    if extras:
        prices = second_source().with_call_prices_and_tiers(prices, at=fetched_at)
    return SelectorDataset(
        snapshot=SnapshotInfo(7, fetched_at, SnapshotSource.PRICEPERTOKEN, len(prices)),
        prices=prices,
        catalog=load_catalog(CATALOG_DIR),
        rate=Decimal(rate),
        rate_source="fixed",
        currency=COP,
    )
