"""HTTP replies of the read path, pure: rendered bytes, their ETags, gzip and Cache-Control.

Shared by the full routes (``selector_replies.py``, through Litestar) and the hot path
(``api/fast.py``): both send the same bytes and headers. No I/O, no state but the per-second
reply cache.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from pricing_service.domain import CacheTier

T = TypeVar("T")

MAX_AGE_SECONDS = 60
# Replies kept for reuse (each valid for one second of Age): a few per view and second.
MAX_REPLIES = 256
CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=86400, stale-if-error=86400"
# A cache counts a response's freshness from its Age header: with max-age=60 and the snapshot's
# age in Age, every answer would arrive already stale. max-age is therefore age + 60: fresh for
# one more minute from now, as before the age moved out of the body.
CACHE_CONTROL_AGED = "public, max-age={max_age}, stale-while-revalidate=86400, stale-if-error=86400"

_encoder = msgspec.json.Encoder(decimal_format="number")

# A view of /models as its rendered bytes are keyed: (view, category, local).
ViewKey = tuple[str, str | None, bool | None]


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    gzip: bytes | None
    etag: str

    @property
    def gzip_etag(self) -> str:
        """The gzip bytes' own strong ETag: another representation, another tag."""
        return self.etag[:-1] + '-gz"'


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]
    tier: CacheTier
    # The headers as they go on the wire, Content-Type and Content-Length included (not on a
    # 304): encoded once per reply, which PricingService keeps for the second it is valid.
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def of(cls, status: int, body: bytes, headers: dict[str, str], tier: CacheTier) -> Reply:
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if status != 304:
            raw += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        return cls(status, body, headers, tier, tuple(raw))


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """A reply and the struct its body renders: a route's return type names the struct (the
    document derives its 200 from it) and the route sends the reply's bytes as they are."""

    body: T
    reply: Reply


def render(payload: Any, *, compress: bool) -> Rendered:
    """A body (a dict or a struct; Decimal money as JSON numbers) as bytes and strong ETag."""
    body = _encoder.encode(payload)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    packed = gzip.compress(body, compresslevel=6, mtime=0) if compress else None
    return Rendered(body=body, gzip=packed, etag=etag)


def accepts_gzip(accept_encoding: bytes | str | None) -> bool:
    """Whether an Accept-Encoding header accepts gzip: listed (or ``*``) with a q-value above 0.

    ``gzip;q=0`` refuses it; an explicit ``gzip`` entry wins over ``*``; a malformed q-value
    counts as 0 (when in doubt, identity, which every client reads).
    """
    if not accept_encoding:
        return False
    text = (
        accept_encoding.decode("latin-1") if isinstance(accept_encoding, bytes) else accept_encoding
    )
    gzip_q: float | None = None
    star_q: float | None = None
    for part in text.split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match == etag:  # what a browser or the selector sends back: no parsing
        return True
    if if_none_match.strip() == "*":
        return True
    candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
    return etag in candidates


class Replies:
    """The replies built from rendered bytes, kept for the second each is valid."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, CacheTier, int | None, bool], Reply] = {}

    def clear(self) -> None:
        """Forget every reply (their bytes may be of a dataset no longer served)."""
        self._cache.clear()

    def reply(
        self,
        rendered: Rendered,
        *,
        tier: CacheTier,
        accept_gzip: bool,
        if_none_match: str | None,
        age: int | None,
    ) -> Reply:
        """200 with the representation asked for (gzip or identity, each with its ETag) or 304.

        The same few replies are asked thousands of times a second; each is built once per
        second (its Age and max-age change with the second) and then looked up.
        """
        gzipped = accept_gzip and rendered.gzip is not None
        etag = rendered.gzip_etag if gzipped else rendered.etag
        not_modified = etag_matches(if_none_match, etag)
        key = (etag, tier, age, not_modified)  # the ETag names the bytes and their encoding
        found = self._cache.get(key)
        if found is not None:
            return found
        headers = {
            "etag": etag,
            "cache-control": CACHE_CONTROL
            if age is None
            else CACHE_CONTROL_AGED.format(max_age=age + MAX_AGE_SECONDS),
            "vary": "Accept-Encoding",
            "x-cache-tier": tier,
        }
        if age is not None:
            headers["age"] = str(age)
        if not_modified:
            reply = Reply.of(304, b"", headers, tier)
        elif gzipped:
            assert rendered.gzip is not None
            headers["content-encoding"] = "gzip"
            reply = Reply.of(200, rendered.gzip, headers, tier)
        else:
            reply = Reply.of(200, rendered.body, headers, tier)
        if len(self._cache) >= MAX_REPLIES:
            self._cache.clear()  # yesterday's seconds: dropped wholesale, rebuilt on demand
        self._cache[key] = reply
        return reply
