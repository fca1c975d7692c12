"""Bearer tokens for cron and admin endpoints, compared in constant time."""

from __future__ import annotations

import hmac
from enum import StrEnum

from pricing_service.errors import AccessNotConfigured, NotAuthorized


class Role(StrEnum):
    CRON = "cron"
    ADMIN = "admin"


class Access:
    """Knows the configured tokens; answers which role a request's Authorization header has."""

    def __init__(self, *, admin_token: str | None, cron_token: str | None) -> None:
        self._admin = admin_token.encode() if admin_token else None
        self._cron = cron_token.encode() if cron_token else None

    @staticmethod
    def _bearer(authorization: str | None) -> bytes | None:
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip().encode()

    def require(self, authorization: str | None, *, admin_only: bool) -> Role:
        """The caller's role, or NotAuthorized / AccessNotConfigured."""
        if admin_only and self._admin is None:
            raise AccessNotConfigured("admin access not configured: set PRICING_ADMIN_TOKEN")
        if self._admin is None and self._cron is None:
            raise AccessNotConfigured(
                "refresh access not configured: set PRICING_CRON_TOKEN or PRICING_ADMIN_TOKEN"
            )
        given = self._bearer(authorization)
        if given is None:
            raise NotAuthorized("missing bearer token")
        # Compare against every configured token so timing says nothing about which one matched.
        is_admin = self._admin is not None and hmac.compare_digest(given, self._admin)
        is_cron = self._cron is not None and hmac.compare_digest(given, self._cron)
        if is_admin:
            return Role.ADMIN
        if is_cron and not admin_only:
            return Role.CRON
        raise NotAuthorized(
            "invalid token" if not is_cron else "this endpoint needs the admin token"
        )
