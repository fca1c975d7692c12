"""Console sessions: signed, expiring, bound to the admin token; CSRF tokens bound to a session."""

from __future__ import annotations

from pricing_service.console.session import ConsoleAuth, Signer, derive_key

NOW = 1_800_000_000.0


def signer(token: str = "admin-token", now: float = NOW) -> Signer:
    return Signer(derive_key(token), clock=lambda: now)


def test_a_cookie_reads_back_until_it_expires() -> None:
    value, session = signer().issue("session", 3600)
    assert signer(now=NOW + 3599).read(value, "session") == session
    assert signer(now=NOW + 3600).read(value, "session") is None


def test_a_cookie_of_another_token_or_kind_or_tampered_is_refused() -> None:
    value, _ = signer().issue("session", 3600)
    assert signer("another-token").read(value, "session") is None
    assert signer().read(value, "login") is None
    payload, _, mac = value.partition(".")
    assert signer().read(f"{payload}.{mac[:-2]}AA", "session") is None
    forged_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    assert signer().read(f"{forged_payload}.{mac}", "session") is None
    for junk in ("", "x", "a.b.c", "....", "é.é", "a" * 5000):
        assert signer().read(junk, "session") is None


def test_csrf_tokens_belong_to_one_session() -> None:
    s = signer()
    _, first = s.issue("session", 60)
    _, second = s.issue("session", 60)
    assert s.check_csrf(first, s.csrf(first))
    assert not s.check_csrf(first, s.csrf(second))
    assert not s.check_csrf(first, "")
    assert not s.check_csrf(first, None)
    assert signer("another-token").csrf(first) != s.csrf(first)


def test_no_token_no_console() -> None:
    assert not ConsoleAuth(None).configured
    assert ConsoleAuth("t").configured
    assert derive_key("a") != derive_key("b")
