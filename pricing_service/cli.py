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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pricing-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="bind address (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: PORT or 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    sub.add_parser("migrate", help="upgrade the database to the latest migration")
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    if args.workers < 1:
        raise SystemExit("pricing-service: --workers must be at least 1")
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
    return 0


def _migrate(settings: Settings) -> int:
    from pricing_service.migrate import upgrade

    upgrade(settings.database_url)
    print("migrate: database is at the latest revision")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.pricing_log_level)
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "migrate":
            return _migrate(settings)
    except PricingError as exc:
        print(f"pricing-service: {exc.detail}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
