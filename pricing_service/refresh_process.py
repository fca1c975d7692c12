"""A serving worker's refreshes, acceptances and seeds run in a bounded child process.

``ChildRefresher`` is the ``Refresher`` of a serving worker (``create_app_from_env``). It keeps
everything that decides whether and when work happens: the single-flight lease (taken, renewed
and released here, so one run at a time across workers and replicas holds as before), the
recent-run shortcut, the run's record, 409 while a run is in progress, the scheduler. What needs
the MCP SDK, genai-prices' data and most of the CPU (the fetch, normalization, the gate, the
store) runs in ``python -m pricing_service.refresh_child``: a fresh process that exits when the
job is done, so its imports and its heap leave with it and its CPU is not under the serving
worker's GIL.

The wire: the parent writes one JSON line on the child's stdin (the job and its pickled
``Settings``), the child writes JSON lines on its stdout: ``event`` and ``fetch`` (relayed to
this process's observers: metrics, the webhook deliverer), ``publish`` (the snapshot the run
stored: published here, through the tracker, one Redis write), then one result (``done``,
``accepted``, ``seeded`` or ``error``). The child logs on the stderr it inherits, in the
service's format.

Bounds: the child gets ``PRICING_REFRESH_TIMEOUT_SECONDS``; past it, it is killed and its run
recorded as failed with that reason. A parent that stops (SIGTERM, the lifespan's end) or loses
the lease asks the child to stop (a ``stop`` line: the child records its run as failed with the
reason, as an in-process run would) and kills it if it has not exited within
``STOP_SECONDS``. A parent killed outright closes the child's stdin: the child stops on EOF.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

from pricing_service import errors
from pricing_service.accept import Acceptance
from pricing_service.domain import RunStatus, SnapshotInfo
from pricing_service.errors import PricingError
from pricing_service.refresh import Refresher

if TYPE_CHECKING:
    from anyio.abc import Process

    from pricing_service.config import Settings
    from pricing_service.domain import RunSummary
    from pricing_service.listings import Fetched
    from pricing_service.refresh import Ticket

log = logging.getLogger("pricing_service.refresh")

CHILD_MODULE = "pricing_service.refresh_child"
# A child asked to stop records its run and exits within this; after it, it is killed.
STOP_SECONDS = 5.0
# After a kill, how long to wait for the kernel to reap it (it cannot refuse SIGKILL).
REAP_SECONDS = 5.0
# One message line at most (a run's events are small; the largest is a fetch's slug lists).
MAX_LINE_BYTES = 16 * 1024 * 1024
# What the child must not inherit: prometheus-client's multiprocess directory (it counts nothing).
_NOT_INHERITED = ("PROMETHEUS_MULTIPROC_DIR",)


class Job(StrEnum):
    """What a refresh process is asked to do (the ``job`` of its first line)."""

    RUN = "run"  # run a begun run (the parent holds its lease)
    ACCEPT = "accept"  # apply what the gate held
    SEED = "seed"  # store the bundled seed in an empty database


class Message(StrEnum):
    """The ``kind`` of a line a refresh process sends its parent: a job's result (one of
    ``RESULTS``, the last line), or what it relays meanwhile."""

    DONE = "done"  # the run ended (its status)
    ACCEPTED = "accepted"  # the acceptance applied (the models, the snapshot)
    SEEDED = "seeded"  # the seed stored (the snapshot)
    ERROR = "error"  # a PricingError ended the job (its class name and detail)
    EVENT = "event"  # a Refresher event, for the parent's observers
    FETCH = "fetch"  # a fetch, for the parent's fetch observers (metrics)
    PUBLISH = "publish"  # a stored snapshot, which the parent publishes


RESULTS = frozenset({Message.DONE, Message.ACCEPTED, Message.SEEDED, Message.ERROR})


class Stop(StrEnum):
    """Why the parent asks its child to stop (the ``stop`` line)."""

    LEASE = "lease"  # the lease was lost: another process took over the refresh
    STOPPED = "stopped"  # the service stops


def encode_settings(settings: Settings) -> str:
    """``Settings`` for the child, secrets included: it travels on a pipe, never in argv or env."""
    return base64.b64encode(pickle.dumps(settings)).decode("ascii")


def decode_settings(text: str) -> Settings:
    # The parent's own object, over the pipe the parent opened: nothing else writes there.
    settings: Settings = pickle.loads(base64.b64decode(text))  # noqa: S301
    return settings


def encode_snapshot(info: SnapshotInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "fetched_at": info.fetched_at.isoformat(),
        "source": str(info.source),
        "model_count": info.model_count,
    }


def decode_snapshot(data: dict[str, Any]) -> SnapshotInfo:
    return SnapshotInfo(
        id=int(data["id"]),
        fetched_at=datetime.fromisoformat(data["fetched_at"]),
        source=str(data["source"]),
        model_count=int(data["model_count"]),
    )


def encode_fetch(fetch: Fetched) -> dict[str, Any]:
    """What the observers read of a fetch (``listings.Fetched``: metrics' latencies and counts),
    not its payloads."""
    return {
        "latency_ms": fetch.latency_ms,
        "call_latencies_ms": list(fetch.call_latencies_ms),
        "rows_seen": fetch.rows_seen,
        "reconnects": fetch.reconnects,
        "call_outcomes": fetch.call_outcomes(),
        "log_fields": fetch.log_fields(),
    }


@dataclass(frozen=True, slots=True)
class RelayedFetch:
    """A child's fetch as its parent's observers see it (``listings.Fetched``)."""

    latency_ms: int
    call_latencies_ms: tuple[float, ...]
    rows_seen: int
    reconnects: int
    outcomes: dict[str, int]
    fields: dict[str, Any]

    def call_outcomes(self) -> dict[str, int]:
        return dict(self.outcomes)

    def log_fields(self) -> dict[str, Any]:
        return dict(self.fields)


def decode_fetch(data: dict[str, Any]) -> RelayedFetch:
    return RelayedFetch(
        latency_ms=int(data["latency_ms"]),
        call_latencies_ms=tuple(float(ms) for ms in data["call_latencies_ms"]),
        rows_seen=int(data["rows_seen"]),
        reconnects=int(data["reconnects"]),
        outcomes={str(k): int(v) for k, v in data["call_outcomes"].items()},
        fields=dict(data["log_fields"]),
    )


def raised_in_child(name: str, detail: str) -> PricingError:
    """The child's error as the same class here (``NothingToAccept`` stays a 409)."""
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, PricingError):
        try:
            return kind(detail)
        except TypeError:  # a class with more arguments (none is raised by a child's job)
            pass
    return PricingError(f"{name}: {detail}")


@dataclass(frozen=True, slots=True)
class ChildEnd:
    """How a child ended: its result message, or why it has none."""

    result: dict[str, Any] | None
    failure: str | None  # set when the child ended without a result (killed, crashed)


class ChildRefresher(Refresher):
    """A ``Refresher`` whose runs, acceptances and seeds run in a child process."""

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout_seconds = settings.pricing_refresh_timeout_seconds
        self._settings = encode_settings(settings)
        self.children_started = 0

    # -- the three kinds of work, in a child ----------------------------------------------

    async def _run(self, ticket: Ticket) -> RunSummary:
        job = {"job": Job.RUN, "run_id": ticket.run.id}
        try:
            end = await self._in_child(job, ticket)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                reason = (
                    "lease lost: another process took over the refresh"
                    if ticket.lease_lost
                    else "cancelled: the service stopped mid-run"
                )
                await self._close_unrecorded(ticket.run.id, reason)
            raise
        if end.failure is not None:
            return await self._close_unrecorded(ticket.run.id, end.failure)
        return await self._db(self._existing_run, ticket.run.id)

    async def _apply_acceptance(
        self, run_id: int, by: str, model_ids: tuple[str, ...], figure: str
    ) -> Acceptance:
        job = {
            "job": Job.ACCEPT,
            "run_id": run_id,
            "by": by,
            "model_ids": list(model_ids),
            "figure": figure,
        }
        result = self._result(await self._in_child(job), Message.ACCEPTED)
        return Acceptance(
            run=await self._db(self._existing_run, run_id),
            accepted=tuple(result["accepted"]),
            snapshot=decode_snapshot(result["snapshot"]),
        )

    async def _store_seed(self) -> SnapshotInfo:
        result = self._result(await self._in_child({"job": Job.SEED}), Message.SEEDED)
        return decode_snapshot(result["snapshot"])

    def _result(self, end: ChildEnd, kind: Message) -> dict[str, Any]:
        if end.result is None:
            raise PricingError(f"not applied: {end.failure}")
        if end.result["kind"] == Message.ERROR:
            raise raised_in_child(str(end.result["error"]), str(end.result["detail"]))
        if end.result["kind"] != kind:
            raise PricingError(f"not applied: the refresh process answered {end.result['kind']}")
        return end.result

    async def _close_unrecorded(self, run_id: int, reason: str) -> RunSummary:
        """Record the run as failed with ``reason`` when the child left it running."""
        run = await self._db(self._existing_run, run_id)
        if run.status is not RunStatus.RUNNING:
            return run
        failed = await self._fail(run, reason, None, None)
        self._report("refresh.failed", logging.ERROR, run_id=run_id, error="child", detail=reason)
        return failed

    # -- the child process -------------------------------------------------------------------

    async def _in_child(self, job: dict[str, Any], ticket: Ticket | None = None) -> ChildEnd:
        """Run ``job`` in a child, relaying its events and publishes; bounded, never orphaned."""
        env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        started = time.perf_counter()
        process = await anyio.open_process(
            [sys.executable, "-m", CHILD_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the child logs where this process logs
            env=env,
        )
        self.children_started += 1
        self._report("refresh.child_started", job=job["job"], child_pid=process.pid)
        result: dict[str, Any] | None = None
        failure: str | None = None
        try:
            assert process.stdin is not None
            assert process.stdout is not None
            line = json.dumps({**job, "settings": self._settings}) + "\n"
            await process.stdin.send(line.encode())
            with anyio.move_on_after(self.timeout_seconds) as scope:
                result = await self._relay(BufferedByteReceiveStream(process.stdout))
                await process.wait()
            if scope.cancelled_caught:
                failure = (
                    f"the refresh process outlived {self.timeout_seconds:g} s "
                    "(PRICING_REFRESH_TIMEOUT_SECONDS) and was killed"
                )
                await self._kill(process)
            elif result is None:
                failure = f"the refresh process exited with code {process.returncode} unfinished"
        except anyio.get_cancelled_exc_class():
            failure = "stopped with this process"
            with anyio.CancelScope(shield=True):
                lease = ticket is not None and ticket.lease_lost
                await self._stop(process, Stop.LEASE if lease else Stop.STOPPED)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await self._kill(process)
                with anyio.move_on_after(REAP_SECONDS):
                    await process.aclose()
            self._report(
                "refresh.child_ended",
                logging.INFO if failure is None else logging.ERROR,
                job=job["job"],
                child_pid=process.pid,
                returncode=process.returncode,
                failure=failure,
                duration_ms=int((time.perf_counter() - started) * 1000),
            )
        return ChildEnd(result=result, failure=failure)

    async def _relay(self, stream: BufferedByteReceiveStream) -> dict[str, Any] | None:
        """Read the child's lines until it closes its stdout: the result, if it sent one."""
        result = None
        while True:
            try:
                line = await stream.receive_until(b"\n", MAX_LINE_BYTES)
            except (anyio.EndOfStream, anyio.IncompleteRead):
                return result
            message = json.loads(line)
            kind = message.get("kind")
            if kind in RESULTS:
                result = message
            elif kind == Message.EVENT:
                for observer in self.observers:
                    observer(str(message["name"]), dict(message["fields"]))
            elif kind == Message.FETCH:
                fetch = decode_fetch(message["fetch"])
                for fetch_observer in self.fetch_observers:
                    fetch_observer(fetch)
            elif kind == Message.PUBLISH:
                await self.publish(decode_snapshot(message["snapshot"]))

    async def _stop(self, process: Process, reason: Stop) -> None:
        """Ask the child to stop (it records its run), then kill it past ``STOP_SECONDS``."""
        assert process.stdin is not None
        try:
            await process.stdin.send(json.dumps({"stop": reason}).encode() + b"\n")
            await process.stdin.aclose()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass  # it is gone already
        with anyio.move_on_after(STOP_SECONDS):
            await process.wait()
        await self._kill(process)

    async def _kill(self, process: Process) -> None:
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with anyio.move_on_after(REAP_SECONDS):
            await process.wait()
