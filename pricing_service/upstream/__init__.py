"""PricePerToken over MCP: the client (`client.py`), one attempt's bound, failure classification
and payload checks (`_attempt.py`), and the HTTP transport that works around the SDK
(`_transport.py`)."""

from pricing_service.upstream.client import (
    DEFAULT_USER_AGENT,
    PricePerTokenClient,
    UpstreamFetch,
)

__all__ = ["DEFAULT_USER_AGENT", "PricePerTokenClient", "UpstreamFetch"]
