"""The pricing-service command: serve, migrate, refresh, catalog, webhooks, openapi."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from pricing_service import __version__
from pricing_service.config import Settings, load_settings
from pricing_service.domain import (
    AcceptedFigure,
    DeliveryStatus,
    RunTrigger,
    WebhookFormat,
    utcnow,
)
from pricing_service.errors import PricingError
from pricing_service.logs import configure_logging

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from sqlalchemy.engine import Engine


# Read by prometheus-client when a worker imports it (spelled out here so that this process,
# which serves nothing, does not import prometheus-client before the variable is set).
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
GRACEFUL_SHUTDOWN_SECONDS = 5
# How `serve` runs uvicorn, besides the app, the address and the workers (the served-worker test
# runs its worker with these too: tests/support/served_worker.py).
UVICORN_OPTIONS: dict[str, Any] = {
    "log_config": None,
    "access_log": False,
    "server_header": False,
    # scope["client"] stays the socket peer: the app decides whom to believe from
    # PRICING_TRUSTED_PROXIES (uvicorn's FORWARDED_ALLOW_IPS is not consulted).
    "proxy_headers": False,
    # No route takes a WebSocket: uvicorn's "auto" would import the websockets package into
    # every worker (about 1 MB of RSS) to hand upgrades to an app that has none.
    "ws": "none",
    # SIGTERM: stop waiting for open requests after this, so the lifespan cancels a running
    # refresh (recorded as failed, lease released) and the process exits.
    "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pricing-service", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="bind address (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: PORT or 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    sub.add_parser("migrate", help="upgrade the database to the latest migration")
    refresh = sub.add_parser("refresh", help="fetch prices from PricePerToken now (for cron)")
    refresh.add_argument(
        "--force", action="store_true", help="run even if a refresh just succeeded"
    )
    refresh.add_argument(
        "--accept",
        type=int,
        metavar="RUN_ID",
        help="apply what the gate held instead of fetching: a held run, or its held prices",
    )
    refresh.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="MODEL_ID",
        help="with --accept: only this model's held price (repeatable)",
    )
    refresh.add_argument(
        "--figure",
        choices=[figure.value for figure in AcceptedFigure],
        help="with --accept: apply the upstream's proposed figure (default) or, for prices "
        "held because the second source disagrees, the second source's figure",
    )
    rate = sub.add_parser(
        "rate", help="the USD -> COP rate: the one served, the held ones, the stored TRMs"
    )
    rate.add_argument(
        "--accept", type=int, metavar="RATE_ID", help="serve this held rate (see the list)"
    )
    rate.add_argument(
        "--fetch", action="store_true", help="fetch the TRM now (PRICING_COP_RATE_SOURCE=trm)"
    )
    sub.add_parser("openapi", help="print the OpenAPI document (docs/openapi.json is this output)")
    catalog = sub.add_parser("catalog", help="curation catalog tools")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True)
    catalog_sub.add_parser("check", help="validate catalog/ (PRICING_CATALOG_DIR)")
    suggest = catalog_sub.add_parser(
        "suggest",
        help="rank the current snapshot's models per category by its [weights]",
    )
    suggest.add_argument("--category", metavar="ID", help="only this category")
    suggest.add_argument(
        "--write",
        action="store_true",
        help="apply the suggestion to [curated] in categories.toml, keeping its comments",
    )
    aliases = catalog_sub.add_parser("aliases", help="alias tools")
    aliases.add_argument(
        "--suggest",
        action="store_true",
        required=True,
        help="print aliases.toml lines for curated ids genai-prices maps to a listed model",
    )
    aliases.add_argument(
        "--from-service",
        metavar="URL",
        help="also the ids clients asked a running service for that nothing resolved, read "
        "from its /metrics (merged across workers; counted since each worker started)",
    )
    webhooks = sub.add_parser("webhooks", help="webhook deliveries: list, retry, test")
    webhooks_sub = webhooks.add_subparsers(dest="webhooks_command", required=True)
    listing = webhooks_sub.add_parser("list", help="the newest deliveries, newest first")
    listing.add_argument("--status", type=DeliveryStatus, choices=list(DeliveryStatus))
    listing.add_argument("--limit", type=int, default=50, help="at most this many (1..1000)")
    retry = webhooks_sub.add_parser("retry", help="send a dead delivery again (due now)")
    retry.add_argument("delivery_id", type=int, metavar="ID")
    test = webhooks_sub.add_parser(
        "test", help="send a signed webhook.test event to URL now (PRICING_WEBHOOK_SECRET)"
    )
    test.add_argument("url", metavar="URL", help="[json:|slack:|discord:]https://...")
    return parser


def _webhooks(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from pricing_service.db import create_db_engine, storage_error

    if args.webhooks_command == "test":
        return _webhooks_test(settings, args.url)
    engine = create_db_engine(settings.database_url)
    try:
        return _webhooks_on(engine, args)
    except SQLAlchemyError as exc:  # down, or not migrated: the kind only, never the SQL
        error = storage_error(exc)
        detail = error.detail if error is not None else type(exc).__name__
        print(
            f"pricing-service: {detail} (is it migrated? pricing-service migrate)", file=sys.stderr
        )
        return 2
    finally:
        engine.dispose()


def _webhooks_on(engine: Engine, args: argparse.Namespace) -> int:

    from pricing_service.domain import MAX_RUN_ID
    from pricing_service.webhooks import outbox
    from pricing_service.webhooks.events import shown_url

    if args.webhooks_command == "retry":
        if not 1 <= args.delivery_id <= MAX_RUN_ID:
            raise SystemExit(f"pricing-service: ID must be from 1 to {MAX_RUN_ID}")
        found = outbox.retry(engine, args.delivery_id, utcnow())
        if found is None:
            existing = outbox.get_delivery(engine, args.delivery_id)
            why = "does not exist" if existing is None else f"is {existing.status}, not dead"
            print(f"webhooks: delivery {args.delivery_id} {why}", file=sys.stderr)
            return 1
        print(
            f"webhooks: delivery {found.id} ({found.event_type} to "
            f"{shown_url(found.endpoint)}) is pending again, due now"
        )
        return 0
    if not 1 <= args.limit <= 1000:
        raise SystemExit("pricing-service: --limit must be from 1 to 1000")
    counts = outbox.counts(engine)
    print("webhooks: " + " ".join(f"{k}={v}" for k, v in counts.items()))
    for d in outbox.deliveries(engine, status=args.status, limit=args.limit):
        when = d.delivered_at or d.next_attempt_at
        print(
            f"{d.id}\t{d.status}\t{d.event_type}\tevent={d.event_id}\t"
            f"attempts={d.attempts}\t{when.isoformat(timespec='seconds')}\t"
            f"{d.format}:{shown_url(d.endpoint)}"
            + (f"\terror={d.last_error!r}" if d.last_error else "")
        )
    return 0


def _webhooks_test(settings: Settings, url: str) -> int:
    import anyio

    from pricing_service.config import parse_webhook_endpoints
    from pricing_service.webhooks.delivery import send_test
    from pricing_service.webhooks.events import shown_url

    try:
        (endpoint,) = parse_webhook_endpoints(url)
    except ValueError as exc:
        raise SystemExit(f"pricing-service: URL: {str(exc).removeprefix('entry 1: ')}") from None
    secret = settings.pricing_webhook_secret
    if endpoint.format is WebhookFormat.JSON and secret is None:
        raise SystemExit("pricing-service: PRICING_WEBHOOK_SECRET is not set: nothing to sign with")
    message_id, attempt = anyio.run(
        lambda: send_test(
            endpoint.url,
            format_name=endpoint.format,
            secret=secret.get_secret_value() if secret is not None else None,
            timeout_seconds=settings.pricing_webhook_timeout_seconds,
        )
    )
    where = f"{endpoint.format}:{shown_url(endpoint.url)}"
    if attempt.ok:
        status = attempt.status_code
        print(f"webhooks: test event {message_id} delivered to {where} (HTTP {status})")
        return 0
    print(f"webhooks: test event {message_id} to {where} failed: {attempt.error}", file=sys.stderr)
    return 1


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import os
    import shutil
    import tempfile

    import uvicorn

    from pricing_service.catalog import load_catalog
    from pricing_service.migrate import current_revision

    if args.workers < 1:
        raise SystemExit("pricing-service: --workers must be at least 1")
    load_catalog(settings.pricing_catalog_dir)  # refuse to start on an invalid catalog
    # Refuse to start without a database (one line, exit 2); a database that is up but not
    # migrated is served, and /ready says so.
    current_revision(settings.database_url)
    metrics_dir = None
    if args.workers > 1:
        # Each worker is a process with its own counters: prometheus-client's multiprocess mode
        # keeps them in files that any worker merges when scraped. The variable must be set
        # before the workers import prometheus-client, and the directory must start empty.
        metrics_dir = tempfile.mkdtemp(prefix="pricing-metrics-")
        os.environ[METRICS_DIR_ENV] = metrics_dir
    try:
        uvicorn.run(
            "pricing_service.app:create_app_from_env",
            factory=True,
            host=args.host or settings.host,
            port=args.port or settings.port,
            workers=args.workers,
            **UVICORN_OPTIONS,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _migrate(settings: Settings) -> int:
    from pricing_service.migrate import upgrade

    before, after = upgrade(settings.database_url)
    if before == after:
        print(f"migrate: already at the latest revision {after}")
    else:
        print(f"migrate: upgraded from revision {before or 'none (empty database)'} to {after}")
    return 0


def _catalog_check(settings: Settings) -> int:
    from pricing_service.catalog import check_catalog, load_catalog

    for line in check_catalog(settings.pricing_catalog_dir):
        print(line)
    undecided = _curated_held_in_seed(load_catalog(settings.pricing_catalog_dir))
    if undecided:
        print(
            "curated models whose bundled seed price the gate holds, with no decision in "
            f"decisions.toml (a fresh install would show them without a price): "
            f"{'; '.join(undecided)}",
            file=sys.stderr,
        )
        return 1
    print("curated models held in the bundled seed without a decision: none")
    return 0


def _curated_held_in_seed(catalog: Any) -> list[str]:
    """Curated ids whose bundled seed price the gate would hold, the catalog's decisions
    applied, each with the reason: what a fresh install's curated view would show unpriced."""
    from pricing_service.gate import plan_snapshot
    from pricing_service.listings.pricepertoken_rows import normalize_listing
    from pricing_service.model_kinds import is_local_id
    from pricing_service.normalize import PriceIndex
    from pricing_service.second_source import second_source
    from pricing_service.seed import load_seed

    seed = load_seed()
    listing = normalize_listing(seed.rows, seed.details)
    plan = plan_snapshot(
        {},
        listing.prices,
        now=seed.recorded_at,
        grace_seconds=0,
        free_ids=catalog.free,
        second_prices=second_source().prices(listing.prices, at=seed.recorded_at),
        decisions=catalog.decisions,
    )
    held = {d.model_id: d for d in plan.doubts}
    index = PriceIndex(listing.prices, catalog.aliases)
    found = []
    for category in catalog.categories:
        for model_id in category.model_ids:
            price = None if is_local_id(model_id) else index.resolve(model_id)
            doubt = held.get(price.model_id) if price is not None else None
            if doubt is not None:
                found.append(
                    f"{model_id} ({category.id}: {doubt.reason.value}, {doubt.detail}; add a "
                    f"[[decision]] for {doubt.model_id})"
                )
    return found


def _current_prices(settings: Settings) -> tuple[str, list[Any]]:
    """The current snapshot's prices from the database; the bundled seed when there are none."""
    from pricing_service.db import create_db_engine
    from pricing_service.listings.pricepertoken_rows import normalize_listing
    from pricing_service.repository import Repository
    from pricing_service.seed import load_seed

    engine = create_db_engine(settings.database_url)
    try:
        found = Repository(engine).current_snapshot()
    except Exception:  # not migrated, or unreachable: the recording still answers
        found = None
    finally:
        engine.dispose()
    if found is not None:
        return f"snapshot #{found[0].id} ({found[0].source})", found[1]
    seed = load_seed()
    listing = normalize_listing(seed.rows, seed.details)
    return f"bundled seed ({seed.recorded_at.date()})", list(listing.prices)


def _catalog_suggest(settings: Settings, category_id: str | None, write: bool = False) -> int:
    from pricing_service.catalog import load_catalog
    from pricing_service.suggest import curated_after, suggest

    catalog = load_catalog(settings.pricing_catalog_dir)
    chosen = [c for c in catalog.categories if c.weights]
    if category_id is not None:
        chosen = [c for c in chosen if c.id == category_id]
        if not chosen:
            print(f"pricing-service: no category {category_id!r} with [weights]", file=sys.stderr)
            return 2
    where, prices = _current_prices(settings)
    print(
        f"suggest: from {where}; " + ("writes categories.toml" if write else "nothing is written")
    )
    changed: dict[str, tuple[str, ...]] = {}
    for category in chosen:
        result = suggest(category, prices, catalog)
        after = curated_after(category, result)
        if after != category.model_ids:
            changed[category.id] = after
        weights = ", ".join(f"{m} {w}" for m, w in category.weights)
        print(f"\n[{category.id}] weights: {weights}")
        print(f"  curated: {', '.join(category.model_ids)}")
        for n, ranked in enumerate(result.ranked, start=1):
            shown = " ".join(
                f"{m}={'null' if v is None else f'{v:g}'}" for m, v in ranked.figures.items()
            )
            print(f"  {n}. {ranked.model_id} score={ranked.score:.3f} {shown}")
        print(f"  kept: {', '.join(result.kept) or '-'}")
        print(f"  suggested to add: {', '.join(result.add) or '-'}")
        print(f"  suggested to drop: {', '.join(result.drop) or '-'}")
        if result.unranked:
            print(f"  not judged (local, override or unmatched): {', '.join(result.unranked)}")
    if write:
        return _write_curated(settings, changed)
    return 0


def _write_curated(settings: Settings, changed: dict[str, tuple[str, ...]]) -> int:
    """Store the new curated lists; the catalog must still load, or the file is put back."""
    from pricing_service.catalog import CATEGORIES_FILE, load_catalog
    from pricing_service.catalog_edit import rewrite_curated
    from pricing_service.errors import CatalogError

    if not changed:
        print("\nsuggest: the curated lists already match the suggestion; nothing written")
        return 0
    directory = settings.pricing_catalog_dir
    path = directory / CATEGORIES_FILE
    before = path.read_text(encoding="utf-8")
    _replace_text(path, rewrite_curated(before, changed))
    try:
        load_catalog(directory)
    except CatalogError as exc:
        _replace_text(path, before)
        print(f"pricing-service: not written, {exc.detail}", file=sys.stderr)
        return 2
    print(f"\nsuggest: wrote {path}: {', '.join(changed)} (check it with git diff)")
    for category_id, model_ids in changed.items():
        print(f"  {category_id} = {', '.join(model_ids)}")
    return 0


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file renamed over it)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


UNKNOWN_IDS_METRIC = "pricing_unknown_ids_asked"
OTHER_IDS = "(other)"  # the metric's label for ids past a worker's limit


def asked_unknown_ids(metrics_text: str) -> dict[str, int]:
    """Ids clients asked for that nothing resolved, with how often: from a /metrics scrape.

    The service counts them per worker in memory (PricingService.unknown_ids) and exports them
    as ``pricing_unknown_ids_asked_total{model_id,endpoint}``, which /metrics merges across
    workers; endpoints are added up. Most asked first.
    """
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != UNKNOWN_IDS_METRIC:
            continue
        for sample in family.samples:
            model_id = sample.labels.get("model_id")
            if not sample.name.endswith("_total") or not model_id or model_id == OTHER_IDS:
                continue
            counts[model_id] = counts.get(model_id, 0) + int(sample.value)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _scrape_metrics(base_url: str) -> str:
    import urllib.request

    url = base_url.rstrip("/") + "/metrics"
    if not url.startswith(("http://", "https://")):
        raise SystemExit(f"pricing-service: --from-service needs an http(s) URL, got {base_url!r}")
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (scheme checked)
            return str(answer.read().decode("utf-8"))
    except OSError as exc:
        raise SystemExit(f"pricing-service: cannot read {url}: {exc}") from None


def _aliases_suggest(settings: Settings, from_service: str | None = None) -> int:
    from pricing_service.catalog import load_catalog, upstream_priced
    from pricing_service.normalize import PriceIndex
    from pricing_service.second_source import second_source

    catalog = load_catalog(settings.pricing_catalog_dir)
    asked = asked_unknown_ids(_scrape_metrics(from_service)) if from_service else {}
    where, prices = _current_prices(settings)
    index = PriceIndex(prices, catalog.aliases)
    source = second_source()
    wanted = [
        model_id
        for model_id in upstream_priced(catalog, dict.fromkeys([*catalog.referenced_ids(), *asked]))
        if index.resolve(model_id) is None
    ]
    print(f"# aliases --suggest: from {where} and {source.version}; add a line by hand to use it")
    if from_service:
        print(f"# with {len(asked)} unresolved ids clients asked {from_service} for (its /metrics)")
    for model_id in wanted:
        count = asked.get(model_id)
        times = f"; asked {count} time{'' if count == 1 else 's'}" if count else ""
        found = source.resolve(model_id)
        if found is None:
            print(f"# {model_id}: genai-prices does not know it{times}")
            continue
        provider_id, genai_id = found
        targets = sorted(
            p.model_id
            for p in prices
            if source.provider_id(p.provider) == provider_id
            and source.matches(provider_id, genai_id, p.model_id)
        )
        if not targets:
            print(
                f"# {model_id}: genai-prices' {provider_id}/{genai_id}, not listed upstream{times}"
            )
            continue
        note = (
            f"  # genai-prices {provider_id}/{genai_id}"
            + (f"; also {', '.join(targets[1:])}" if len(targets) > 1 else "")
            + times
        )
        print(f'"{model_id}" = "{targets[0]}"{note}')
    return 0


async def _refresh(
    settings: Settings,
    force: bool,
    accept: int | None,
    models: list[str],
    figure: str | None = None,
) -> int:
    import signal

    import anyio

    from pricing_service.app import build_runtime
    from pricing_service.domain import RunStatus
    from pricing_service.errors import RefreshInProgress

    async with build_runtime(settings) as runtime, anyio.create_task_group() as tasks:
        # SIGTERM (a cron timeout, a redeploy) cancels the run: it is recorded as failed and
        # the lease is released, instead of the process vanishing with the run "running".
        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    print("refresh: stopping on signal", file=sys.stderr, flush=True)
                    tasks.cancel_scope.cancel()

        tasks.start_soon(on_signal)
        runtime.refresher.observers.append(_print_phase)
        try:
            if accept is not None:
                acceptance = await runtime.refresher.accept(
                    accept,
                    by="cli",
                    model_ids=models,
                    figure=figure or AcceptedFigure.PROPOSED.value,
                )
                print(
                    f"refresh: accepted {', '.join(acceptance.accepted)} of run {accept}"
                    + (f" at the {figure.replace('_', ' ')} figure" if figure else "")
                    + f"; serving snapshot {acceptance.snapshot.id}"
                )
                tasks.cancel_scope.cancel()
                return 0
            outcome = await runtime.refresher.refresh(RunTrigger.CLI, force=force)
        except RefreshInProgress as exc:
            print(f"refresh: {exc.detail}")
            tasks.cancel_scope.cancel()
            return 3
        tasks.cancel_scope.cancel()
        run = outcome.run
        if not outcome.started:
            print(f"refresh: run {run.id} succeeded moments ago; nothing to do (use --force)")
        print(
            f"refresh: run {run.id} {run.status.value}"
            f" rows={run.rows_seen} priced={run.priced} unknown={run.unknown}"
            f" changes={run.changes} duration_ms={run.duration_ms}"
            + (f" held_reason={run.held_reason!r}" if run.held_reason else "")
            + (f" held_prices={len(run.held_prices)}" if run.held_prices else "")
            + (f" error={run.error!r}" if run.error else "")
        )
        if run.status is RunStatus.HELD:
            print(f"refresh: to apply it anyway: pricing-service refresh --accept {run.id}")
            return 4
        return 0 if run.status is RunStatus.SUCCEEDED else 1
    return 1  # cancelled by a signal


def _print_phase(name: str, fields: dict[str, object]) -> None:
    shown = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
    print(f"{name} {shown}", flush=True)


def _rate(settings: Settings, accept: int | None, fetch: bool) -> int:
    import getpass

    import anyio

    from pricing_service.currency import RateMode, RateSource
    from pricing_service.db import create_db_engine
    from pricing_service.rate_store import RateStore
    from pricing_service.rates import RateKeeper, fixed_rate

    engine = create_db_engine(settings.database_url)
    try:
        store = RateStore(engine)
        if accept is not None:
            accepted = store.accept(accept, by=f"cli ({getpass.getuser()})"[:64], now=utcnow())
            print(
                f"rate {accepted.id} accepted: {accepted.rate} COP per USD valid from "
                f"{accepted.valid_from}; every worker serves the newest accepted rate within "
                "30 s"
            )
            return 0
        if fetch:
            if settings.pricing_cop_rate_source is not RateMode.TRM:
                raise SystemExit("pricing-service: --fetch needs PRICING_COP_RATE_SOURCE=trm")
            keeper = RateKeeper(
                mode=RateMode.TRM,
                fixed=fixed_rate(settings.usd_to_cop, settings.usd_to_cop_source),
                store=store,
                url=settings.pricing_trm_url,
                timeout_seconds=settings.pricing_trm_timeout_seconds,
                check_seconds=settings.pricing_trm_check_seconds,
            )
            anyio.run(keeper.fetch)
            state = keeper.state()
            if state.last_error or state.unparsable:
                print(f"fetch failed: {state.last_error or state.unparsable}", file=sys.stderr)
                return 1
        print(f"mode: {settings.pricing_cop_rate_source}")
        trm = settings.pricing_cop_rate_source is RateMode.TRM
        current = store.current(RateSource.TRM) if trm else None
        if current is None:
            print(f"served: {settings.usd_to_cop} ({settings.usd_to_cop_source}, fixed)")
        else:
            print(
                f"served: {current.rate} (trm, valid {current.valid_from} to "
                f"{current.valid_to or '-'}, rate {current.id}, last confirmed "
                f"{current.checked_at:%Y-%m-%d %H:%M} UTC)"
            )
        for held in store.held(RateSource.TRM):
            print(
                f"held: rate {held.id}: {held.rate} valid from {held.valid_from}: {held.reason} "
                f"(pricing-service rate --accept {held.id})"
            )
        for row in store.history(RateSource.TRM, limit=10):
            print(f"stored: {row.id} {row.valid_from} {row.rate} {row.status.value}")
        return 0
    finally:
        engine.dispose()


def _openapi() -> int:
    from pricing_service.app import openapi_json

    sys.stdout.write(openapi_json())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "openapi":
        # Needs no database and no configuration: the document is the same everywhere.
        return _openapi()
    try:
        settings = load_settings()
        configure_logging(settings.pricing_log_level, settings.pricing_log_format)
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "migrate":
            return _migrate(settings)
        if args.command == "catalog":
            if args.catalog_command == "suggest":
                return _catalog_suggest(settings, args.category, args.write)
            if args.catalog_command == "aliases":
                return _aliases_suggest(settings, args.from_service)
            return _catalog_check(settings)
        if args.command == "rate":
            return _rate(settings, args.accept, args.fetch)
        if args.command == "webhooks":
            return _webhooks(settings, args)
        if args.command == "refresh":
            import anyio

            if args.model and args.accept is None:
                raise SystemExit("pricing-service: --model needs --accept RUN_ID")
            if args.figure and args.accept is None:
                raise SystemExit("pricing-service: --figure needs --accept RUN_ID")
            from pricing_service.domain import MAX_RUN_ID

            if args.accept is not None and not 1 <= args.accept <= MAX_RUN_ID:
                raise SystemExit(
                    f"pricing-service: --accept must be a run id from 1 to {MAX_RUN_ID}, "
                    f"not {args.accept}"
                )
            return anyio.run(_refresh, settings, args.force, args.accept, args.model, args.figure)
    except PricingError as exc:
        print(f"pricing-service: {exc.detail}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
