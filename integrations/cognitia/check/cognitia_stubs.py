"""Import the applied checkout's backend modules without Open WebUI's application.

``open_webui/__init__.py`` starts Open WebUI's CLI (typer, uvicorn) and ``utils/auth.py`` its
database; the kit's router and budget code need neither. This module makes ``open_webui`` the
checkout's package directory without running its ``__init__``, and puts stand-ins for
``open_webui.utils.auth`` (a verified user from a bearer token), ``open_webui.models.budgets``
and ``open_webui.models.pricing`` (the budget tests patch them) in ``sys.modules``.
Used by check.sh, both for the kit's router in front of the service and for Cognitia's tests.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

CHECK_TOKEN = "cognitia-check-user"  # noqa: S105 - the check's stand-in session, not a secret


def install(backend: Path) -> None:
    package = types.ModuleType("open_webui")
    package.__path__ = [str(backend / "open_webui")]
    sys.modules["open_webui"] = package

    from fastapi import Header, HTTPException

    def get_verified_user(authorization: str | None = Header(default=None)) -> dict[str, str]:
        if authorization != f"Bearer {CHECK_TOKEN}":
            raise HTTPException(status_code=401, detail="Not authenticated")
        return {"id": "check-user", "role": "user"}

    auth = types.ModuleType("open_webui.utils.auth")
    auth.get_verified_user = get_verified_user  # type: ignore[attr-defined]
    auth.get_admin_user = get_verified_user  # type: ignore[attr-defined]
    sys.modules["open_webui.utils.auth"] = auth

    class _Budgets:
        def get_budget_by_user_id(self, user_id: str, db: object = None) -> None:
            return None

        def debit_and_record(self, **kwargs: object) -> None:
            return None

    budgets = types.ModuleType("open_webui.models.budgets")
    budgets.Budgets = _Budgets()  # type: ignore[attr-defined]
    sys.modules["open_webui.models.budgets"] = budgets
