"""Signed console sessions and CSRF tokens, with the standard library's ``hmac``.

A cookie value is ``base64url(json payload) "." base64url(HMAC-SHA256(key, payload))``; the
payload holds its kind (``login``: the login form's pre-session, ``session``: logged in), a random
id and an expiry. The key is derived from the admin token (HMAC-SHA256 keyed with the token over
a fixed label), so every worker and replica derives the same key without a new setting, and
rotating PRICING_ADMIN_TOKEN invalidates every session at once. A CSRF token is the HMAC of the
session id under the same key: a form posted from another site cannot know it.

"Salir" ends a session on the server too: its id is recorded as revoked in the database
(``revoked_session``, until the cookie would have expired), which every worker and replica reads
on each console request, so a cookie copied before the logout opens nothing afterwards. The
database rather than Redis: it is always there (Redis is optional), and the console's few
requests do not need Redis's speed.

Hand-written rather than ``itsdangerous``: it is thirty lines over ``hmac.compare_digest``,
and the one thing a library would add (key rotation lists) the token-derived key already covers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import anyio.to_thread

if TYPE_CHECKING:
    from collections.abc import Callable

KEY_LABEL = b"cognitia-pricing/admin-console/session/v1"
SESSION_SECONDS = 8 * 3600  # a working day
LOGIN_SECONDS = 3600  # the login form's pre-session
MAX_COOKIE_LENGTH = 1024
KINDS = ("login", "session")


def derive_key(admin_token: str) -> bytes:
    """The signing key of the console: changes whenever the admin token does."""
    return hmac.new(admin_token.encode(), KEY_LABEL, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    kind: str  # "login" or "session"
    sid: str
    expires: int  # epoch seconds

    def remaining(self, now: float) -> int:
        return max(0, int(self.expires - now))


class Signer:
    """Issues and checks console cookies and CSRF tokens under one key."""

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.clock = clock

    def _mac(self, message: bytes) -> bytes:
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def issue(self, kind: str, seconds: int) -> tuple[str, Session]:
        """A new cookie value of ``kind`` valid for ``seconds``, and the session it carries."""
        if kind not in KINDS:
            raise ValueError(f"unknown session kind {kind!r}")
        session = Session(
            kind=kind, sid=secrets.token_urlsafe(18), expires=int(self.clock()) + seconds
        )
        body = json.dumps(
            {"k": session.kind, "s": session.sid, "e": session.expires}, separators=(",", ":")
        ).encode()
        payload = _b64(body)
        return f"{payload}.{_b64(self._mac(payload.encode()))}", session

    def read(self, value: str | None, kind: str) -> Session | None:
        """The session a cookie value carries when its signature, kind and expiry hold."""
        if not value or len(value) > MAX_COOKIE_LENGTH or value.count(".") != 1:
            return None
        payload, _, signature = value.partition(".")
        try:
            given = _unb64(signature)
            data = json.loads(_unb64(payload))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(given, self._mac(payload.encode())):
            return None
        if not isinstance(data, dict):
            return None
        found_kind, sid, expires = data.get("k"), data.get("s"), data.get("e")
        if found_kind != kind or not isinstance(sid, str) or not isinstance(expires, int):
            return None
        if expires <= self.clock():
            return None
        return Session(kind=found_kind, sid=sid, expires=expires)

    def csrf(self, session: Session) -> str:
        """The CSRF token of the forms of ``session``."""
        return _b64(self._mac(f"csrf|{session.kind}|{session.sid}".encode()))

    def check_csrf(self, session: Session, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf(session).encode())


class RevokedSessions(Protocol):
    """Where ended sessions are recorded (``Repository``)."""

    def revoke_session(self, sid: str, expires_at: datetime, now: datetime) -> None: ...

    def session_revoked(self, sid: str) -> bool: ...


class ConsoleAuth:
    """The console's sessions: None of them when no admin token is configured."""

    def __init__(
        self,
        admin_token: str | None,
        *,
        session_seconds: int = SESSION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = Signer(derive_key(admin_token), clock=clock) if admin_token else None
        self.session_seconds = session_seconds

    @property
    def configured(self) -> bool:
        return self.signer is not None

    async def revoke(self, store: RevokedSessions, session: Session) -> None:
        """End ``session`` for every worker and replica (logout)."""
        clock = self.signer.clock if self.signer is not None else time.time
        now = datetime.fromtimestamp(clock(), UTC)
        expires = datetime.fromtimestamp(session.expires, UTC)
        await anyio.to_thread.run_sync(lambda: store.revoke_session(session.sid, expires, now))

    async def revoked(self, store: RevokedSessions, session: Session) -> bool:
        return await anyio.to_thread.run_sync(store.session_revoked, session.sid)
