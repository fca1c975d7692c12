"""Settings: the target-state names, their defaults, and one-line errors for bad values."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pricing_service.config import DEFAULT_MCP_URL, PROJECT_DIR, Settings, load_settings
from pricing_service.currency import COP, CURRENCIES
from pricing_service.errors import ConfigurationError
from tests.support.currencies import XTS


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in (
        "PRICEPERTOKEN_MCP_URL",
        "PRICING_REFRESH_INTERVAL_SECONDS",
        "PRICING_CACHE_TTL_SECONDS",
        "DATABASE_URL",
        "REDIS_URL",
        "HOST",
        "PORT",
        "PRICING_ADMIN_TOKEN",
        "PRICING_CRON_TOKEN",
        "PRICING_USD_TO_COP",
        "PRICING_CURRENCY",
        "PRICING_COP_RATE_SOURCE",
        "PRICING_CATALOG_DIR",
        "PRICING_CORS_ORIGINS",
        "PRICING_LOG_FORMAT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setitem(Settings.model_config, "env_file", None)  # no developer's .env is read


def test_defaults_work_with_nothing_configured() -> None:
    s = load_settings()
    assert s.pricepertoken_mcp_url == DEFAULT_MCP_URL == "https://api.pricepertoken.com/mcp/mcp"
    assert s.pricing_refresh_interval_seconds == 43200
    assert s.pricing_cache_ttl_seconds == 86400
    assert s.database_url == f"sqlite:///{PROJECT_DIR}/var/pricing.db"
    assert s.pricing_catalog_dir == PROJECT_DIR / "catalog"
    assert s.pricing_log_format == "logfmt"
    assert s.redis_url is None
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.usd_to_cop == Decimal("4000")
    assert s.usd_to_cop_source == "default"
    assert s.pricing_admin_token is None
    assert s.pricing_cron_token is None
    assert s.pricing_cors_origins == []


def test_environment_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICEPERTOKEN_MCP_URL", "http://127.0.0.1:9/mcp")
    monkeypatch.setenv("PRICING_REFRESH_INTERVAL_SECONDS", "600")
    monkeypatch.setenv("PRICING_CACHE_TTL_SECONDS", "3600")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.internal:5432/pricing")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("PRICING_USD_TO_COP", "4123.5")
    monkeypatch.setenv("PRICING_CRON_TOKEN", "cron-secret")
    monkeypatch.setenv("PRICING_CORS_ORIGINS", "https://cognitia.example, https://b.example")
    s = load_settings()
    assert s.pricepertoken_mcp_url == "http://127.0.0.1:9/mcp"
    assert s.pricing_refresh_interval_seconds == 600
    assert s.pricing_cache_ttl_seconds == 3600
    # Railway's postgres:// becomes the psycopg 3 driver URL.
    assert s.database_url == "postgresql+psycopg://u:p@db.internal:5432/pricing"
    assert s.redis_url == "redis://127.0.0.1:6379/3"
    assert s.port == 9000
    assert s.usd_to_cop == Decimal("4123.5")
    assert s.usd_to_cop_source == "PRICING_USD_TO_COP"
    assert s.pricing_cron_token is not None
    assert s.pricing_cron_token.get_secret_value() == "cron-secret"
    assert s.pricing_cors_origins == ["https://cognitia.example", "https://b.example"]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PRICING_USD_TO_COP", "abc", "PRICING_USD_TO_COP: Input should be a valid decimal"),
        ("PRICING_USD_TO_COP", "-1", "PRICING_USD_TO_COP: Input should be greater than 0"),
        ("DATABASE_URL", "not a url", "DATABASE_URL: is not a database URL"),
        ("DATABASE_URL", "mysql://db/x", "DATABASE_URL: unsupported driver 'mysql'"),
        ("REDIS_URL", "http://127.0.0.1:6379", "REDIS_URL: must start with redis://"),
        ("PORT", "70000", "PORT: Input should be less than or equal to 65535"),
        ("PRICING_REFRESH_INTERVAL_SECONDS", "soon", "PRICING_REFRESH_INTERVAL_SECONDS: "),
        ("PRICEPERTOKEN_MCP_URL", "ftp://x", "PRICEPERTOKEN_MCP_URL: must be an http"),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_database_password_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://user:hunter2@db/x")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "hunter2" not in str(info.value)


def test_empty_token_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICING_ADMIN_TOKEN", "  ")
    assert load_settings().pricing_admin_token is None


def test_paths_come_from_the_project_not_the_working_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fixture moved the working directory to a temporary one: cron runs from anywhere.
    assert Path.cwd() != PROJECT_DIR
    assert (PROJECT_DIR / "pyproject.toml").is_file()
    assert (load_settings().pricing_catalog_dir / "categories.toml").is_file()
    monkeypatch.setenv("PRICING_CATALOG_DIR", "catalog")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///var/other.db")
    s = load_settings()
    assert s.pricing_catalog_dir == PROJECT_DIR / "catalog"
    assert s.database_url == f"sqlite:///{PROJECT_DIR}/var/other.db"
    monkeypatch.setenv("PRICING_CATALOG_DIR", "/srv/catalog")
    monkeypatch.setenv("DATABASE_URL", "sqlite:////srv/pricing.db")
    s = load_settings()
    assert s.pricing_catalog_dir == Path("/srv/catalog")
    assert s.database_url == "sqlite:////srv/pricing.db"
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    assert load_settings().database_url == "sqlite://"


@pytest.mark.parametrize(("given", "expected"), [("logfmt", "logfmt"), ("JSON", "json")])
def test_log_format(monkeypatch: pytest.MonkeyPatch, given: str, expected: str) -> None:
    monkeypatch.setenv("PRICING_LOG_FORMAT", given)
    assert load_settings().pricing_log_format == expected


def test_bad_log_format_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICING_LOG_FORMAT", "xml")
    with pytest.raises(ConfigurationError, match=r"^PRICING_LOG_FORMAT: "):
        load_settings()


def test_the_local_currency_is_cop_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().currency is COP
    monkeypatch.setenv("PRICING_CURRENCY", " cop ")
    assert load_settings().currency is COP


def test_an_unknown_currency_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(pricing_currency="EUR")
    assert str(info.value) == (
        f"PRICING_CURRENCY: must be one of {', '.join(CURRENCIES)} (got 'EUR')"
    )


def test_a_currency_is_served_only_as_its_row_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    """XTS has no bundled rate and no TRM: it needs PRICING_USD_TO_COP and the fixed source."""
    monkeypatch.setitem(CURRENCIES, XTS.code, XTS)
    with pytest.raises(ConfigurationError) as info:
        load_settings(pricing_currency="XTS", database_url="postgresql+psycopg://u:secret@db/p")
    assert str(info.value) == (
        "settings: XTS has no bundled rate: set PRICING_USD_TO_COP (USD -> XTS)"
    )  # a check across fields names no value: the settings hold secrets
    with pytest.raises(ConfigurationError) as info:
        load_settings(
            pricing_currency="XTS", pricing_usd_to_cop="17.5", pricing_cop_rate_source="trm"
        )
    assert str(info.value) == ("settings: PRICING_COP_RATE_SOURCE=trm cannot serve XTS: use fixed")
    served = load_settings(pricing_currency="xts", pricing_usd_to_cop="17.5")
    assert served.currency is XTS
    assert (served.usd_to_cop, served.usd_to_cop_source) == (Decimal("17.5"), "PRICING_USD_TO_COP")
