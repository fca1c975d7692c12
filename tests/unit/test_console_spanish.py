"""The console's Spanish: one table per kind of code (console/format.py), complete for every
value the service can store or report, a generic Spanish text for one it does not know yet."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from pricing_service.console import format as fmt
from pricing_service.console.render import environment
from pricing_service.domain import (
    CacheTier,
    DegradationCode,
    DeliveryStatus,
    HeldPrice,
    HoldReason,
    PriceBasis,
    RunPhase,
    RunStatus,
    RunSummary,
    RunTrigger,
    SnapshotSource,
    WebhookFormat,
)
from pricing_service.run_rows import abandoned_error
from pricing_service.webhooks.events import EventType

NOW = datetime(2026, 4, 29, 13, 0, tzinfo=UTC)
# English words, outside the product names the console shows as they are ("genai-prices").
ENGLISH = re.compile(
    r"(?<!genai-)\b(price|prices|held|served|operator|seeded|stored|memory|official|refresh|"
    r"snapshot|unreachable|unknown|until|estimate|demand)\b"
)


@pytest.mark.parametrize("reason", list(HoldReason))
def test_every_hold_reason_has_its_own_spanish_text(reason: HoldReason) -> None:
    # A new HoldReason (the gate adds them) fails here until HOLD_REASONS words it.
    assert reason in fmt.HOLD_REASONS, f"HOLD_REASONS has no Spanish text for {reason.value!r}"
    text = fmt.hold_reason(reason)
    assert text == fmt.hold_reason(reason.value)
    assert text != fmt.GENERIC_HOLD_REASON
    assert not ENGLISH.search(text)
    assert len(set(fmt.HOLD_REASONS.values())) == len(fmt.HOLD_REASONS)


def test_an_unknown_hold_reason_gets_a_generic_spanish_text() -> None:
    assert fmt.hold_reason("detail_unavailable_2099") == fmt.GENERIC_HOLD_REASON
    assert fmt.hold_reason(None) == "—"


def test_hold_reasons_state_the_gates_thresholds() -> None:
    assert fmt.hold_reason(HoldReason.RATIO) == "saltó más de 10 veces"
    assert fmt.hold_reason(HoldReason.CEILING) == "sobre el tope de 1.000 US$ por millón"
    assert fmt.hold_reason(HoldReason.SECOND_SOURCE) == "la segunda fuente difiere más de 3 veces"


@pytest.mark.parametrize(
    ("table", "values"),
    [
        (fmt.RUN_STATUSES, [s.value for s in RunStatus]),
        (fmt.PRICE_BASES, [b.value for b in PriceBasis]),
        (fmt.SOURCES, [s.value for s in SnapshotSource]),
        (fmt.CACHE_TIERS, [t.value for t in CacheTier]),
        (fmt.RUN_TRIGGERS, [t.value for t in RunTrigger]),
        (fmt.RUN_PHASES, [p.value for p in RunPhase]),
        (fmt.EVENT_TYPES, [e.value for e in EventType]),
        (fmt.DELIVERY_STATUSES, [s.value for s in DeliveryStatus]),
        (fmt.WEBHOOK_FORMATS, [f.value for f in WebhookFormat]),
    ],
)
def test_every_stored_code_has_a_spanish_text(table: dict[str, str], values: list[str]) -> None:
    assert [v for v in values if v not in table] == []
    assert [t for t in table.values() if ENGLISH.search(t)] == []


def test_filters_word_each_code_and_fall_back_in_spanish() -> None:
    assert fmt.run_status(RunStatus.SEEDED) == "semilla guardada"
    assert fmt.run_trigger(RunTrigger.SEED) == "semilla incluida"
    assert fmt.cache_tier("memory") == "memoria del proceso"
    assert fmt.price_basis("official").startswith("oficial")
    assert fmt.price_basis(None) == "—"
    assert fmt.run_trigger("webhook") == "otro origen (webhook)"
    assert fmt.run_error(abandoned_error(None, None)) == (
        "abandonada: el proceso que la ejecutaba se detuvo o perdió su turno"
    )
    assert fmt.run_error(abandoned_error("storing", "web-1:42")) == (
        "abandonada mientras guardando la instantánea: el proceso que la ejecutaba (web-1:42) "
        "se detuvo o perdió su turno"
    )
    assert fmt.run_error("upstream: HTTP 503") == "upstream: HTTP 503"


# Every code reports.readiness_details reports, with the facts it gives.
DEGRADATIONS: dict[str, dict[str, Any]] = {
    "redis_unreachable": {},
    "stale": {"age_seconds": 90000},
    "not_live": {"source": "seed"},
    "database_unreachable": {},
    "last_refresh_failed": {"run_id": 7, "error": "upstream unavailable"},
    "run_held": {"run_id": 8, "detail": "40 % of the prices moved"},
    "price_held_curated": {
        "model_id": "gemini-1.5-flash",
        "reason": HoldReason.SECOND_SOURCE,
        "run_id": 9,
        "categories": ["Rápidos & Económicos"],
        "served_unknown": True,
        "detail": "input 0.35 USD per million ...",
    },
    "price_held": {"model_id": "gpt-4o", "reason": HoldReason.CEILING, "run_id": 9},
    "more_held": {"count": 3},
    "rate_fallback": {"rate": "4000", "source": "default"},
    "rate_held": {
        "rate_id": 3,
        "rate": "4600.5",
        "valid_from": "2026-12-02",
        "detail": "TRM 4600.5 moved 15.0 % from the last accepted 4000 (more than 10 %)",
        "served": "4000",
    },
    "rate_unparsable": {"detail": "valor is missing or not a number", "served": "4000"},
    "rate_unreachable": {
        "error": "ConnectError: refused",
        "rate": "3912.45",
        "valid_from": "2026-12-01",
        "age_seconds": 90000,
    },
}


def test_every_warning_is_worded_in_spanish_from_its_facts() -> None:
    assert set(fmt.WARNINGS) == set(DEGRADATIONS) == {c.value for c in DegradationCode}
    for code, facts in DEGRADATIONS.items():
        text = fmt.warning(code, facts)
        assert not text.startswith("Aviso del servicio"), code
        assert not ENGLISH.search(text), (code, text)
        assert "{" not in text, (code, text)
    curated = fmt.warning("price_held_curated", DEGRADATIONS["price_held_curated"])
    assert curated == (
        "Precio retenido de gemini-1.5-flash (la segunda fuente difiere más de 3 veces; "
        "ejecución 9), curado en Rápidos & Económicos: se sirve sin precio hasta que un "
        "operador acepte una cifra."
    )
    assert fmt.warning("stale", {"age_seconds": 90000}) == (
        "Instantánea vencida: se obtuvo hace 1 d 1 h."
    )
    assert fmt.warning("rate_unreachable", DEGRADATIONS["rate_unreachable"]) == (
        "La fuente de la TRM no responde: se mantiene la tasa de 3.912,45 COP por USD (vigente "
        "desde 01/12/2026), confirmada por última vez hace 1 d 1 h."
    )


def test_an_unknown_warning_or_missing_fact_is_still_spanish() -> None:
    assert fmt.warning("disk_full", {}) == (
        "Aviso del servicio sin texto en español todavía (disk_full)."
    )
    assert fmt.warning("price_held", {}).startswith("Aviso del servicio")


def _held(reason: HoldReason | str) -> HeldPrice:
    return HeldPrice(
        model_id="gpt-4o",
        run_id=3,
        reason=reason,  # type: ignore[arg-type]
        detail="input 1e12 USD per million is above 1000",
        proposed_input_usd_per_million=Decimal("1e12"),
        proposed_output_usd_per_million=Decimal(10),
        accepted_input_usd_per_million=Decimal("2.5"),
        accepted_output_usd_per_million=Decimal(10),
        held_at=NOW,
    )


def _visible(html: str) -> str:
    """The text a person reads: no tags, no attributes, no lang="en" detail."""
    html = re.sub(r'<small lang="en">.*?</small>', "", html, flags=re.DOTALL)
    return re.sub(r"<[^>]+>", " ", html)


def _macro(call: str, **values: object) -> str:
    source = '{% from "_macros.html" import held_table, runs_table %}' + call
    return environment().from_string(source).render(**values)


def test_a_seeded_run_with_held_prices_shows_in_spanish() -> None:
    run = RunSummary(
        id=1,
        trigger=RunTrigger.SEED,
        status=RunStatus.SEEDED,
        started_at=NOW,
        finished_at=NOW,
        rows_seen=None,
        priced=None,
        unknown=None,
        changes=None,
        error=None,
        upstream_latency_ms=None,
        snapshot_id=1,
        held_reason="6 prices of the stored seed held",
        held_prices=tuple(_held(HoldReason.CEILING) for _ in range(6)),
    )
    text = _visible(_macro("{{ runs_table(runs, [], 'csrf') }}", runs=[run]))
    assert "Al guardar la semilla se retuvieron 6 precio(s) dudosos." in text
    assert "semilla guardada" in text
    assert "semilla incluida" in text
    assert not ENGLISH.search(text), text


def test_held_prices_show_their_reason_in_spanish_even_a_new_one() -> None:
    held = [_held(HoldReason.CEILING), _held("some_future_reason")]
    html = _macro("{{ held_table(held, {}, 'csrf') }}", held=held)
    text = _visible(html)
    assert "sobre el tope de 1.000 US$ por millón" in text
    assert fmt.GENERIC_HOLD_REASON in text
    assert not ENGLISH.search(text), text
    # The gate's own sentence stays, aside and marked as English.
    assert '<small lang="en">input 1e12 USD per million is above 1000</small>' in html
