"""Delivering the outbox: every serving worker claims due deliveries and POSTs them, signed.

Each worker of each replica runs ``Deliverer.run_forever`` in its lifespan (beside the snapshot
watcher and the scheduler). A pass claims at most ``BATCH`` due deliveries (``outbox.claim_due``:
``FOR UPDATE SKIP LOCKED`` and a lease longer than any attempt), sends them concurrently, each
bounded by the HTTP timeout and an overall deadline, and records each outcome: delivered, due
again after the next delay of the retry schedule (jittered), or dead once the schedule is
spent. The same ``webhook-id`` is sent on every attempt; the signature is made per attempt
(Standard Webhooks: ``webhook-timestamp`` is the attempt's time, verifiers refuse old ones).

Nothing here runs on the request path or inside a refresh: a receiver that hangs holds only
this task's HTTP client (bounded by the timeout), never the selector or a run. Database errors
make the loop wait (doubling to ``MAX_BACKOFF_SECONDS``) and go on: it outlives an outage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import msgspec
from standardwebhooks import Webhook

from pricing_service import __version__
from pricing_service.db import storage_error
from pricing_service.domain import AttemptOutcome, DeliveryStatus, WebhookFormat, utcnow
from pricing_service.errors import InvalidRequest, NotFound, NothingToAccept
from pricing_service.logs import event
from pricing_service.webhooks import outbox
from pricing_service.webhooks.events import EventType, body_for, shown_url, webhook_id

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    import httpx2

    from pricing_service.repository import Repository
    from pricing_service.webhooks.outbox import Delivery

log = logging.getLogger("pricing_service.webhooks")
T = TypeVar("T")

BATCH = 20  # deliveries claimed and sent per pass, per worker
MAX_BACKOFF_SECONDS = 30.0  # the longest wait after a pass failed (the database is down)
FAILING_CHECK_SECONDS = 60.0  # how often a worker asks whether refreshes count as failing
COUNTS_SECONDS = 5.0  # how often the delivery counts for /metrics and the console are read
PRUNE_SECONDS = 3600.0  # how often a worker deletes settled deliveries past the retention
MAX_PRUNE_BATCHES = 20  # batches of outbox.PRUNE_BATCH per prune at most (the rest: next time)
MAX_ERROR = 300
WORKER = f"{socket.gethostname()}:{os.getpid()}"
USER_AGENT = f"cognitia-pricing/{__version__} (webhooks)"


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None


class Signer:
    """Standard Webhooks headers for one message (the reference library, standardwebhooks)."""

    def __init__(self, secret: str | None) -> None:
        self._webhook = Webhook(secret) if secret else None

    def headers(self, message_id: str, at: datetime, body: str) -> dict[str, str]:
        found = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(at.timestamp())),
        }
        if self._webhook is not None:
            found["webhook-signature"] = self._webhook.sign(message_id, at, body)
        return found


def encode_body(
    format_name: str, event_type: str, created_at: datetime, data: dict[str, Any]
) -> str:
    return msgspec.json.encode(body_for(format_name, event_type, created_at, data)).decode()


async def post(
    client: httpx2.AsyncClient,
    signer: Signer,
    *,
    url: str,
    message_id: str,
    body: str,
    deadline_seconds: float,
) -> Attempt:
    """One signed POST, its every wait bounded; 2xx is delivered, anything else failed."""
    import httpx2  # imported already: ``client`` is one

    headers = signer.headers(message_id, utcnow(), body)
    try:
        with anyio.fail_after(deadline_seconds):
            response = await client.post(url, content=body.encode(), headers=headers)
    except TimeoutError:
        return Attempt(False, None, f"timeout after {deadline_seconds:g} s")
    except httpx2.HTTPError as exc:
        # The exception's kind and message: never the URL (Slack's carries its secret).
        detail = str(exc).replace(url, "<url>")[:MAX_ERROR]
        return Attempt(
            False, None, f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        )
    if 200 <= response.status_code < 300:
        return Attempt(True, response.status_code, None)
    return Attempt(False, response.status_code, f"HTTP {response.status_code}")


class Deliverer:
    """The delivery loop of one worker; see the module docstring."""

    def __init__(
        self,
        *,
        repository: Repository,
        secret: str | None,
        schedule: Sequence[float],
        timeout_seconds: float,
        lease_seconds: float,
        poll_seconds: float,
        retention_seconds: float | None = None,
        worker: str = WORKER,
        transport: httpx2.AsyncBaseTransport | None = None,
        seed: int | None = None,
        attempt_observers: Iterable[Callable[[AttemptOutcome], None]] = (),
        count_observers: Iterable[Callable[[dict[str, int], float | None], None]] = (),
    ) -> None:
        if lease_seconds <= timeout_seconds + 1:
            raise ValueError("the lease must outlast one attempt's timeout")
        self.repository = repository
        self.signer = Signer(secret)
        self.schedule = tuple(schedule)
        self.timeout_seconds = timeout_seconds
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        # Delivered and dead deliveries settled longer ago are deleted (None: kept forever).
        self.retention_seconds = retention_seconds
        self.worker = worker
        self.transport = transport
        self.rng = random.Random(seed)  # noqa: S311 - jitter, not a secret
        # Called with each attempt's outcome and with the counts by status and the oldest
        # pending delivery's age (metrics).
        self.attempt_observers: list[Callable[[AttemptOutcome], None]] = list(attempt_observers)
        self.count_observers: list[Callable[[dict[str, int], float | None], None]] = list(
            count_observers
        )
        self._wake = anyio.Event()
        self._last_failing_check = float("-inf")
        self._last_counts = float("-inf")
        self._last_prune = float("-inf")

    def client(self) -> httpx2.AsyncClient:
        # Imported with the first client (the first due delivery): httpx2 is 1.9 MB of a
        # serving worker's RSS, and a worker without webhooks never opens one.
        import httpx2

        return httpx2.AsyncClient(
            timeout=httpx2.Timeout(self.timeout_seconds),
            follow_redirects=False,
            transport=self.transport,
            limits=httpx2.Limits(max_connections=BATCH, max_keepalive_connections=4),
        )

    def wake(self) -> None:
        """Look for due deliveries now (a change was just recorded by this process)."""
        self._wake.set()

    async def run_forever(self) -> None:
        failures = 0
        # The HTTP client (its TLS context and its transport's modules, about 3 MB of a serving
        # worker's RSS) is opened at the first due delivery, then kept: a worker that never
        # delivers never holds it.
        async with contextlib.AsyncExitStack() as opened:
            client: httpx2.AsyncClient | None = None

            async def open_client() -> httpx2.AsyncClient:
                nonlocal client
                if client is None:
                    client = await opened.enter_async_context(self.client())
                return client

            while True:
                try:
                    sent = await self.pass_once(open_client)
                    await self._housekeeping()
                except Exception as exc:  # the database is down or stalled: wait, go on
                    failures += 1
                    retry = min(MAX_BACKOFF_SECONDS, self.poll_seconds * 2**failures)
                    event(
                        log,
                        "webhooks.pass_failed",
                        logging.WARNING,
                        error=type(exc).__name__,
                        retry_in_seconds=round(retry, 2),
                    )
                    await anyio.sleep(retry)
                    continue
                failures = 0
                if sent:
                    continue  # more may be due
                with anyio.move_on_after(self.poll_seconds):
                    await self._wake.wait()
                self._wake = anyio.Event()

    async def pass_once(self, open_client: Callable[[], Awaitable[httpx2.AsyncClient]]) -> int:
        """Claim due deliveries and send them (on the client ``open_client`` gives, asked only
        when one is due); how many were attempted."""
        now = utcnow()
        claimed = await anyio.to_thread.run_sync(
            lambda: outbox.claim_due(
                self.repository.engine, self.worker, now, self.lease_seconds, BATCH
            )
        )
        if not claimed:
            return 0
        client = await open_client()
        async with anyio.create_task_group() as tasks:
            for delivery in claimed:
                tasks.start_soon(self._deliver, client, delivery)
        return len(claimed)

    async def _deliver(self, client: httpx2.AsyncClient, delivery: Delivery) -> None:
        started = time.perf_counter()
        body = encode_body(
            delivery.format, delivery.event_type, delivery.event_created_at, delivery.data
        )
        attempt = await post(
            client,
            self.signer,
            url=delivery.endpoint,
            message_id=webhook_id(delivery.event_id, delivery.event_created_at),
            body=body,
            deadline_seconds=self.timeout_seconds + 1,
        )
        attempts = delivery.attempts + 1
        retry_in = None if attempt.ok else outbox.next_delay(attempts, self.schedule, self.rng)
        settled = await anyio.to_thread.run_sync(
            lambda: outbox.settle(
                self.repository.engine,
                delivery.id,
                self.worker,
                utcnow(),
                ok=attempt.ok,
                status_code=attempt.status_code,
                error=attempt.error,
                retry_in=retry_in,
            )
        )
        if attempt.ok:
            outcome = AttemptOutcome.DELIVERED
        else:
            outcome = AttemptOutcome.FAILED if retry_in is not None else AttemptOutcome.DEAD
        event(
            log,
            f"webhooks.{outcome}",
            logging.INFO if attempt.ok else logging.WARNING,
            delivery_id=delivery.id,
            event_id=delivery.event_id,
            type=delivery.event_type,
            format=delivery.format,
            attempt=attempts,
            status=attempt.status_code,
            error=attempt.error,
            retry_in_seconds=None if retry_in is None else round(retry_in, 2),
            duration_ms=int((time.perf_counter() - started) * 1000),
            settled=settled,
        )
        for observer in self.attempt_observers:
            observer(outcome)

    # -- what the console reads and does ---------------------------------------------------

    async def overview(self, *, status: str | None, limit: int) -> dict[str, Any]:
        """The delivery counts, the newest deliveries (of ``status``), the endpoints."""
        if status is not None and status not in set(DeliveryStatus):
            raise InvalidRequest(f"status must be one of {', '.join(DeliveryStatus)}")
        shown = None if status is None else DeliveryStatus(status)

        def read() -> dict[str, Any]:
            counts, oldest = outbox.counts_and_oldest(self.repository.engine, utcnow())
            rows = outbox.deliveries(self.repository.engine, status=shown, limit=limit)
            return {"counts": counts, "oldest_pending": oldest, "deliveries": rows}

        found = await self._db(read)
        found["endpoints"] = [(f, shown_url(u)) for f, u in self.repository.events.endpoints]
        return found

    async def retry(self, delivery_id: int) -> Delivery:
        """Make a dead delivery pending again, due now (the console's and the CLI's retry)."""
        found = await self._db(outbox.retry, self.repository.engine, delivery_id, utcnow())
        if found is None:
            existing = await self._db(outbox.get_delivery, self.repository.engine, delivery_id)
            if existing is None:
                raise NotFound(f"delivery {delivery_id} does not exist")
            raise NothingToAccept(f"delivery {delivery_id} is {existing.status}, not dead")
        event(log, "webhooks.retried", delivery_id=delivery_id, event_id=found.event_id)
        self.wake()
        return found

    async def get(self, delivery_id: int) -> Delivery | None:
        return await self._db(outbox.get_delivery, self.repository.engine, delivery_id)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except Exception as exc:  # a database error: the kind only, never its SQL
            error = storage_error(exc)
            if error is None or error is exc:
                raise
            raise error from exc

    async def _housekeeping(self) -> None:
        clock = time.monotonic()
        if clock - self._last_failing_check >= FAILING_CHECK_SECONDS:
            self._last_failing_check = clock
            await anyio.to_thread.run_sync(self.repository.note_failing, utcnow())
        if self.retention_seconds is not None and clock - self._last_prune >= PRUNE_SECONDS:
            self._last_prune = clock
            await self.prune(utcnow() - timedelta(seconds=self.retention_seconds))
        if self.count_observers and clock - self._last_counts >= COUNTS_SECONDS:
            self._last_counts = clock
            counts, oldest = await anyio.to_thread.run_sync(
                outbox.counts_and_oldest, self.repository.engine, utcnow()
            )
            for observer in self.count_observers:
                observer(counts, oldest)

    async def prune(self, before: datetime) -> tuple[int, int]:
        """Delete the deliveries settled before ``before`` and the events left without any
        (``outbox.prune``, in batches); logs ``webhooks.pruned`` when it deleted any."""
        deliveries = events = 0
        for _ in range(MAX_PRUNE_BATCHES):
            found = await anyio.to_thread.run_sync(outbox.prune, self.repository.engine, before)
            deliveries, events = deliveries + found[0], events + found[1]
            if max(found) < outbox.PRUNE_BATCH:
                break
        if deliveries or events:
            event(
                log,
                "webhooks.pruned",
                deliveries=deliveries,
                events=events,
                before=before.isoformat(timespec="seconds"),
                retention_seconds=self.retention_seconds,
            )
        return deliveries, events


async def send_test(
    url: str,
    *,
    format_name: str = WebhookFormat.JSON,
    secret: str | None,
    timeout_seconds: float,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> tuple[str, Attempt]:
    """Send one signed ``webhook.test`` event to ``url`` (the CLI's `webhooks test`)."""
    now = utcnow()
    message_id = f"test_{int(now.timestamp())}_{random.getrandbits(32):08x}"
    data = {"message": "cognitia-pricing webhook test", "worker": WORKER}
    body = encode_body(format_name, EventType.WEBHOOK_TEST, now, data)
    import httpx2

    async with httpx2.AsyncClient(
        timeout=httpx2.Timeout(timeout_seconds), follow_redirects=False, transport=transport
    ) as client:
        attempt = await post(
            client,
            Signer(secret),
            url=url,
            message_id=message_id,
            body=body,
            deadline_seconds=timeout_seconds + 1,
        )
    return message_id, attempt
