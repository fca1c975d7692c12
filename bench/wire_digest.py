"""GET /changes and POST /estimate as they go on the wire: record before a move, compare after.

Builds (once) a SQLite database from the recorded PricePerToken listing (2026-04-29): the
listing at a fixed time, then a second run a day later in which prices move (by a fifth, and by
factors with many decimals), a price turns unknown, models leave and others arrive, and one
price moves far enough for the gate to hold it. Then it runs the real app on that file (at two
fixed USD -> COP rates) and records, for each request, the status, the headers that matter
(ETag, Cache-Control, X-Cache-Tier, Content-Type, Content-Length) and the body: newest first,
every kind, a model filter (any spelling), since, cursors followed to the end, 304 on the
ETag, 400s; POST /estimate in every usage format (detected and named), with unknown, local,
held and cache-less models, a long prompt past the tiers, and bad bodies.

    python -m bench.wire_digest --db /tmp/wire.db --write before.json
    python -m bench.wire_digest --db /tmp/wire.db --compare before.json

``--compare`` reports which answers are byte-identical and, for those that are not, whether
their JSON values are equal (numbers compared as Decimal: 1680.0 equals 1680), or differ only
in numbers a float had rounded (``6.666666666666667`` before, the exact decimal after), or
differ otherwise (exit 1). Not a test: the database and the recorded answers stay outside the
repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from pricing_service.app import create_app
from pricing_service.db import create_db_engine
from pricing_service.domain import NormalizedListing
from pricing_service.migrate import upgrade
from pricing_service.repository import Repository
from tests.support.recorded_service import service_settings
from tests.support.recording import normalized_recording
from tests.support.snapshots import store_snapshot

CHANGES = "/api/v1/pricing/changes"
ESTIMATE = "/api/v1/pricing/estimate"
T0 = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)
KEPT_HEADERS = ("status", "etag", "cache-control", "x-cache-tier", "content-type", "content-length")
USAGES: list[tuple[str, dict[str, Any] | None, str | None]] = [
    ("openai_chat", {"prompt_tokens": 1200, "completion_tokens": 300}, None),
    (
        "openai_chat_cached",
        {
            "prompt_tokens": 5000,
            "completion_tokens": 700,
            "prompt_tokens_details": {"cached_tokens": 4000, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 200},
        },
        None,
    ),
    ("openai_chat_named", {"prompt_tokens": 10, "completion_tokens": 3}, "openai_chat"),
    (
        "openai_responses",
        {
            "input_tokens": 3000,
            "output_tokens": 900,
            "input_tokens_details": {"cached_tokens": 1000},
            "output_tokens_details": {"reasoning_tokens": 400},
        },
        None,
    ),
    (
        "anthropic",
        {
            "input_tokens": 1200,
            "cache_read_input_tokens": 20000,
            "cache_creation_input_tokens": 3000,
            "cache_creation": {"ephemeral_1h_input_tokens": 1000},
            "output_tokens": 800,
            "server_tool_use": {"web_search_requests": 2},
        },
        None,
    ),
    ("anthropic_long", {"input_tokens": 250_000, "output_tokens": 4_000}, "anthropic"),
    (
        "gemini",
        {
            "promptTokenCount": 9000,
            "cachedContentTokenCount": 2000,
            "candidatesTokenCount": 500,
            "thoughtsTokenCount": 300,
        },
        None,
    ),
    (
        "gemini_audio",
        {
            "promptTokenCount": 900,
            "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 200}],
            "candidatesTokenCount": 50,
        },
        "gemini",
    ),
    ("gemini_long", {"promptTokenCount": 300_000, "candidatesTokenCount": 100}, "gemini"),
    ("zero", {"prompt_tokens": 0, "completion_tokens": 0}, None),
    ("ambiguous", {"input_tokens": 3, "output_tokens": 1}, None),
    ("not_usage", {"what": 1}, None),
    ("fraction", {"prompt_tokens": 1.5, "completion_tokens": 1}, None),
    ("bad_format", {"prompt_tokens": 1, "completion_tokens": 1}, "openai_chatty"),
    ("null_usage", None, None),
]
MODELS = (
    "gpt-4o",
    "openai/gpt-4o",
    "gpt-4.1-mini",
    "claude-sonnet-4-20250514",
    "claude-3-5-haiku-20241022",
    "anthropic/claude-3-5-haiku",
    "gemini-2.0-flash",
    "gemini-2.5-pro",
    "google/gemini-1.5-pro",
    "deepseek-v3.2",
    "phi3:latest",
    "cognitia_llm_zerogpu.mistral-7b",
    "no-such-model",
)


def groups() -> dict[str, list[str]]:
    """Which models the second run moves, makes unknown, delists and holds."""
    priced = sorted(
        p.model_id
        for p in normalized_recording().prices
        if p.input_usd_per_million and p.output_usd_per_million and p.model_id != "gpt-4o"
    )
    return {
        "fifth": priced[:40],
        "odd": priced[40:55],
        "unknown": priced[55:57],
        "gone": priced[57:60],
        "held": priced[60:61],
    }


def build(path: Path) -> None:
    """The database: two runs a day apart, the second moving the prices of ``groups()``."""
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = create_db_engine(url)
    repository = Repository(engine)
    listing = normalized_recording()
    store_snapshot(repository, listing, fetched_at=T0)
    store_snapshot(repository, moved_listing(listing), fetched_at=T0 + timedelta(1))
    engine.dispose()


def moved_listing(listing: NormalizedListing) -> NormalizedListing:
    """The second run's listing: the prices of ``groups()`` moved, made unknown, delisted or
    held, and three models new."""
    chosen = groups()
    fifth, odd, unknown, gone = chosen["fifth"], chosen["odd"], chosen["unknown"], chosen["gone"]
    held = chosen["held"]
    factors = {**dict.fromkeys(fifth, "1.2"), **dict.fromkeys(odd, "1.0123456789")}
    moved = []
    for price in listing.prices:
        old_in = price.input_usd_per_million or Decimal(0)  # priced (groups()): never 0
        old_out = price.output_usd_per_million or Decimal(0)
        if price.model_id in gone:
            continue
        if price.model_id in unknown:
            price = price.without_prices()
        elif price.model_id in held:
            price = replace(price, input_usd_per_million=old_in * 40)
        elif price.model_id in factors:
            factor = Decimal(factors[price.model_id])
            price = replace(
                price,
                input_usd_per_million=old_in * factor,
                output_usd_per_million=old_out / factor,
            )
        moved.append(price)
    template = next(p for p in listing.prices if p.model_id == fifth[0])
    for n, price_in in enumerate(("0.28", "0.07", "12.5")):
        moved.append(
            replace(
                template,
                model_id=f"wire-new-model-{n}",
                slug=f"wire-new-model-{n}",
                display_name=f"Wire New {n}",
                input_usd_per_million=Decimal(price_in),
                output_usd_per_million=Decimal(price_in) * 3,
            )
        )
    return replace(listing, prices=tuple(moved))


def _answer(response: Any) -> dict[str, Any]:
    headers = {"status": str(response.status_code)}
    for name in KEPT_HEADERS[1:]:
        if name in response.headers:
            headers[name] = response.headers[name]
    return {"headers": headers, "body": response.content.decode("utf-8")}


def record(path: Path) -> dict[str, Any]:
    if not path.exists():
        build(path)
    url = f"sqlite:///{path}"
    found: dict[str, Any] = {}
    for rate in ("4200", "3912.4731"):
        settings = service_settings(url, pricing_usd_to_cop=Decimal(rate))
        with TestClient(create_app(settings)) as client:
            _feed(client, f"rate={rate}", found)
            if rate == "4200":
                _estimates(client, found)
    return found


def _feed(client: TestClient[Any], label: str, found: dict[str, Any]) -> None:
    queries: list[dict[str, Any]] = [
        {},
        {"limit": 1},
        {"limit": 5},
        {"limit": 1000},
        {"kind": "changed", "limit": 1000},
        {"kind": "added"},
        {"kind": "removed"},
        {"model_id": "gpt-4.1-mini"},
        {"model_id": "openai/gpt-4.1-mini"},
        {"model_id": "no-such-model"},
        {"since": "2026-04-30"},
        {"since": "2026-04-30T08:14:00Z", "limit": 3},
        {"since": "2030-01-01T00:00:00+05:00"},
        {"cursor": "", "limit": 7},
        {"cursor": "", "limit": 1000, "kind": "added"},
        {"cursor": "nope"},
        {"kind": "moved"},
        {"limit": 0},
        {"since": "yesterday"},
        {"limt": 5},
    ]
    for query in queries:
        response = client.get(CHANGES, params=query)
        key = f"{label} GET /changes {json.dumps(query, sort_keys=True)}"
        found[key] = _answer(response)
        etag = response.headers.get("etag")
        if response.status_code == 200 and etag:
            again = client.get(CHANGES, params=query, headers={"if-none-match": etag})
            found[f"{key} if-none-match"] = _answer(again)
    cursor = ""
    for page in range(40):
        response = client.get(CHANGES, params={"cursor": cursor, "limit": 9})
        found[f"{label} GET /changes follow page {page}"] = _answer(response)
        body = response.json()
        if not body["items"]:
            break
        cursor = body["next_cursor"]


def _estimates(client: TestClient[Any], found: dict[str, Any]) -> None:
    chosen = groups()
    moved = [*chosen["held"], *chosen["unknown"], *chosen["gone"][:1], *chosen["odd"][:2]]
    for model_id in (*MODELS, *moved, "wire-new-model-0"):
        for name, usage, usage_format in USAGES:
            payload: dict[str, Any] = {"model_id": model_id, "usage": usage}
            if usage_format is not None:
                payload["format"] = usage_format
            response = client.post(ESTIMATE, json=payload)
            found[f"POST /estimate {model_id} {name}"] = _answer(response)
    for name, raw in (
        ("no model", b'{"usage": {"prompt_tokens": 1}}'),
        ("model not a string", b'{"model_id": 3, "usage": {"prompt_tokens": 1}}'),
        ("blank model", b'{"model_id": "  ", "usage": {"prompt_tokens": 1}}'),
        ("control chars", b'{"model_id": "gpt\\u0000", "usage": {"prompt_tokens": 1}}'),
        ("not json", b"{nope"),
    ):
        response = client.post(ESTIMATE, content=raw, headers={"content-type": "application/json"})
        found[f"POST /estimate bad: {name}"] = _answer(response)
    response = client.post(
        ESTIMATE + "?x=1", json={"model_id": "gpt-4o", "usage": {"prompt_tokens": 1}}
    )
    found["POST /estimate unknown param"] = _answer(response)


def _differences(before: Any, after: Any, where: str = "$") -> tuple[list[str], list[str]]:
    """Where two JSON values differ: (numbers a float had rounded: equal once the exact one is
    a float too, other differences). Numbers compare as Decimal (1680.0 equals 1680)."""
    rounded: list[str] = []
    other: list[str] = []
    if isinstance(before, Decimal) and isinstance(after, Decimal):
        if before != after:
            (rounded if float(before) == float(after) else other).append(
                f"{where}: {before} -> {after}"
            )
    elif type(before) is not type(after):
        other.append(f"{where}: {before!r} -> {after!r}")
    elif isinstance(before, dict):
        if list(before) != list(after):
            other.append(f"{where}: keys {list(before)} -> {list(after)}")
        else:
            for key in before:
                r, o = _differences(before[key], after[key], f"{where}.{key}")
                rounded += r
                other += o
    elif isinstance(before, list):
        if len(before) != len(after):
            other.append(f"{where}: {len(before)} items -> {len(after)}")
        else:
            for n, (b, a) in enumerate(zip(before, after, strict=True)):
                r, o = _differences(b, a, f"{where}[{n}]")
                rounded += r
                other += o
    elif before != after:
        other.append(f"{where}: {before!r} -> {after!r}")
    return rounded, other


def _value(body: str) -> Any:
    try:
        return json.loads(body, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return body


def compare(recorded: dict[str, Any], found: dict[str, Any]) -> int:
    identical = value_equal = float_rounded = differ = 0
    rounded_numbers: set[str] = set()
    moved_headers: set[str] = set()
    for key in sorted(recorded.keys() | found.keys()):
        if key not in recorded or key not in found:
            print(f"{'missing' if key in recorded else 'new'}: {key}")
            differ += 1
            continue
        before, after = recorded[key], found[key]
        if before == after:
            identical += 1
            continue
        moved_headers |= {
            name
            for name in before["headers"].keys() | after["headers"].keys()
            if before["headers"].get(name) != after["headers"].get(name)
        }
        rounded, other = _differences(_value(before["body"]), _value(after["body"]))
        if other or before["headers"]["status"] != after["headers"]["status"]:
            differ += 1
            print(f"differs: {key}: {other[:3]}")
        elif rounded:
            float_rounded += 1
            rounded_numbers |= {line.split(": ", 1)[1] for line in rounded}
        else:
            value_equal += 1
    for line in sorted(rounded_numbers)[:10]:
        print(f"a float had rounded: {line}")
    print(
        f"wire_digest: {len(recorded)} recorded: {identical} byte-identical (body and headers); "
        f"{value_equal} with equal JSON values (numbers as Decimal) in other bytes; "
        f"{float_rounded} where the only differences are numbers a float had rounded "
        f"({len(rounded_numbers)} distinct); {differ} differ otherwise"
        + (f"; headers that moved: {', '.join(sorted(moved_headers))}" if moved_headers else "")
    )
    return 0 if differ == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="the SQLite file (built if absent)")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="record the answers in this JSON file")
    group.add_argument("--compare", type=Path, help="compare with answers recorded earlier")
    args = parser.parse_args()
    found = record(args.db)
    if args.write is not None:
        args.write.write_text(json.dumps(found, indent=1, sort_keys=True))
        print(f"wire_digest: {len(found)} answers recorded in {args.write}")
        return 0
    return compare(json.loads(args.compare.read_text()), found)


if __name__ == "__main__":
    sys.exit(main())
