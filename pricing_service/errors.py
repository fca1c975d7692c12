"""One exception tree for the service.

PricingError                    root; every error carries a human ``detail``
├── ConfigurationError          a setting or the catalog is invalid (startup refuses)
│   └── CatalogError            catalog/ file, entry and reason
├── UpstreamError               PricePerToken could not give us a usable answer
│   ├── UpstreamUnavailable     transient: connect, timeout, 5xx, 429 (retried)
│   └── UpstreamRejected        permanent: other 4xx, is_error, {"error": ...}, bad schema
├── SanityCheckFailed           a fetched listing looks wrong; last good prices are kept
├── RefreshInProgress           another worker or replica holds the refresh lock
├── RunFenced                   a run lost its lease: another process closed it; nothing applied
├── NothingToAccept             an accept names a run or prices that are not held (HTTP 409)
├── InvalidRequest              bad input from a client (HTTP 400)
├── NotAuthorized               missing or wrong token (HTTP 401)
├── AccessNotConfigured         admin endpoints with no admin token set (HTTP 403)
├── NotFound                    a run or model that does not exist (HTTP 404)
├── RateLimited                 too many calls from one client (HTTP 429)
├── NoDataYet                   nothing was ever fetched or seeded (HTTP 503)
├── DatabaseUnavailable         the database cannot be reached (migrate and serve exit)
└── StorageError                the database failed; the detail never holds SQL or parameters
    └── StorageUnavailable      the database cannot be reached or is locked (HTTP 503)
"""

from __future__ import annotations


class PricingError(Exception):
    """Root of the service's errors."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigurationError(PricingError):
    """A setting is invalid: the service refuses to start."""


class CatalogError(ConfigurationError):
    """The curation catalog is invalid."""

    def __init__(self, file: str, entry: str, reason: str) -> None:
        super().__init__(f"{file}: {entry}: {reason}")
        self.file = file
        self.entry = entry
        self.reason = reason


class UpstreamError(PricingError):
    """The upstream gave no usable answer."""


class UpstreamUnavailable(UpstreamError):
    """Transient upstream failure: worth retrying."""


class UpstreamRejected(UpstreamError):
    """Permanent upstream failure: retrying will not help."""


class SanityCheckFailed(PricingError):
    """A fetched listing failed the sanity gate."""


class RefreshInProgress(PricingError):
    """Another refresh holds the single-flight lock."""

    def __init__(self, detail: str, run_id: int | None) -> None:
        super().__init__(detail)
        self.run_id = run_id


class RunFenced(PricingError):
    """A run may no longer write: its lease was lost and another process closed it."""


class NothingToAccept(PricingError):
    """An acceptance names a run or prices that are not (or no longer) held."""


class InvalidRequest(PricingError):
    """A client sent bad input."""


class NotAuthorized(PricingError):
    """Missing or wrong credentials."""


class AccessNotConfigured(PricingError):
    """The endpoint needs a token that is not configured."""


class NotFound(PricingError):
    """The asked-for thing does not exist."""


class RateLimited(PricingError):
    """Too many calls from one client."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NoDataYet(PricingError):
    """No snapshot was ever fetched or seeded."""


class DatabaseUnavailable(PricingError):
    """The database could not be reached or answered with an error at startup or migration."""


class StorageError(PricingError):
    """The database failed. ``detail`` names the kind of failure only: never SQL, bound
    parameters or the connection URL, so it is safe in a public answer or a run's error."""


class StorageUnavailable(StorageError):
    """The database cannot be reached (down, refused, timed out, locked): retry later."""

    # Seconds a client is asked to wait (Retry-After) before asking again.
    retry_after = 5
