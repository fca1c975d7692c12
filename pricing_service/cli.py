"""The pricing-service command: serve, migrate, refresh, catalog check."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pricing_service.config import Settings, load_settings
from pricing_service.errors import PricingError
from pricing_service.logs import configure_logging

if TYPE_CHECKING:
    from collections.abc import Sequence


# Read by prometheus-client when a worker imports it (spelled out here so that this process,
# which serves nothing, does not import prometheus-client before the variable is set).
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pricing-service", description=__doc__)
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
    catalog = sub.add_parser("catalog", help="curation catalog tools")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True)
    catalog_sub.add_parser("check", help="validate catalog/ (PRICING_CATALOG_DIR)")
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import os
    import shutil
    import tempfile

    import uvicorn

    from pricing_service.catalog import load_catalog

    if args.workers < 1:
        raise SystemExit("pricing-service: --workers must be at least 1")
    load_catalog(settings.pricing_catalog_dir)  # refuse to start on an invalid catalog
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
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=True,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _migrate(settings: Settings) -> int:
    from pricing_service.migrate import upgrade

    upgrade(settings.database_url)
    print("migrate: database is at the latest revision")
    return 0


def _catalog_check(settings: Settings) -> int:
    from pricing_service.catalog import check_catalog

    for line in check_catalog(settings.pricing_catalog_dir):
        print(line)
    return 0


async def _refresh(settings: Settings, force: bool) -> int:

    from pricing_service.app import build_runtime
    from pricing_service.domain import RunStatus
    from pricing_service.errors import RefreshInProgress

    async with build_runtime(settings) as runtime:
        runtime.refresher.observers.append(_print_phase)
        try:
            outcome = await runtime.refresher.refresh("cli", force=force)
        except RefreshInProgress as exc:
            print(f"refresh: {exc.detail}")
            return 3
        run = outcome.run
        if not outcome.started:
            print(f"refresh: run {run.id} succeeded moments ago; nothing to do (use --force)")
        print(
            f"refresh: run {run.id} {run.status.value}"
            f" rows={run.rows_seen} priced={run.priced} unknown={run.unknown}"
            f" changes={run.changes} duration_ms={run.duration_ms}"
            + (f" error={run.error!r}" if run.error else "")
        )
        return 0 if run.status is RunStatus.SUCCEEDED else 1


def _print_phase(name: str, fields: dict[str, object]) -> None:
    shown = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
    print(f"{name} {shown}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.pricing_log_level)
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "migrate":
            return _migrate(settings)
        if args.command == "catalog":
            return _catalog_check(settings)
        if args.command == "refresh":
            import anyio

            return anyio.run(_refresh, settings, args.force)
    except PricingError as exc:
        print(f"pricing-service: {exc.detail}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
