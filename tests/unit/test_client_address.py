"""Which address a request is counted under: the socket peer, X-Forwarded-For only from trusted
proxies, bounded keys, and failed authentication in a bucket of its own."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing_service.access import (
    AUTH_FAILURE_BUCKET,
    MAX_CLIENT_KEY,
    MAX_FORWARDED_HOPS,
    MAX_LOCAL_CLIENTS,
    UNKNOWN_CLIENT,
    Access,
    RateLimiter,
    TrustedProxies,
    admit,
    parse_networks,
    rate_key,
)
from pricing_service.config import load_settings
from pricing_service.errors import ConfigurationError, NotAuthorized, RateLimited

if TYPE_CHECKING:
    from litestar.types import HTTPScope

PROXY = "10.0.0.2"
RAILWAY = TrustedProxies(parse_networks("10.0.0.0/8, 100.64.0.0/10"))
NONE = TrustedProxies()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("proxies", "peer", "headers", "expected"),
    [
        # No trusted proxies: the header is ignored, whoever sends it.
        (NONE, "198.51.100.7", ["203.0.113.9"], "198.51.100.7"),
        (NONE, PROXY, ["203.0.113.9"], PROXY),
        # A peer that is not a trusted proxy speaks for itself.
        (RAILWAY, "198.51.100.7", ["203.0.113.9"], "198.51.100.7"),
        # Behind a trusted proxy: the entry it appended.
        (RAILWAY, PROXY, ["203.0.113.9"], "203.0.113.9"),
        (RAILWAY, PROXY, [" 203.0.113.9 "], "203.0.113.9"),
        # Whatever the client wrote left of it is ignored.
        (RAILWAY, PROXY, ["1.1.1.1, 2.2.2.2, 203.0.113.9"], "203.0.113.9"),
        (RAILWAY, PROXY, ["spoofed-junk, 203.0.113.9"], "203.0.113.9"),
        # Trusted hops are skipped, right to left.
        (RAILWAY, PROXY, ["203.0.113.9, 100.64.1.1, 10.1.2.3"], "203.0.113.9"),
        # Several headers read as one list, in order.
        (RAILWAY, PROXY, ["1.1.1.1", "203.0.113.9"], "203.0.113.9"),
        (RAILWAY, PROXY, [b"1.1.1.1", b"203.0.113.9, 10.9.9.9"], "203.0.113.9"),
        # Ports and brackets as proxies write them; IPv6; IPv4-mapped IPv6.
        (RAILWAY, PROXY, ["203.0.113.9:5555"], "203.0.113.9"),
        (RAILWAY, PROXY, ["[2001:db8::1]:443"], "2001:db8::1"),
        (RAILWAY, PROXY, ["2001:DB8:0::1"], "2001:db8::1"),
        (RAILWAY, PROXY, ["::ffff:203.0.113.9"], "203.0.113.9"),
        (RAILWAY, "::ffff:10.0.0.2", ["203.0.113.9"], "203.0.113.9"),
        # Every hop trusted: the farthest one.
        (RAILWAY, PROXY, ["10.5.5.5, 10.6.6.6"], "10.5.5.5"),
        # No header, or an empty one: the proxy itself.
        (RAILWAY, PROXY, [], PROXY),
        (RAILWAY, PROXY, ["", " "], PROXY),
        # A malformed entry where the client should be: counted against the proxy that sent it,
        # never used as text.
        (RAILWAY, PROXY, ["unknown"], PROXY),
        (RAILWAY, PROXY, ["203.0.113.9, not-an-ip"], PROXY),
        (RAILWAY, PROXY, ["203.0.113.9, bad, 10.7.7.7"], "10.7.7.7"),
        (RAILWAY, PROXY, ["[2001:db8::1"], PROXY),
        (RAILWAY, PROXY, ["1.2.3.4:5:6"], PROXY),
        (RAILWAY, PROXY, ["x" * 10_000], PROXY),
        # A peer that is no address (the test client's "testclient", a unix socket).
        (RAILWAY, "testclient", ["203.0.113.9"], UNKNOWN_CLIENT),
        (RAILWAY, None, ["203.0.113.9"], UNKNOWN_CLIENT),
    ],
)
def test_client_address(
    proxies: TrustedProxies, peer: str | None, headers: list[Any], expected: str
) -> None:
    assert proxies.client(peer, headers) == expected


def test_a_long_chain_is_read_from_the_right_only() -> None:
    trusted = [f"10.0.{n // 256}.{n % 256}" for n in range(MAX_FORWARDED_HOPS + 5)]
    header = ", ".join(["203.0.113.9", *trusted])
    # More trusted hops than are read: the client cannot be verified; the last read hop counts.
    client = RAILWAY.client(PROXY, [header])
    assert client in trusted
    assert client != "203.0.113.9"
    # Within the hops read, the client is found.
    short = ", ".join(["203.0.113.9", *trusted[: MAX_FORWARDED_HOPS - 1]])
    assert RAILWAY.client(PROXY, [short]) == "203.0.113.9"


def test_a_huge_header_costs_a_bounded_key() -> None:
    header = ", ".join(f"junk{n}" for n in range(20_000)) + ", 203.0.113.9"
    assert len(header) > 150_000
    assert RAILWAY.client(PROXY, [header]) == "203.0.113.9"


_address_text = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=4).map(lambda a: f"{a}:{80}"),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]:443"),
    st.text(max_size=80),
)


@settings(max_examples=300)
@given(
    spoofed=st.lists(_address_text, max_size=8),
    client=st.ip_addresses().filter(
        lambda a: (
            not any(a in n for n in RAILWAY.networks)
            and not (a.version == 6 and a.ipv4_mapped is not None)
        )
    ),
    hops=st.lists(st.sampled_from(["10.1.1.1", "100.64.0.9", "10.255.0.1"]), max_size=4),
)
def test_a_client_cannot_choose_its_address(
    spoofed: list[str], client: Any, hops: list[str]
) -> None:
    """Whatever a client prepends, the address the first trusted proxy saw is the one used."""
    header = ",".join([*(s.replace(",", " ") for s in spoofed), str(client), *hops])
    assert RAILWAY.client(PROXY, [header]) == str(ipaddress.ip_address(client))


@settings(max_examples=300)
@given(peer=st.one_of(st.none(), st.text(max_size=50)), headers=st.lists(st.text(), max_size=4))
def test_the_answer_is_always_an_address_or_unknown(peer: str | None, headers: list[str]) -> None:
    for proxies in (NONE, RAILWAY, TrustedProxies(parse_networks("0.0.0.0/0, ::/0"))):
        answer = proxies.client(peer, headers)
        if answer != UNKNOWN_CLIENT:
            ipaddress.ip_address(answer)  # never header text
        assert len(answer) <= 45


@settings(max_examples=300)
@given(st.text(max_size=500))
def test_rate_keys_are_short_and_plain(client: str) -> None:
    key = rate_key(client)
    assert len(key) <= MAX_CLIENT_KEY
    assert key.isascii()
    assert key.isprintable()


def test_ipv6_clients_count_by_their_64() -> None:
    assert rate_key("2001:db8:1:2::1") == rate_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert rate_key("2001:db8:1:3::1") != rate_key("2001:db8:1:2::1")
    assert rate_key("203.0.113.9") == "203.0.113.9"


def test_parse_networks() -> None:
    assert [str(n) for n in parse_networks("10.0.0.1, 10.1.2.3/8,,::1")] == [
        "10.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        parse_networks("10.0.0.0/8, railway")


def test_trusted_proxies_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PRICING_TRUSTED_PROXIES", raising=False)
    assert load_settings().pricing_trusted_proxies == []
    monkeypatch.setenv("PRICING_TRUSTED_PROXIES", " 100.64.0.0/10 , fd00::1 ")
    assert load_settings().pricing_trusted_proxies == ["100.64.0.0/10", "fd00::1/128"]
    monkeypatch.setenv("PRICING_TRUSTED_PROXIES", "100.64.0.0/10,*")
    with pytest.raises(ConfigurationError, match=r"^PRICING_TRUSTED_PROXIES: not an IP address"):
        load_settings()


async def test_rotating_addresses_keep_the_limiter_bounded() -> None:
    limiter = RateLimiter(None, limit=1, clock=Clock(0.0))
    for n in range(MAX_LOCAL_CLIENTS + 500):
        await limiter.hit("refresh", f"{n:x}" + "z" * 5_000)
    assert len(limiter._local) == MAX_LOCAL_CLIENTS
    assert max(len(client) for _, client in limiter._local) <= MAX_CLIENT_KEY


async def test_failed_authentication_never_refuses_a_valid_token() -> None:
    access = Access(admin_token="a-tok", cron_token="c-tok")
    limiter = RateLimiter(None, limit=3, clock=Clock(30.0))

    async def call(token: str | None, client: str = "203.0.113.9") -> Any:
        return await admit(
            access,
            limiter,
            bucket="refresh",
            client=client,
            authorization=f"Bearer {token}" if token else None,
            admin_only=False,
        )

    for _ in range(3):
        with pytest.raises(NotAuthorized):
            await call("guess")
    with pytest.raises(RateLimited):  # guessing is throttled...
        await call("guess")
    with pytest.raises(RateLimited):
        await call(None)
    for _ in range(3):  # ...while the cron token from the same address goes through
        await call("c-tok")
    with pytest.raises(RateLimited):  # valid calls have their own limit
        await call("c-tok")
    assert ("refresh", "203.0.113.9") in limiter._local
    assert (AUTH_FAILURE_BUCKET, "203.0.113.9") in limiter._local


async def _observe(proxies: TrustedProxies, peer: str, headers: list[tuple[bytes, bytes]]) -> Any:
    from pricing_service.api.middleware import RequestObserver, client_of_scope
    from pricing_service.metrics import Metrics

    seen: dict[str, Any] = {}
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scheme=scope["scheme"], client=client_of_scope(scope))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    # The keys the observer and client_of_scope read, not a whole HTTPScope.
    scope = cast(
        "HTTPScope",
        {
            "type": "http",
            "method": "GET",
            "path": "/health",
            "scheme": "http",
            "headers": headers,
            "client": (peer, 5000),
        },
    )
    await RequestObserver(app, Metrics(), proxies)(scope, receive, send)
    return seen, dict(sent[0]["headers"])


@pytest.mark.parametrize(
    ("proxies", "peer", "proto", "scheme"),
    [
        (RAILWAY, PROXY, b"https", "https"),  # TLS ended at the trusted proxy
        (RAILWAY, PROXY, b"http, https", "https"),  # the nearest proxy's word counts
        (RAILWAY, PROXY, b"gopher", "http"),
        (RAILWAY, "198.51.100.7", b"https", "http"),  # not a proxy: ignored
        (NONE, PROXY, b"https", "http"),
    ],
)
async def test_the_scheme_comes_from_trusted_proxies_only(
    proxies: TrustedProxies, peer: str, proto: bytes, scheme: str
) -> None:
    headers = [(b"x-forwarded-proto", proto), (b"x-forwarded-for", b"203.0.113.9")]
    seen, sent = await _observe(proxies, peer, headers)
    assert seen["scheme"] == scheme
    assert seen["client"] == ("203.0.113.9" if proxies.trusts(peer) else peer)
    assert sent[b"x-content-type-options"] == b"nosniff"
    assert len(sent[b"x-request-id"]) == 32
