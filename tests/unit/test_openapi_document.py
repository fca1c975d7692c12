"""The committed OpenAPI document is the one the service serves, and it types every answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pricing_service.app import openapi_json
from pricing_service.cli import main

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"
REGENERATE = ".venv/bin/pricing-service openapi > docs/openapi.json"
DOCUMENT: dict[str, Any] = json.loads(openapi_json())
OPERATIONS = [
    (f"{method.upper()} {path}", operation)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
    if method in ("get", "post")
]
# The answers a client decodes on success (and the failed refresh's and /ready's 503 bodies).
BODIES = ("200", "202", "502")


def test_committed_document_is_current() -> None:
    committed = COMMITTED.read_text("utf-8") if COMMITTED.exists() else ""
    assert committed == openapi_json(), (
        f"docs/openapi.json differs from the served document: regenerate it with `{REGENERATE}`"
    )


def test_cli_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi"]) == 0
    assert capsys.readouterr().out == openapi_json()


def test_every_route_is_documented() -> None:
    assert {name for name, _ in OPERATIONS} == {
        "GET /health",
        "GET /ready",
        "GET /api/v1/pricing/models",
        "GET /api/v1/pricing/prices",
        "GET /api/v1/pricing/local",
        "GET /api/v1/pricing/estimate",
        "POST /api/v1/pricing/estimate",
        "GET /api/v1/pricing/changes",
        "POST /api/v1/pricing/refresh",
        "GET /api/v1/pricing/runs",
        "GET /api/v1/pricing/runs/{run_id}",
        "GET /api/v1/pricing/debug/sample",
    }


@pytest.mark.parametrize(("name", "operation"), OPERATIONS, ids=[name for name, _ in OPERATIONS])
def test_every_answer_is_typed_with_an_example(name: str, operation: dict[str, Any]) -> None:
    for status, response in operation["responses"].items():
        for media in response.get("content", {}).values():
            schema = media["schema"]
            # A bare object ({"type": "object", "additionalProperties": {}}) types nothing.
            assert schema.get("additionalProperties") != {}, (name, status)
            assert "$ref" in schema or "oneOf" in schema or "properties" in schema, (name, status)
            if status in BODIES:
                assert media.get("examples"), (name, status)
    if name == "GET /ready":
        assert operation["responses"]["503"]["content"]["application/json"]["examples"]


def test_the_refresh_body_is_optional() -> None:
    (operation,) = [op for name, op in OPERATIONS if name == "POST /api/v1/pricing/refresh"]
    assert operation["requestBody"]["required"] is False


def _schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = DOCUMENT["components"]["schemas"][name]
    return found


@pytest.mark.parametrize(
    ("operation_id", "body"),
    [("listPriceChanges", "PriceChanges"), ("estimateUsageCost", "UsageEstimate")],
)
def test_struct_answers_are_derived_from_their_return_type(operation_id: str, body: str) -> None:
    # GET /changes and POST /estimate return the struct the service built (api/feed_estimate):
    # their 200 is that struct's schema, with the examples its builder computed.
    (operation,) = [op for _, op in OPERATIONS if op["operationId"] == operation_id]
    media = operation["responses"]["200"]["content"]["application/json"]
    assert media["schema"] == {"$ref": f"#/components/schemas/{body}"}
    assert media["examples"]


def test_decimal_money_is_documented_as_a_json_number() -> None:
    # Decimal fields are written as JSON numbers (replies.render), not Litestar's strings.
    entry = _schema("PriceChangeEntry")["properties"]
    assert entry["new_input_usd_per_million"]["oneOf"] == [{"type": "number"}, {"type": "null"}]
    assert _schema("PriceChanges")["properties"]["usd_to_cop"] == {"type": "number"}
    line = _schema("EstimateLine")["properties"]
    assert line["usd"]["oneOf"] == [{"type": "number"}, {"type": "null"}]
    assert _schema("SelectorCurrency")["properties"]["rate"] == {"type": "number"}
