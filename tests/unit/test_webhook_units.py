"""Webhook settings, bodies, signatures and the retry schedule (pure: no services)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from pricing_service.config import WebhookEndpoint, load_settings
from pricing_service.domain import WebhookFormat
from pricing_service.errors import ConfigurationError
from pricing_service.webhooks.delivery import Signer, encode_body
from pricing_service.webhooks.events import (
    Change,
    EventType,
    body_for,
    message_text,
    prices_changed,
    shown_url,
    webhook_id,
)
from pricing_service.webhooks.outbox import next_delay

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_endpoints_take_an_optional_format_prefix() -> None:
    settings = load_settings(
        pricing_webhook_urls=(
            " https://ops.example/hook , slack:https://hooks.slack.com/services/T/B/X,"
            "DISCORD:https://discord.com/api/webhooks/1/abc,json:http://127.0.0.1:9000/h"
        ),
        pricing_webhook_secret=SECRET,
    )
    assert settings.pricing_webhook_urls == [
        WebhookEndpoint(WebhookFormat.JSON, "https://ops.example/hook"),
        WebhookEndpoint(WebhookFormat.SLACK, "https://hooks.slack.com/services/T/B/X"),
        WebhookEndpoint(WebhookFormat.DISCORD, "https://discord.com/api/webhooks/1/abc"),
        WebhookEndpoint(WebhookFormat.JSON, "http://127.0.0.1:9000/h"),
    ]
    assert [type(e.format) for e in settings.pricing_webhook_urls] == [WebhookFormat] * 4


def test_slack_alone_needs_no_secret() -> None:
    settings = load_settings(pricing_webhook_urls="slack:https://hooks.slack.com/services/T/B/X")
    assert settings.pricing_webhook_secret is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"pricing_webhook_urls": "teams:https://x.example/h"}, "entry 1: unknown format 'teams'"),
        ({"pricing_webhook_urls": "ftp://x.example/h"}, "entry 1: not an http:// or https://"),
        (
            {"pricing_webhook_urls": "https://a.example/h,https://a.example/h"},
            "entry 2: the same URL twice",
        ),
        ({"pricing_webhook_urls": "https://a.example/h"}, "PRICING_WEBHOOK_SECRET: required"),
        ({"pricing_webhook_secret": "s3cr3t"}, "must be whsec_ followed by base64"),
        ({"pricing_webhook_secret": "whsec_abc"}, "at least 16 bytes"),
        ({"pricing_webhook_retry_seconds": "30,soon"}, "not a number of seconds: 'soon'"),
        ({"pricing_webhook_retry_seconds": "0"}, "between 0.05 and 604800"),
        ({"pricing_webhook_failing_after_seconds": 5}, "PRICING_WEBHOOK_FAILING_AFTER_SECONDS"),
        ({"pricing_webhook_retention_seconds": 60}, "PRICING_WEBHOOK_RETENTION_SECONDS"),
    ],
)
def test_bad_webhook_settings_name_the_variable(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**values)
    assert message in caught.value.detail
    assert "hooks.slack" not in caught.value.detail
    assert "s3cr3t" not in caught.value.detail


def test_settled_deliveries_are_kept_longer_than_the_schedule_retries_by_default() -> None:
    settings = load_settings()
    assert settings.pricing_webhook_retention_seconds == 30 * 86400
    assert settings.pricing_webhook_retention_seconds > sum(settings.pricing_webhook_retry_seconds)


def test_the_default_schedule_retries_for_hours() -> None:
    schedule = load_settings().pricing_webhook_retry_seconds
    assert sum(schedule) > 10 * 3600
    assert schedule == sorted(schedule)


def test_each_delay_is_jittered_within_a_fifth_and_the_schedule_ends() -> None:
    rng = random.Random(7)
    schedule = (10.0, 100.0)
    delays = [next_delay(1, schedule, rng) for _ in range(200)]
    assert all(d is not None and 8.0 <= d <= 12.0 for d in delays)
    assert len({round(d or 0, 6) for d in delays}) > 100  # jittered, not one figure
    second = next_delay(2, schedule, rng)
    assert second is not None
    assert 80.0 <= second <= 120.0
    assert next_delay(3, schedule, rng) is None  # three attempts failed: dead


def test_a_signature_the_standard_verifier_accepts() -> None:
    at = datetime.now(UTC)
    body = encode_body("json", "run.held", at, {"run_id": 3})
    headers = Signer(SECRET).headers(webhook_id(3, at), at, body)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(body, headers) == {
        "type": "run.held",
        "timestamp": at.isoformat(),
        "data": {"run_id": 3},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace("3", "4"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(body, headers)


def test_prices_changed_carries_usd_and_cop_and_null_stays_null() -> None:
    from pricing_service.domain import ModelPrice, PriceBasis

    before = ModelPrice(
        model_id="m",
        slug="m",
        provider="p",
        display_name="M",
        input_usd_per_million=Decimal("2"),
        output_usd_per_million=None,
        price_basis=PriceBasis.OFFICIAL,
    )
    after = ModelPrice(
        model_id="m",
        slug="m",
        provider="p",
        display_name="M",
        input_usd_per_million=Decimal("2.5"),
        output_usd_per_million=Decimal("10"),
        price_basis=PriceBasis.OFFICIAL,
    )
    data = prices_changed(7, [Change("m", "changed", before, after)], Decimal("4000"))
    (change,) = data["changes"]
    assert change["before"] == {
        "input_usd_per_million": 2.0,
        "output_usd_per_million": None,
        "input_cop_per_million": 8000.0,
        "output_cop_per_million": None,
    }
    assert change["after"]["output_cop_per_million"] == 40000.0
    assert data["snapshot_id"] == 7
    assert data["more"] == 0
    text = message_text(EventType.PRICES_CHANGED, data)
    assert "m (changed): 2 USD / ? → 2.5 USD / 10 USD" in text
    assert body_for("slack", EventType.PRICES_CHANGED, datetime.now(UTC), data) == {"text": text}
    assert body_for("discord", EventType.PRICES_CHANGED, datetime.now(UTC), data) == {
        "content": text
    }


def test_an_endpoint_is_shown_without_its_path() -> None:
    assert shown_url("https://hooks.slack.com/services/T0/B0/secret") == "https://hooks.slack.com/…"
    assert shown_url("https://user:pw@example.org:8443/x") == "https://example.org:8443/…"
