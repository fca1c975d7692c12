"""`pricing-service` as a deployment runs it: a real process, a real port, a real shutdown."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Self

import httpx2

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path
    from types import TracebackType


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, waiting to be reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def free_port() -> int:
    """A loopback port nothing listens on (closed again at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Bounds for a child process, generous because they are only there to end a hang: readiness
# (imports, migrations, the seed) and a whole CLI command were seen past 40 s at a load average
# of 11 on 2 cores, while nothing was wrong.
CLI_TIMEOUT_SECONDS = 180.0
READY_TIMEOUT_SECONDS = 120.0


def cli(
    args: Sequence[str], env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """One `python -m pricing_service ...` command to completion (a bound, not a speed goal:
    on a machine loaded several times over, starting Python with the service's imports alone
    has taken tens of seconds)."""
    return subprocess.run(
        [sys.executable, "-m", "pricing_service", *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


class ServiceProcess:
    """`python -m pricing_service serve ...`: spawned, ready, terminated and drained.

    ``with ServiceProcess(env, port) as service: ... service.url ...``; ``service.output`` holds
    everything the process wrote (stdout and stderr), read continuously so a chatty server never
    blocks on a full pipe. Entering waits until ``/ready`` answers 200; leaving sends SIGTERM
    and waits for the process to exit (SIGKILL after ``stop_timeout``).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        port: int,
        *,
        args: Sequence[str] = ("serve",),
        module: str = "pricing_service",
        cwd: Path | None = None,
        ready_timeout: float = READY_TIMEOUT_SECONDS,
        stop_timeout: float = 20.0,
    ) -> None:
        self.env = dict(env)
        self.port = port
        self.args = list(args)
        self.module = module  # `python -m <module> <args>`
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.url = f"http://127.0.0.1:{port}"
        self.returncode: int | None = None
        self.pid: int | None = None
        self._lines: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def start(self) -> Self:
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.pid = self._process.pid
        self._reader = threading.Thread(target=self._drain, name="service-output", daemon=True)
        self._reader.start()
        return self

    def _drain(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.append(line)

    def wait_ready(self) -> httpx2.Response:
        """Poll ``/ready`` until it answers 200; fail with the process output otherwise."""
        assert self._process is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                ready = httpx2.get(f"{self.url}/ready", timeout=2)
                if ready.status_code == 200:
                    return ready
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the service never became ready:\n{self.output}")

    def stop(self) -> int:
        """SIGTERM, wait for the exit and for the output to be read to its end."""
        process = self._process
        if process is None:
            return self.returncode if self.returncode is not None else 0
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung shutdown
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        self.returncode = process.returncode
        self._process = None
        return self.returncode

    def __enter__(self) -> Self:
        self.start()
        self.wait_ready()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def started_together(*services: ServiceProcess) -> Iterator[tuple[ServiceProcess, ...]]:
    """Every service spawned at once, then each waited for until ready, all stopped on leaving:
    their start-ups (seconds each: imports, the first snapshot) overlap instead of adding up."""
    try:
        for service in services:
            service.start()
        for service in services:
            service.wait_ready()
        yield services
    finally:
        for service in services:
            service.stop()
