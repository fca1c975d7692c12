"""The seed snapshot bundled with the service: the recorded 2026-04-29 PricePerToken answers."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

SEED_FILE = "pricepertoken-2026-04-29.json.gz"


@dataclass(frozen=True, slots=True)
class Seed:
    recorded_at: datetime
    rows: list[dict[str, Any]]
    details: dict[str, dict[str, Any]]


def load_seed() -> Seed:
    """Read the bundled recording (built by scripts/build_seed.py)."""
    data = resources.files(__package__ or "pricing_service.seed").joinpath(SEED_FILE).read_bytes()
    payload = json.loads(gzip.decompress(data))
    return Seed(
        recorded_at=datetime.fromisoformat(payload["recorded_at"]),
        rows=payload["rows"],
        details=payload["details"],
    )
