"""The refresh process: ``python -m pricing_service.refresh_child``, started by ``ChildRefresher``.

It reads one job from stdin (``run`` a begun run, ``accept`` what the gate held, ``seed`` an
empty database), does it with the in-process ``Refresher`` of its own runtime (engine, Redis,
upstream client) and exits. It never takes the lease: the parent holds it. It never publishes:
the stored snapshot goes to the parent (``publish`` line), which publishes it. Its messages
are JSON lines on the stdout it was given (anything else printing there goes to stderr instead);
its logs go to stderr in the service's format. It stops, recording its run as failed, on a
``stop`` line, on EOF on stdin (the parent is gone: never an orphan), on SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from pricing_service.app import build_runtime
from pricing_service.errors import PricingError
from pricing_service.logs import configure_logging, flush_logs
from pricing_service.refresh import Ticket
from pricing_service.refresh_process import (
    MAX_LINE_BYTES,
    Job,
    Message,
    Stop,
    decode_settings,
    encode_fetch,
    encode_snapshot,
)

if TYPE_CHECKING:
    from pricing_service.config import Settings
    from pricing_service.domain import SnapshotInfo
    from pricing_service.listings import Fetched
    from pricing_service.refresh import Refresher


class Channel:
    """JSON lines to the parent."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def send(self, kind: Message, **data: Any) -> None:
        self._stream.write(json.dumps({"kind": kind, **data}, default=str) + "\n")
        self._stream.flush()


class _Stdin:
    """Lines from the parent on fd 0, read with os.read: a daemon thread blocked there holds
    no lock that the interpreter's shutdown needs (sys.stdin's buffer would)."""

    def __init__(self) -> None:
        self._buffer = b""

    def readline(self) -> bytes:
        while b"\n" not in self._buffer:
            chunk = os.read(0, 65536)
            if not chunk:  # EOF: the parent closed the pipe, or is gone
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE_BYTES:
                raise ValueError(f"a line from the parent over {MAX_LINE_BYTES} bytes")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"


STDIN = _Stdin()


async def _next_line() -> bytes:
    """The next line on stdin (b"" at EOF), read by a daemon thread: one blocked in read() must
    not keep the process alive once its job is done (an anyio worker thread would)."""
    read = anyio.Event()
    found: list[bytes] = []
    token = anyio.lowlevel.current_token()

    def reader() -> None:
        found.append(STDIN.readline())
        with contextlib.suppress(RuntimeError):  # the event loop has ended meanwhile
            anyio.from_thread.run_sync(read.set, token=token)

    threading.Thread(target=reader, name="parent-watch", daemon=True).start()
    await read.wait()
    return found[0]


async def _work(refresher: Refresher, job: dict[str, Any], ticket: Ticket | None) -> dict[str, Any]:
    name = job["job"]
    if name == Job.RUN:
        assert ticket is not None
        run = await refresher._run(ticket)
        return {"kind": Message.DONE, "run_id": run.id, "status": run.status.value}
    if name == Job.ACCEPT:
        acceptance = await refresher._apply_acceptance(
            int(job["run_id"]), str(job["by"]), tuple(job["model_ids"]), str(job["figure"])
        )
        return {
            "kind": Message.ACCEPTED,
            "run_id": acceptance.run.id,
            "accepted": list(acceptance.accepted),
            "snapshot": encode_snapshot(acceptance.snapshot),
        }
    if name == Job.SEED:
        return {"kind": Message.SEEDED, "snapshot": encode_snapshot(await refresher._store_seed())}
    raise ValueError(f"unknown job {name!r}")


async def run_job(settings: Settings, job: dict[str, Any], channel: Channel) -> int:
    async with build_runtime(settings) as runtime, anyio.create_task_group() as tasks:
        refresher = runtime.refresher

        def on_event(name: str, fields: dict[str, Any]) -> None:
            channel.send(Message.EVENT, name=name, fields=fields)

        def on_fetch(fetch: Fetched) -> None:
            channel.send(Message.FETCH, fetch=encode_fetch(fetch))

        async def publish(info: SnapshotInfo) -> None:
            channel.send(Message.PUBLISH, snapshot=encode_snapshot(info))

        refresher.observers.append(on_event)
        refresher.fetch_observers.append(on_fetch)
        refresher.publish = publish
        ticket = None
        if job["job"] == Job.RUN:
            run = await anyio.to_thread.run_sync(runtime.repository.get_run, int(job["run_id"]))
            if run is None:
                channel.send(
                    Message.ERROR, error="NotFound", detail=f"run {job['run_id']} not found"
                )
                return 2
            ticket = Ticket(run=run)
        stopped = False

        async def watch_parent() -> None:
            """A ``stop`` line or EOF (the parent is gone) on stdin: stop."""
            nonlocal stopped
            line = await _next_line()
            stop = json.loads(line) if line.strip() else {}
            if ticket is not None and stop.get("stop") == Stop.LEASE:
                ticket.lease_lost = True
            stopped = True
            tasks.cancel_scope.cancel()

        async def watch_signals() -> None:
            nonlocal stopped
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    stopped = True
                    tasks.cancel_scope.cancel()
                    return

        tasks.start_soon(watch_parent)
        tasks.start_soon(watch_signals)
        try:
            channel.send(**await _work(refresher, job, ticket))
        except PricingError as exc:
            channel.send(Message.ERROR, error=type(exc).__name__, detail=exc.detail)
        tasks.cancel_scope.cancel()
    return 1 if stopped else 0


def main() -> None:
    # Messages go on a copy of stdout; stdout itself becomes stderr, so that nothing a library
    # prints can corrupt them.
    channel = Channel(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    os.dup2(2, 1)
    job = json.loads(STDIN.readline())
    settings = decode_settings(job.pop("settings"))
    configure_logging(settings.pricing_log_level, settings.pricing_log_format)
    code = anyio.run(run_job, settings, job, channel)
    # The job is done and recorded, its connections closed: skip the interpreter's teardown of
    # every module (seconds on a loaded machine, with the parent waiting for the exit).
    flush_logs()
    os._exit(code)


if __name__ == "__main__":
    main()
