"""Settings read from the environment; the only module that does so.

Paths are never taken from the current directory: the catalog, the default SQLite file and the
.env file are found in the project directory (the checkout, or /app in the image), and a
relative PRICING_CATALOG_DIR or sqlite:/// path is taken from there too. A `pricing-service
refresh` run by cron from anywhere uses the same catalog and database as the service.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pricing_service.currency import (
    CURRENCIES,
    DEFAULT_CURRENCY,
    Currency,
    RateMode,
    RateSource,
)
from pricing_service.domain import WebhookFormat
from pricing_service.errors import ConfigurationError

# The directory holding pyproject.toml, catalog/, migrations/ and var/: the package sits in it,
# installed editable (`make run`, and the image, whose project is /app). A non-editable install
# elsewhere sets PRICING_CATALOG_DIR and DATABASE_URL explicitly.
PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_MCP_URL = "https://api.pricepertoken.com/mcp/mcp"
# The TRM certified by the Superintendencia Financiera, as open data (Socrata).
DEFAULT_TRM_URL = "https://www.datos.gov.co/resource/32sa-8pi3.json"
# Development only: on a platform the file is lost on redeploy unless var/ is a volume.
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_DIR / 'var' / 'pricing.db'}"
DEFAULT_CATALOG_DIR = PROJECT_DIR / "catalog"
# Webhook endpoints: `[format:]url`, the format a WebhookFormat (json, the default).
MAX_WEBHOOK_URL = 2000
# Seconds between a failed delivery's attempts (each with +-20 % jitter), then it is dead:
# about 15 hours in all.
DEFAULT_WEBHOOK_RETRY_SECONDS = (30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0)


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """One entry of PRICING_WEBHOOK_URLS."""

    format: WebhookFormat
    url: str


def parse_webhook_endpoints(value: str) -> list[WebhookEndpoint]:
    """`https://a/hook,slack:https://hooks.slack.com/...`: each entry `[format:]url`."""
    found: list[WebhookEndpoint] = []
    for number, part in enumerate(value.split(","), start=1):
        text = part.strip()
        if not text:
            continue
        kind, url = WebhookFormat.JSON.value, text
        prefix, sep, rest = text.partition(":")
        if sep and not rest.startswith("//"):  # `slack:https://...`, not `https://...`
            kind, url = prefix.strip().lower(), rest.strip()
            if kind not in set(WebhookFormat):
                raise ValueError(
                    f"entry {number}: unknown format {prefix[:20]!r} "
                    f"(write [json:|slack:|discord:]https://...)"
                )
        if not url.startswith(("http://", "https://")) or len(url) < 10:
            raise ValueError(f"entry {number}: not an http:// or https:// URL")
        if len(url) > MAX_WEBHOOK_URL:
            raise ValueError(f"entry {number}: longer than {MAX_WEBHOOK_URL} characters")
        if any(e.url == url for e in found):
            raise ValueError(f"entry {number}: the same URL twice")
        found.append(WebhookEndpoint(WebhookFormat(kind), url))
    return found


def _comma_list(value: Any) -> list[str] | None:
    """A comma-separated setting (or a list of its parts) as its non-empty stripped parts;
    None for anything else (pydantic then refuses it by the field's type)."""
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list | tuple):
        return None
    return [text for text in (str(part).strip() for part in parts) if text]


class Settings(BaseSettings):
    """Every knob of the service. Field names are the environment variable names, lower-cased."""

    model_config = SettingsConfigDict(
        env_file=PROJECT_DIR / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # Where refresh runs fetch their prices (app.listing_source): PricePerToken over MCP, or
    # genai-prices' bundled data alone (offline: a deployment without PricePerToken).
    pricing_listing_source: Literal["pricepertoken", "genai-prices"] = "pricepertoken"
    pricepertoken_mcp_url: str = DEFAULT_MCP_URL
    pricing_refresh_interval_seconds: int = Field(default=43200, ge=60)
    pricing_cache_ttl_seconds: int = Field(default=86400, ge=60)
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    pricing_admin_token: SecretStr | None = None
    pricing_cron_token: SecretStr | None = None
    # The local currency every amount is shown in (a code of currency.CURRENCIES).
    pricing_currency: str = DEFAULT_CURRENCY
    # USD -> the local currency; unset: the currency's bundled rate (``usd_to_cop``).
    pricing_usd_to_cop: Decimal | None = Field(default=None, gt=0, le=1_000_000)
    # fixed: PRICING_USD_TO_COP; trm: the day's TRM from PRICING_TRM_URL (rates.py), the fixed
    # rate served until a first TRM is accepted. The currency names the sources it can have.
    pricing_cop_rate_source: RateMode = RateMode.FIXED
    pricing_trm_url: str = DEFAULT_TRM_URL
    pricing_trm_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    pricing_trm_check_seconds: float = Field(default=3600.0, ge=1, le=86400)
    pricing_catalog_dir: Path = DEFAULT_CATALOG_DIR
    pricing_cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    pricing_log_level: str = "INFO"
    pricing_log_format: Literal["logfmt", "json"] = "logfmt"
    # summary: errors and slow requests one by one, the rest one line per route a minute;
    # all: a line per request; off: none. Metrics count every request either way.
    pricing_access_log: Literal["summary", "all", "off"] = "summary"
    pricing_slow_request_ms: float = Field(default=250.0, ge=0)
    # How long a request, a probe or the pointer check waits for the database before it answers
    # without it (tracker.DatabaseReads): a 503 with Retry-After, or the cached snapshot.
    pricing_database_wait_seconds: float = Field(default=3.0, gt=0, le=60)
    pricing_upstream_call_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    pricing_upstream_run_timeout_seconds: float = Field(default=600.0, gt=0, le=7200)
    pricing_upstream_concurrency: int = Field(default=8, ge=1, le=64)
    pricing_refresh_on_startup: bool = True
    pricing_rate_limit_per_minute: int = Field(default=10, ge=1, le=100_000)
    # The refresh lease: renewed every third of it while a run progresses; a killed holder
    # blocks refreshes for at most this long.
    pricing_refresh_lease_seconds: float = Field(default=60.0, ge=1, le=600)
    # A serving worker runs each refresh, acceptance and seed in a child process
    # (refresh_process.py); one that outlives this is killed and its run recorded as failed.
    pricing_refresh_timeout_seconds: float = Field(default=900.0, gt=0, le=14400)
    # A model the upstream stops listing keeps its last accepted price this long, unlisted.
    pricing_delisted_grace_seconds: int = Field(default=7 * 24 * 3600, ge=0)
    # Proxies whose X-Forwarded-For is believed (addresses or CIDRs); none by default.
    pricing_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Webhooks (README "Webhooks"): endpoints, the signing secret (whsec_<base64>), when
    # refreshes count as failing, the retry schedule, and each attempt's bound.
    pricing_webhook_urls: Annotated[list[WebhookEndpoint], NoDecode] = Field(default_factory=list)
    pricing_webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    pricing_webhook_failing_after_seconds: int = Field(default=86400, ge=60)
    pricing_webhook_retry_seconds: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_WEBHOOK_RETRY_SECONDS)
    )
    pricing_webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    pricing_webhook_poll_seconds: float = Field(default=1.0, ge=0.05, le=60)
    # Delivered and dead deliveries are deleted this long after they settled (30 days), then
    # the events none refers to any more; pending ones never are.
    pricing_webhook_retention_seconds: int = Field(default=30 * 86400, ge=3600)

    @field_validator("pricepertoken_mcp_url", "pricing_trm_url")
    @classmethod
    def _check_http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        # Railway and Heroku hand out postgres:// URLs; the service speaks psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                value = "postgresql+psycopg://" + value[len(prefix) :]
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "is not a database URL (expected sqlite:///path or postgresql+psycopg://...)"
            ) from None
        if url.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
            raise ValueError(f"unsupported driver {url.drivername!r} (use sqlite or postgresql)")
        if url.drivername.startswith("postgresql") and not url.host and not url.query:
            raise ValueError("a postgresql URL needs a host")
        database = url.database
        if url.drivername.startswith("sqlite") and database and database != ":memory:":
            path = Path(database)
            if not path.is_absolute() and not database.startswith("file:"):
                value = url.set(database=str(PROJECT_DIR / path)).render_as_string(
                    hide_password=False
                )
        return value

    @field_validator("pricing_catalog_dir")
    @classmethod
    def _project_relative(cls, value: Path) -> Path:
        return value if value.is_absolute() else PROJECT_DIR / value

    @field_validator(
        "pricing_log_format",
        "pricing_access_log",
        "pricing_cop_rate_source",
        "pricing_listing_source",
        mode="before",
    )
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("pricing_currency", mode="before")
    @classmethod
    def _known_currency(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        code = value.strip().upper()
        if code not in CURRENCIES:
            raise ValueError(f"must be one of {', '.join(CURRENCIES)}")
        return code

    @model_validator(mode="after")
    def _currency_can_be_served(self) -> Settings:
        currency = self.currency
        if self.pricing_cop_rate_source not in currency.rate_sources:
            raise ValueError(
                f"PRICING_COP_RATE_SOURCE={self.pricing_cop_rate_source} cannot serve "
                f"{currency.code}: use {' or '.join(currency.rate_sources)}"
            )
        if self.pricing_usd_to_cop is None and currency.default_rate is None:
            raise ValueError(
                f"{currency.code} has no bundled rate: set PRICING_USD_TO_COP (USD -> "
                f"{currency.code})"
            )
        return self

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("pricing_admin_token", "pricing_cron_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() == "":
            return None
        return value

    @field_validator("pricing_cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        return _comma_list(value) if isinstance(value, str) else value

    @field_validator("pricing_trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: Any) -> Any:
        parts = _comma_list(value)
        if parts is None:
            return value
        networks: list[str] = []
        for text in parts:
            try:
                networks.append(str(ipaddress.ip_network(text, strict=False)))
            except ValueError:
                raise ValueError(f"not an IP address or CIDR: {text[:60]!r}") from None
        return networks

    @field_validator("pricing_webhook_urls", mode="before")
    @classmethod
    def _parse_webhook_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_webhook_endpoints(value)
        return value

    @field_validator("pricing_webhook_secret", mode="before")
    @classmethod
    def _check_webhook_secret(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and value.strip() == "":
            value = None
        endpoints = info.data.get("pricing_webhook_urls") or []
        if value is None:
            if any(e.format is WebhookFormat.JSON for e in endpoints):
                raise ValueError(
                    "required when PRICING_WEBHOOK_URLS lists a JSON endpoint "
                    "(whsec_ followed by base64, e.g. from `openssl rand -base64 32`)"
                )
            return None
        text = str(value).strip()
        if not text.startswith("whsec_"):
            raise ValueError("must be whsec_ followed by base64 (the Standard Webhooks form)")
        try:
            key = base64.b64decode(text.removeprefix("whsec_") + "==", validate=False)
        except (binascii.Error, ValueError):
            raise ValueError("whsec_ must be followed by base64") from None
        if len(key) < 16:
            raise ValueError("the key after whsec_ must be at least 16 bytes of base64")
        return text

    @field_validator("pricing_webhook_retry_seconds", mode="before")
    @classmethod
    def _parse_retry_seconds(cls, value: Any) -> Any:
        parts = _comma_list(value)
        if parts is None:
            return value
        delays: list[float] = []
        for text in parts:
            try:
                delay = float(text)
            except ValueError:
                raise ValueError(f"not a number of seconds: {text[:20]!r}") from None
            if not 0.05 <= delay <= 7 * 86400:
                raise ValueError(f"each delay must be between 0.05 and 604800 seconds: {text!r}")
            delays.append(delay)
        if not 1 <= len(delays) <= 30:
            raise ValueError("between 1 and 30 comma-separated delays in seconds")
        return delays

    @field_validator("pricing_log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @property
    def currency(self) -> Currency:
        return CURRENCIES[self.pricing_currency]

    @property
    def usd_to_cop(self) -> Decimal:
        """The fixed rate: ``PRICING_USD_TO_COP``, else the currency's bundled one."""
        rate = self.pricing_usd_to_cop or self.currency.default_rate
        assert rate is not None  # _currency_can_be_served
        return rate

    @property
    def usd_to_cop_source(self) -> RateSource:
        if self.pricing_usd_to_cop is not None:
            return RateSource.OPERATOR
        return RateSource.DEFAULT

    @property
    def webhook_lease_seconds(self) -> float:
        """How long a worker's claim on a delivery lasts: beyond any one attempt's bound."""
        return self.pricing_webhook_timeout_seconds * 2 + 5

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning a validation error into one line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        given = first.get("input")
        # A check across fields (no loc) is given the whole settings: never shown.
        whole = not first["loc"] or isinstance(given, dict | BaseSettings)
        shown = "" if whole or given is None else f" (got {given!r})"
        secret = ("DATABASE_URL", "REDIS_URL", "PRICING_WEBHOOK_URLS", "PRICING_WEBHOOK_SECRET")
        if "TOKEN" in name or name in secret:
            shown = ""  # may hold a secret or a password
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigurationError(f"{name}: {message}{shown}") from None
