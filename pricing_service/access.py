"""Bearer tokens for cron and admin endpoints (constant-time), their per-client rate limit, and
which address a request comes from."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import string
import time
from enum import StrEnum
from typing import TYPE_CHECKING

from pricing_service.errors import AccessNotConfigured, NotAuthorized, RateLimited
from pricing_service.logs import event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from redis.asyncio import Redis

log = logging.getLogger("pricing_service.access")

RATE_LIMIT_PREFIX = "pricing:ratelimit"
# Distinct clients remembered per window in process; beyond it the oldest are forgotten, so a
# flood of addresses costs bounded memory.
MAX_LOCAL_CLIENTS = 10_000
# A client key longer than this (or with odd characters) is hashed, so no caller decides how
# many bytes a key takes in memory or in Redis.
MAX_CLIENT_KEY = 64
# The bucket of requests that failed authentication, apart from the endpoints' own buckets: a
# caller with a valid token is never refused because of someone else's wrong guesses.
AUTH_FAILURE_BUCKET = "auth-fail"
# X-Forwarded-For entries examined from the right; a longer chain is someone else's business.
MAX_FORWARDED_HOPS = 16
UNKNOWN_CLIENT = "unknown"

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + ".:-_/")


def parse_networks(spec: str | Iterable[str]) -> tuple[_IPNetwork, ...]:
    """Addresses or CIDRs (comma-separated text or a list) as networks; ValueError naming a
    bad entry. A host address is its own /32 or /128."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    networks: list[_IPNetwork] = []
    for part in parts:
        text = part.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR: {text[:60]!r}") from None
    return tuple(networks)


def _address(text: str) -> _IPAddress | None:
    """An address as a proxy writes it in X-Forwarded-For: ``1.2.3.4``, ``1.2.3.4:5678``,
    ``2001:db8::1``, ``[2001:db8::1]:443``; anything else (``unknown``, names, junk) is None."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (end + 1 < len(text) and not text[end + 1 :].startswith(":")):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            address = ipaddress.IPv6Address(text.partition("%")[0])
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


class TrustedProxies:
    """Which address a request comes from (``PRICING_TRUSTED_PROXIES``).

    The client is the socket peer, unless the peer is a trusted proxy: then it is the
    right-most ``X-Forwarded-For`` entry that is not a trusted proxy (each proxy appends the
    address it saw, so entries left of that one are whatever the client chose to send). With no
    trusted proxies the header is ignored. The answer is always a normalized address or
    ``unknown``, never header text, so it is safe as a rate-limit key.
    """

    def __init__(self, networks: Iterable[_IPNetwork] = ()) -> None:
        self.networks = tuple(networks)

    def trusted(self, address: _IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def trusts(self, peer: str | None) -> bool:
        """Whether ``peer`` (the socket peer's host) is a trusted proxy."""
        address = _address(peer) if peer and self.networks else None
        return address is not None and self.trusted(address)

    def client(self, peer: str | None, forwarded_for: Iterable[bytes | str] = ()) -> str:
        """The client's address from the socket ``peer`` and the X-Forwarded-For headers."""
        peer_address = _address(peer) if peer else None
        if peer_address is None:
            return UNKNOWN_CLIENT
        if not self.networks or not self.trusted(peer_address):
            return str(peer_address)
        headers = [v.decode("latin-1") if isinstance(v, bytes) else v for v in forwarded_for]
        chain = ",".join(h for h in headers if h.strip())
        if not chain:
            return str(peer_address)
        # rsplit bounds the work on a huge header: only the last hops are looked at.
        entries = chain.rsplit(",", MAX_FORWARDED_HOPS)
        hop = peer_address  # the trusted proxy that reported the entry being read
        for index in range(len(entries) - 1, -1, -1):
            if index == 0 and len(entries) > MAX_FORWARDED_HOPS:
                break  # more hops than we read: the rest is unverifiable
            entry = _address(entries[index])
            if entry is None:
                # A trusted proxy passed on something that is not an address: count the
                # request against that proxy rather than trust or store the text.
                return str(hop)
            if not self.trusted(entry):
                return str(entry)
            hop = entry
        return str(hop)


def rate_key(client: str) -> str:
    """The key a client is counted under: an IPv6 client by its /64 (one host holds a whole
    /64), anything long or unusual hashed to a fixed length."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    if len(client) <= MAX_CLIENT_KEY and all(c in _KEY_CHARS for c in client):
        return client
    return "h:" + hashlib.sha256(client.encode("utf-8", "surrogatepass")).hexdigest()[:32]


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


class RateLimiter:
    """At most ``limit`` calls per client per fixed window of ``window_seconds``.

    With Redis the count is shared by every worker and replica (INCR on a key per window);
    without it, or while Redis fails, each process counts alone: a Redis outage must not lock
    operators out of the refresh they would use to recover.
    """

    def __init__(
        self,
        redis: Redis | None,
        *,
        limit: int = 10,
        window_seconds: int = 60,
        clock: Callable[[], float] = time.time,
        error_observers: Iterable[Callable[[str], None]] = (),
    ) -> None:
        if limit < 1 or window_seconds < 1:
            raise ValueError("a rate limit needs limit >= 1 and window_seconds >= 1")
        self.redis = redis
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        self.error_observers: list[Callable[[str], None]] = list(error_observers)
        self._window = -1
        self._local: dict[tuple[str, str], int] = {}

    async def hit(self, bucket: str, client: str) -> None:
        """Count one call of ``client`` to ``bucket``; RateLimited when over the limit."""
        client = rate_key(client)
        now = self.clock()
        window = int(now // self.window_seconds)
        count = await self._shared_count(bucket, client, window)
        if count is None:
            count = self._local_count(bucket, client, window)
        if count > self.limit:
            retry_after = max(1, math.ceil((window + 1) * self.window_seconds - now))
            event(log, "access.rate_limited", logging.WARNING, bucket=bucket, client=client)
            raise RateLimited(
                f"too many calls: at most {self.limit} per {self.window_seconds} s; "
                f"retry in {retry_after} s",
                retry_after,
            )

    async def blocked(self, bucket: str, client: str) -> int | None:
        """Seconds until ``client`` may try ``bucket`` again when its calls in this window have
        reached the limit, else None; counts nothing (the console's login counts failures only,
        with :meth:`hit`, and asks this before checking a token)."""
        client = rate_key(client)
        now = self.clock()
        window = int(now // self.window_seconds)
        count = await self._shared_peek(bucket, client, window)
        if count is None:
            count = self._local.get((bucket, client), 0) if window == self._window else 0
        if count < self.limit:
            return None
        event(log, "access.rate_limited", logging.WARNING, bucket=bucket, client=client)
        return max(1, math.ceil((window + 1) * self.window_seconds - now))

    async def _shared_peek(self, bucket: str, client: str, window: int) -> int | None:
        if self.redis is None:
            return None
        try:
            value = await self.redis.get(f"{RATE_LIMIT_PREFIX}:{bucket}:{client}:{window}")
        except Exception as exc:  # any Redis failure: the process's own count instead
            event(log, "access.rate_limit_redis_error", logging.WARNING, error=type(exc).__name__)
            for observer in self.error_observers:
                observer("rate_limit")
            return None
        return int(value) if value is not None else 0

    async def _shared_count(self, bucket: str, client: str, window: int) -> int | None:
        if self.redis is None:
            return None
        key = f"{RATE_LIMIT_PREFIX}:{bucket}:{client}:{window}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window_seconds + 1)
                count, _ = await pipe.execute()
        except Exception as exc:  # any Redis failure: count in process instead
            event(log, "access.rate_limit_redis_error", logging.WARNING, error=type(exc).__name__)
            for observer in self.error_observers:
                observer("rate_limit")
            return None
        return int(count)

    def _local_count(self, bucket: str, client: str, window: int) -> int:
        if window != self._window:
            self._window = window
            self._local.clear()
        key = (bucket, client)
        if key not in self._local and len(self._local) >= MAX_LOCAL_CLIENTS:
            self._local.pop(next(iter(self._local)))
        count = self._local.get(key, 0) + 1
        self._local[key] = count
        return count


async def admit(
    access: Access,
    limiter: RateLimiter,
    *,
    bucket: str,
    client: str,
    authorization: str | None,
    admin_only: bool,
) -> Role:
    """Check the token, then count the call: valid calls in ``bucket`` per client, failed ones
    in :data:`AUTH_FAILURE_BUCKET` (so guessing is throttled without locking out the cron)."""
    try:
        role = access.require(authorization, admin_only=admin_only)
    except (NotAuthorized, AccessNotConfigured):
        await limiter.hit(AUTH_FAILURE_BUCKET, client)
        raise
    await limiter.hit(bucket, client)
    return role
