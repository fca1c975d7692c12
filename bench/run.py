"""Benchmark (not a test): the selector route against nginx on the same bytes, and its costs.

Run with `make bench`. It starts, on loopback only: the loopback PricePerToken MCP server, the
service (`pricing-service serve --workers 2`, scratch SQLite, Redis db 14) and nginx
serving the bytes fetched from the service; loads both with wrk; then measures refresh time,
RSS per worker and how the views' costs grow with 5,000 and 50,000 synthetic models. Every
process it starts is stopped before it exits. Targets are reported, never asserted.

With ``BENCH_BASE=<revision>`` (``make bench BASE=...``; the Makefile's default is ``00e9700``,
the commit before the refresh moved into a child process) the served parts (serve, health,
workers) run twice in the same invocation: first against that revision's own service (a
``git worktree`` of it under ``var/bench/``, with its own ``.venv`` from its own ``uv.lock``,
kept for the next run), then against this tree; one table compares them. This process (wrk,
nginx, the loopback upstream, the measuring) is this tree's in both runs.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import redis

from pricing_service.app import build_runtime, create_app
from pricing_service.catalog import load_catalog
from pricing_service.config import Settings
from pricing_service.curation import SelectorDataset
from pricing_service.currency import COP
from pricing_service.db import create_db_engine
from pricing_service.domain import ModelPrice, NormalizedListing, PriceBasis, SnapshotInfo
from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.logs import configure_logging
from pricing_service.migrate import upgrade
from pricing_service.replies import render
from pricing_service.repository import Repository
from tests.support.mcp_upstream import LoopbackUpstream
from tests.support.recording import recorded_listing
from tests.support.snapshots import store_listing

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ADMIN = "bench-admin-token"
ROUTE = "/api/v1/pricing/models"
PRICES = "/api/v1/pricing/prices"
CRON = "bench-cron-token"
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
DURATION = int(os.environ.get("BENCH_SECONDS", "6"))
# Each served case is loaded this many times, alternating service and nginx; the table gives
# the medians. One run on this 2-core machine (wrk, two workers and noisy neighbours) varies by
# +-20 %; the median of alternating runs is what a change can be judged on.
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
CONNECTIONS = 64
THREADS = 2
REFRESH_RUNS = 3
SCALES = (5_000, 50_000)
ASGI_REQUESTS = 2_000
# BENCH_ONLY=serve,cold,health (any of refresh, serve, cold, health, workers, scaling): run
# those parts.
PARTS = ("refresh", "serve", "cold", "health", "workers", "scaling")
# The parts run for the base revision too (BENCH_BASE): they start its own `serve`.
COMPARED = ("serve", "health", "workers")
BASE = os.environ.get("BENCH_BASE", "").strip()
# Bounds for preparing the base: its worktree, its environment (uv sync), its bytecode.
PREPARE_SECONDS = float(os.environ.get("BENCH_PREPARE_SECONDS", "900"))
ONLY = {p.strip() for p in os.environ.get("BENCH_ONLY", ",".join(PARTS)).split(",") if p.strip()}
if ONLY - set(PARTS):
    raise SystemExit(f"BENCH_ONLY: unknown part(s) {sorted(ONLY - set(PARTS))}; known: {PARTS}")


def say(text: str = "") -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sh(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv, no shell
    return (done.stdout + done.stderr).strip()


@dataclass
class Target:
    """A service to measure: its source tree and the environment it runs in."""

    label: str
    root: Path
    bin: Path

    @property
    def python(self) -> str:
        return str(self.bin / "python")


CURRENT = Target("this tree", ROOT, BIN)


def run_bounded(
    cmd: list[str], cwd: Path, seconds: float, env: dict[str, str] | None = None
) -> str:
    """``cmd`` to completion within ``seconds`` (killed past it); its output; SystemExit on
    failure, with the output."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=seconds, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise SystemExit(f"bench: {' '.join(cmd)} took over {seconds:.0f} s") from exc
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


def compile_bytecode(target: Target) -> None:
    """Compile the target's environment and package as the Docker image does
    (``UV_COMPILE_BYTECODE=1``). Without .pyc files (uv installs none, and with
    PYTHONDONTWRITEBYTECODE none are written) every worker compiles every module it imports at
    each start: seconds of CPU and about 7 MB of RSS that production never pays."""
    purelib = run_bounded(
        [target.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        target.root,
        60,
    )
    run_bounded(
        [target.python, "-m", "compileall", "-q", "-j", "0", purelib, "pricing_service"],
        target.root,
        PREPARE_SECONDS,
    )


def prepare_base(revision: str) -> Target:
    """A worktree of ``revision`` with its own environment (``make install-dev`` there: its own
    uv.lock), under var/bench/ and kept for the next run (remove it with ``git worktree remove
    var/bench/base-<sha>``)."""
    sha = run_bounded(["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], ROOT, 30)
    tree = ROOT / "var" / "bench" / f"base-{sha[:12]}"
    if not (tree / ".git").exists():
        tree.parent.mkdir(parents=True, exist_ok=True)
        run_bounded(["git", "worktree", "prune"], ROOT, 30)
        run_bounded(["git", "worktree", "add", "--detach", str(tree), sha], ROOT, 120)
    uv = shutil.which("uv") or str(ROOT / ".uv" / "bin" / "uv")
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    run_bounded(["make", "install-dev", f"UV={uv}"], tree, PREPARE_SECONDS, env)
    subject = run_bounded(["git", "log", "-1", "--format=%h %s"], tree, 30)
    say(f"base: {subject[:100]}")
    return Target(f"base {sha[:7]}", tree, tree / ".venv" / "bin")


@dataclass
class Measured:
    """What the comparison table shows of one target."""

    serve: dict[str, tuple[WrkResult, WrkResult]]  # case -> (service, nginx)
    rss_after_refreshes: list[float]
    rss_after_routes: list[float]
    quiet: WrkResult | None = None
    busy: WrkResult | None = None
    health_p99_ms: float = float("nan")
    load: tuple[float, float] = (float("nan"), float("nan"))  # 1-minute load, start and end


# -- the machine ------------------------------------------------------------------------------


def machine() -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    say("## Machine")
    say(f"nproc: {os.cpu_count()}  cpu: {cpu}")
    say(sh("free", "-h"))
    say(
        f"python {platform.python_version()}; {sh('nginx', '-v')}; "
        f"{sh('wrk', '-v').splitlines()[0]}"
    )
    say()


# -- refresh over loopback MCP ------------------------------------------------------------------


async def refresh_times(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'refresh.db'}"
    upgrade(url)
    with LoopbackUpstream() as upstream:
        settings = Settings(
            database_url=url,
            pricepertoken_mcp_url=upstream.url,
            pricing_refresh_on_startup=False,
        )
        fetches: list[float] = []
        fulls: list[float] = []
        async with build_runtime(settings) as runtime:
            for _ in range(REFRESH_RUNS):
                started = time.perf_counter()
                fetch = await runtime.refresher.source.fetch()
                fetches.append(time.perf_counter() - started)
                started = time.perf_counter()
                outcome = await runtime.refresher.refresh("bench", force=True)
                fulls.append(time.perf_counter() - started)
                assert outcome.run.status.value == "succeeded", outcome.run.error
        say("## Refresh over loopback MCP (recorded listing)")
        say(
            f"rows {len(fetch.rows)}, get_model calls per run {len(fetch.details)}, "
            f"{REFRESH_RUNS} runs"
        )
        say(f"fetch only (list + get_model enrichment): {_secs(fetches)}")
        say(f"full refresh (fetch, normalize, gate, store, publish): {_secs(fulls)}")
        say("target: full refresh <= 2 s")
        say()


def _secs(values: list[float]) -> str:
    return " / ".join(f"{v:.2f} s" for v in values) + f" (median {statistics.median(values):.2f} s)"


# -- wrk ------------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: str


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, headers: dict[str, str]) -> WrkResult:
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout  # noqa: S603 - fixed argv, no shell
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    notes = ", ".join(
        x
        for x in ((f"non-2xx/3xx {bad.group(1)}" if bad else ""), errors.group(1) if errors else "")
        if x
    )
    # On an overloaded machine wrk may print no distribution: nan, not a crash of the bench.
    p50, p99 = (_ms(latency[k]) if k in latency else float("nan") for k in ("50", "99"))
    return WrkResult(rps, p50, p99, notes or ("" if latency else "no latency printed"))


def median_of(runs: list[WrkResult]) -> WrkResult:
    """Median req/s, p50 and p99 of several runs (each taken on its own)."""
    return WrkResult(
        statistics.median(r.rps for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        "; ".join(r.errors for r in runs if r.errors),
    )


# -- the service and nginx --------------------------------------------------------------------


class Processes:
    """Every process the benchmark starts, stopped (process group) on the way out."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(
        self, cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                cmd,
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)


# On a shared 2-core machine at a load average of 15 a fresh `serve` took over 30 s to answer.
READY_SECONDS = float(os.environ.get("BENCH_READY_SECONDS", "180"))


def wait_http(url: str, timeout: float = READY_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url, timeout=1).status_code < 500:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


NGINX_CONF = """
worker_processes 2;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    # nginx closes a keep-alive connection after 1,000 requests by default; uvicorn never does.
    keepalive_requests 1000000;
    client_body_temp_path {dir}/tmp-body;
    proxy_temp_path {dir}/tmp-proxy;
    fastcgi_temp_path {dir}/tmp-fastcgi;
    uwsgi_temp_path {dir}/tmp-uwsgi;
    scgi_temp_path {dir}/tmp-scgi;
    default_type application/json;
    etag off;
    server {{
        listen 127.0.0.1:{port};
        # `alias` is lost inside the `if` block below; `root` is inherited by it.
        root {dir}/www;
        location = /curated.json {{
            add_header ETag '{curated_etag}' always;
            add_header Cache-Control '{cache_control}' always;
            add_header Vary Accept-Encoding always;
            if ($http_if_none_match = '{curated_etag}') {{ return 304; }}
        }}
        location = /all.json.gz {{
            add_header ETag '{all_etag}' always;
            add_header Cache-Control '{cache_control}' always;
            add_header Vary Accept-Encoding always;
            add_header Content-Encoding gzip;
        }}
        location = /prices.json.gz {{
            add_header ETag '{prices_etag}' always;
            add_header Cache-Control '{cache_control}' always;
            add_header Vary Accept-Encoding always;
            add_header Content-Encoding gzip;
        }}
    }}
}}
"""


@dataclass
class Fetched:
    status: int
    headers: dict[str, str]
    raw: bytes  # exactly as served (httpx2 would inflate gzip)


def _raw_get(url: str, headers: dict[str, str]) -> Fetched:
    with httpx2.Client(timeout=10) as client:
        request = client.build_request("GET", url, headers=headers)
        response = client.send(request, stream=True)
        try:
            raw = b"".join(response.iter_raw())
        finally:
            response.close()
        return Fetched(response.status_code, dict(response.headers), raw)


def load_tests(workdir: Path, procs: Processes, target: Target = CURRENT) -> Measured:
    """The served parts against ``target``'s `serve` (migrated by its own CLI)."""
    measured = Measured(serve={}, rss_after_refreshes=[], rss_after_routes=[])
    db = f"sqlite:///{workdir / 'serve.db'}"
    store = redis.Redis.from_url(BENCH_REDIS_URL, socket_connect_timeout=2)
    store.flushdb()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with LoopbackUpstream() as upstream:
        env = {
            **os.environ,
            "DATABASE_URL": db,
            "REDIS_URL": BENCH_REDIS_URL,
            "PRICEPERTOKEN_MCP_URL": upstream.url,
            "PRICING_CRON_TOKEN": CRON,
            "PRICING_REFRESH_ON_STARTUP": "false",
            # The production defaults: INFO, the summarized access log.
            "PRICING_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
            "PRICING_ACCESS_LOG": os.environ.get("BENCH_ACCESS_LOG", "summary"),
            "PRICING_RATE_LIMIT_PER_MINUTE": "100000",
            "PRICING_ADMIN_TOKEN": ADMIN,
        }
        run_bounded([str(target.bin / "pricing-service"), "migrate"], target.root, 120, env)
        service = procs.start(
            [
                str(target.bin / "pricing-service"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            env,
            workdir / "service.log",
            cwd=target.root,
        )
        wait_http(f"{base}/ready")
        for _ in range(50):  # a worker may still hold the lease while it stores the seed
            refreshed = httpx2.post(
                f"{base}/api/v1/pricing/refresh",
                headers={"Authorization": f"Bearer {CRON}"},
                json={"force": True},
                timeout=120,
            )
            if refreshed.status_code != 202:
                break
            time.sleep(0.2)
        assert refreshed.status_code == 200, refreshed.text
        # Both workers must serve the refreshed snapshot (each re-reads the pointer every 2 s).
        switched = time.monotonic()
        deadline = switched + 20
        while True:
            sources = {
                httpx2.get(f"{base}{ROUTE}", timeout=10).json()["snapshot"]["source"]
                for _ in range(40)
            }
            if sources == {"pricepertoken"}:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"a worker still serves {sources} 20 s after the refresh")
            time.sleep(0.5)
        say(
            f"every worker served the refreshed snapshot {time.monotonic() - switched:.1f} s "
            "after the refresh answered"
        )
        workers = [p for p in children(service.pid) if "spawn" in _cmdline(p)]

        if "serve" in ONLY:
            serving(workdir, procs, env, base, workers, service.pid, measured)
        if "cold" in ONLY and target is CURRENT:
            cold_start(workdir, procs, env)
        if "health" in ONLY:
            measured.health_p99_ms = health_during_refresh(base, upstream)
        if "workers" in ONLY:
            workers_after_refreshes(workdir / "serve.db", base, upstream, workers, measured)
        procs.stop_all()
    store.flushdb()
    store.close()
    return measured


def serving(
    workdir: Path,
    procs: Processes,
    env: dict[str, str],
    base: str,
    workers: list[int],
    master: int,
    measured: Measured,
) -> None:
    """The selector under wrk against nginx on the same bytes; RSS per worker after."""
    curated = _raw_get(f"{base}{ROUTE}", {"Accept-Encoding": "identity"})
    all_gz = _raw_get(f"{base}{ROUTE}?view=all", {"Accept-Encoding": "gzip"})
    assert all_gz.headers.get("content-encoding") == "gzip"
    all_plain = _raw_get(f"{base}{ROUTE}?view=all", {"Accept-Encoding": "identity"})
    assert gzip.decompress(all_gz.raw) == all_plain.raw
    prices_gz = _raw_get(f"{base}{PRICES}", {"Accept-Encoding": "gzip"})
    assert prices_gz.headers.get("content-encoding") == "gzip"
    ngx = workdir / "nginx"
    ngx.mkdir()
    (ngx / "www").mkdir()
    # nginx workers run as an unprivileged user: let them through the 0700 scratch dir.
    for path in (workdir, ngx, ngx / "www"):
        path.chmod(0o755)
    (ngx / "www" / "curated.json").write_bytes(curated.raw)
    (ngx / "www" / "all.json.gz").write_bytes(all_gz.raw)
    (ngx / "www" / "prices.json.gz").write_bytes(prices_gz.raw)
    nport = free_port()
    (ngx / "nginx.conf").write_text(
        NGINX_CONF.format(
            dir=ngx,
            port=nport,
            curated_etag=curated.headers["etag"],
            all_etag=all_gz.headers["etag"],
            prices_etag=prices_gz.headers["etag"],
            cache_control=curated.headers["cache-control"],
        )
    )
    procs.start(["nginx", "-c", str(ngx / "nginx.conf"), "-p", str(ngx)], env, ngx / "out.log")
    nbase = f"http://127.0.0.1:{nport}"
    wait_http(f"{nbase}/curated.json")
    same = _raw_get(f"{nbase}/curated.json", {})
    assert same.raw == curated.raw, (same.status, same.headers, same.raw[:200])
    assert _raw_get(f"{nbase}/all.json.gz", {}).raw == all_gz.raw
    assert (
        _raw_get(f"{nbase}/curated.json", {"If-None-Match": curated.headers["etag"]}).status == 304
    )

    say("## Serving: the service (uvicorn, 2 workers, Redis) vs nginx (2 workers), same bytes")
    say(
        f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s --latency; curated body "
        f"{len(curated.raw):,} B; view=all gzip {len(all_gz.raw):,} B "
        f"(identity {len(all_plain.raw):,} B); /prices gzip {len(prices_gz.raw):,} B"
    )
    say()
    say("| case | service req/s | p50 | p99 | nginx req/s | p50 | p99 | service/nginx |")
    say("|---|---:|---:|---:|---:|---:|---:|---:|")
    cases: list[tuple[str, str, str, dict[str, str]]] = [
        ("curated 200 (identity)", f"{ROUTE}", "/curated.json", {}),
        (
            "view=all 200 (gzip)",
            f"{ROUTE}?view=all",
            "/all.json.gz",
            {"Accept-Encoding": "gzip"},
        ),
        (
            "/prices 200 (gzip)",
            PRICES,
            "/prices.json.gz",
            {"Accept-Encoding": "gzip"},
        ),
        ("curated 304", f"{ROUTE}", "/curated.json", {"If-None-Match": "ETAG"}),
    ]
    results: dict[str, WrkResult] = {}
    spreads: list[str] = []
    for name, target, npath, headers in cases:
        etag = httpx2.get(f"{base}{ROUTE}", timeout=10).headers["etag"]
        sheaders = {k: (etag if v == "ETAG" else v) for k, v in headers.items()}
        nheaders = {k: (curated.headers["etag"] if v == "ETAG" else v) for k, v in headers.items()}
        mines: list[WrkResult] = []
        theirses: list[WrkResult] = []
        for _ in range(REPEATS):
            mines.append(wrk(f"{base}{target}", sheaders))
            theirses.append(wrk(f"{nbase}{npath}", nheaders))
        changed = httpx2.get(f"{base}{ROUTE}", timeout=10).headers["etag"] != etag
        mine, theirs = median_of(mines), median_of(theirses)
        results[name] = mine
        measured.serve[name] = (mine, theirs)
        note = " (ETag changed mid-run!)" if changed else ""
        note += f" [service: {mine.errors}]" if mine.errors else ""
        note += f" [nginx: {theirs.errors}]" if theirs.errors else ""
        say(
            f"| {name}{note} | {mine.rps:,.0f} | {mine.p50_ms:.2f} ms | {mine.p99_ms:.2f} ms "
            f"| {theirs.rps:,.0f} | {theirs.p50_ms:.2f} ms | {theirs.p99_ms:.2f} ms "
            f"| {mine.rps / theirs.rps:.2f}x |"
        )
        spreads.append(
            f"{name}: service {', '.join(f'{r.rps:,.0f}' for r in mines)}; "
            f"nginx {', '.join(f'{r.rps:,.0f}' for r in theirses)}"
        )
    plain = wrk(f"{base}{ROUTE}?view=all", {"Accept-Encoding": "identity"})
    say(
        f"| view=all 200 (identity), service only | {plain.rps:,.0f} | {plain.p50_ms:.2f} ms "
        f"| {plain.p99_ms:.2f} ms | | | | |"
    )
    say()
    say(f"req/s of each run ({REPEATS} alternating runs per case; the table has the medians):")
    for line in spreads:
        say(f"- {line}")
    say()
    say(
        "no per-request compression: gzip answers "
        f"{results['view=all 200 (gzip)'].rps:,.0f} req/s vs identity {plain.rps:,.0f} req/s "
        "on the same view"
    )
    say(
        "RSS after the load: "
        + ", ".join(f"worker {p}: {rss_mb(p):.0f} MB" for p in workers)
        + f"; master {rss_mb(master):.0f} MB (target <= 150 MB per worker)"
    )
    say()


def cold_start(workdir: Path, procs: Processes, env: dict[str, str]) -> None:
    """A deploy meeting traffic: load starts 2 s after `serve` starts, on a fresh process."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(BIN / "pricing-service"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    started = time.monotonic()
    procs.start([*cmd, "--workers", "2"], env, workdir / "cold.log")
    time.sleep(2.0)
    # uvicorn's parent binds the port before its workers have started: from then on,
    # connections queue in the backlog. Load starts as soon as it is bound (2 s at the earliest).
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    bound = time.monotonic() - started
    result = wrk(f"{base}{ROUTE}", {"Accept-Encoding": "identity"})
    say(
        f"## A fresh `serve` loaded from {bound:.1f} s after it started, as soon as its port "
        "was bound (curated view, 2 workers)"
    )
    say(
        f"{result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms"
        + (f" [{result.errors}]" if result.errors else "")
        + " (connections refused before the port opens count as errors)"
    )
    say()


def _tenfold(upstream: LoopbackUpstream) -> int:
    """Serve a 10x listing (5,330 models) from the loopback upstream; returns its size."""
    rows, details = upstream.data.rows, upstream.data.details
    big_rows, big_details = list(rows), dict(details)
    for n in range(1, 10):
        for row in rows:
            slug = f"{row['slug']}-x{n}"
            big_rows.append({**row, "slug": slug})
            big_details[slug] = {
                **details[row["slug"]],
                "slug": slug,
                "model": f"{details[row['slug']]['model']}-x{n}",
            }
    upstream.set_data(rows=big_rows, details=big_details)
    return len(big_rows)


def health_during_refresh(base: str, upstream: LoopbackUpstream) -> float:
    """/health latency while one worker refreshes a 10x listing (5,330 models)."""
    rows, details = upstream.data.rows, upstream.data.details
    models = _tenfold(upstream)
    answer = httpx2.post(
        f"{base}/api/v1/pricing/refresh",
        headers={"Authorization": f"Bearer {CRON}"},
        json={"force": True, "wait_seconds": 0},
        timeout=30,
    )
    run_id = answer.json().get("run_id") or answer.json().get("run", {}).get("id")
    latencies: list[float] = []
    deadline = time.monotonic() + 300
    with httpx2.Client(base_url=base, timeout=10) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            client.get("/health")
            latencies.append(time.perf_counter() - started)
            run = client.get(
                f"/api/v1/pricing/runs/{run_id}", headers={"Authorization": f"Bearer {CRON}"}
            ).json()
            if run.get("status") != "running":
                break
            time.sleep(0.01)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    say(f"## /health during a refresh of {models:,} models (run {run_id}: {run.get('status')})")
    say(
        f"{len(latencies)} requests: p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms (target: under 50 ms)"
    )
    say()
    upstream.set_data(rows=rows, details=details)
    return p99


def workers_after_refreshes(
    db: Path, base: str, upstream: LoopbackUpstream, workers: list[int], measured: Measured
) -> None:
    """What a refresh costs the serving workers: each one's RSS after three refreshes (which
    worker ran each run, from the runs' records), and the selector's p99 while a worker
    refreshes a 10x listing against its p99 without a refresh."""
    auth = {"Authorization": f"Bearer {CRON}"}
    say(f"## Serving workers before and after {REFRESH_RUNS} refreshes")
    say(
        "before (the seed and one refresh behind them): "
        + ", ".join(f"worker {p}: {rss_mb(p):.0f} MB" for p in workers)
    )
    for _ in range(REFRESH_RUNS - 1):  # one ran before the load
        # A run still closing (the /health part's held 10x run) answers 202: asked again.
        deadline = time.monotonic() + 120
        while True:
            answer = httpx2.post(
                f"{base}/api/v1/pricing/refresh", headers=auth, json={"force": True}, timeout=120
            )
            if answer.status_code != 202 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert answer.status_code == 200, answer.text
    with sqlite3.connect(db) as conn:  # the runs record their worker; the API does not show it
        ran = [
            str(w)
            for (w,) in conn.execute(
                "SELECT worker FROM refresh_run WHERE worker IS NOT NULL ORDER BY id DESC LIMIT ?",
                (REFRESH_RUNS,),
            )
        ]
    for pid in workers:
        mine = sum(1 for w in ran if w.endswith(f":{pid}"))
        say(f"- after: worker {pid}: {rss_mb(pid):.0f} MB RSS, ran {mine} of the refreshes")
    measured.rss_after_refreshes = [rss_mb(p) for p in workers]
    every_route(base)
    measured.rss_after_routes = [rss_mb(p) for p in workers]
    say(
        "after every route (twice each, so both workers): "
        + ", ".join(f"worker {p}: {rss_mb(p):.0f} MB" for p in workers)
    )
    say("target: <= 100 MB per serving worker, whatever it ran")
    quiet = wrk(f"{base}{ROUTE}", {"Accept-Encoding": "identity"})
    rows, details = upstream.data.rows, upstream.data.details
    models = _tenfold(upstream)
    answer = httpx2.post(
        f"{base}/api/v1/pricing/refresh",
        headers=auth,
        json={"force": True, "wait_seconds": 0},
        timeout=30,
    )
    run_id = answer.json().get("run_id") or answer.json().get("run", {}).get("id")
    busy = wrk(f"{base}{ROUTE}", {"Accept-Encoding": "identity"})
    run = httpx2.get(f"{base}/api/v1/pricing/runs/{run_id}", headers=auth, timeout=10).json()
    deadline = time.monotonic() + 300
    while run.get("status") == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        run = httpx2.get(f"{base}/api/v1/pricing/runs/{run_id}", headers=auth, timeout=10).json()
    say(
        f"selector (curated, identity) without a refresh: {quiet.rps:,.0f} req/s, "
        f"p50 {quiet.p50_ms:.2f} ms, p99 {quiet.p99_ms:.2f} ms"
    )
    say(
        f"during a refresh of {models:,} models (run {run_id}, {run.get('status')}, "
        f"{run.get('duration_ms') or '?'} ms): {busy.rps:,.0f} req/s, p50 {busy.p50_ms:.2f} ms, "
        f"p99 {busy.p99_ms:.2f} ms" + (f" [{busy.errors}]" if busy.errors else "")
    )
    say("after it: " + ", ".join(f"worker {p}: {rss_mb(p):.0f} MB" for p in workers))
    say()
    measured.quiet, measured.busy = quiet, busy
    upstream.set_data(rows=rows, details=details)


# A usage object of every format POST /estimate reads (usage.py); a base without the route or
# a format answers 4xx, which is fine here: this only makes a worker do what serving does.
USAGES: tuple[dict[str, Any], ...] = (
    {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 200},
    },
    {"input_tokens": 1200, "output_tokens": 300, "input_tokens_details": {"cached_tokens": 100}},
    {"input_tokens": 1200, "output_tokens": 300, "cache_read_input_tokens": 400},
    {
        "promptTokenCount": 1200,
        "candidatesTokenCount": 300,
        "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 50}],
    },
)
ROUTES = (
    "/health",
    "/ready",
    "/metrics",
    f"{ROUTE}",
    f"{ROUTE}?view=all",
    f"{ROUTE}?ids=gpt-4o,gpt-4-1106-preview,nope",
    PRICES,
    "/api/v1/pricing/changes",
    "/api/v1/pricing/local",
    "/api/v1/pricing/estimate?model_id=gpt-4o&input_tokens=1000&output_tokens=100",
)
OPERATOR_ROUTES = ("/api/v1/pricing/runs", "/api/v1/pricing/runs/1", "/api/v1/pricing/debug/sample")
CONSOLE_PAGES = (
    "/admin",
    "/admin/selector",
    "/admin/modelo?id=gpt-4o",
    "/admin/cambios",
    "/admin/ejecuciones",
    "/admin/sugerencias",
    "/admin/desconocidos",
    "/admin/ollama",
    "/admin/notificaciones",
)


def every_route(base: str) -> None:
    """Every route a serving worker answers, twice each (two workers behind one port): the
    selector's and operators' GETs, POST /estimate with a usage object of every format, and
    the console signed in. A 5xx stops the bench."""
    auth = {"Authorization": f"Bearer {CRON}"}
    with httpx2.Client(base_url=base, timeout=30) as client:
        for _ in range(2):
            answers = [client.get(path) for path in ROUTES]
            answers += [client.get(path, headers=auth) for path in OPERATOR_ROUTES]
            answers += [
                client.post("/api/v1/pricing/estimate", json={"model_id": "gpt-4o", "usage": usage})
                for usage in USAGES
            ]
            form = client.get("/admin/ingresar")
            csrf = form.text.split('name="csrf" value="', 1)[-1].split('"', 1)[0]
            answers.append(client.post("/admin/ingresar", data={"csrf": csrf, "token": ADMIN}))
            answers += [client.get(path) for path in CONSOLE_PAGES]
            failed = [f"{a.request.method} {a.request.url.path}: {a.status_code}" for a in answers]
            failed = [f for f, a in zip(failed, answers, strict=True) if a.status_code >= 500]
            if failed:
                raise RuntimeError(f"5xx from {failed}")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# -- scaling: synthetic listings ----------------------------------------------------------


def synthetic(count: int, seed: int = 6) -> list[ModelPrice]:
    rng = random.Random(seed)  # noqa: S311 - synthetic prices, not secrets
    providers = [f"provider-{n:02d}" for n in range(40)]
    prices = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.08:
            usd_in = usd_out = None
        elif roll < 0.12:
            usd_in = usd_out = Decimal(0)
        else:
            usd_in = Decimal(rng.randint(1, 2_000_000)).scaleb(-4)
            usd_out = usd_in * rng.choice((2, 4, 5, 8))
        provider = rng.choice(providers)
        prices.append(
            ModelPrice(
                model_id=f"synthetic-model-{i:06d}",
                slug=f"{provider}-synthetic-model-{i:06d}",
                provider=provider,
                display_name=f"Synthetic Model {i}",
                input_usd_per_million=usd_in,
                output_usd_per_million=usd_out,
                price_basis=PriceBasis.OFFICIAL,
                context_window=rng.choice((8_192, 32_768, 131_072, 1_000_000)),
                capabilities=("function_calling", "streaming"),
                input_modalities=("text",),
                output_modalities=("text",),
            )
        )
    return prices


def recorded_prices() -> list[ModelPrice]:
    data = recorded_listing()
    return list(normalize_listing(data.rows, data.details).prices)


async def asgi_loop(
    app: Any, requests: list[tuple[str, bytes, list[tuple[bytes, bytes]]]]
) -> list[float]:
    """Drive the app over raw ASGI (no socket, no client library); seconds per request."""
    timings = []
    for path, query, headers in requests:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8080),
            "state": {},
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        started = time.perf_counter()
        await app(scope, receive, send)
        timings.append(time.perf_counter() - started)
        assert sent[0]["status"] in (200, 304), sent[0]
    return timings


async def with_lifespan(app: Any, body: Any) -> Any:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        return await body()
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def scaling(workdir: Path) -> None:
    catalog = load_catalog(ROOT / "catalog")
    say("## Cost as the listing grows (in process, one worker)")
    say(
        "dataset build = SelectorDataset(...); render = view dict + JSON encode + SHA-256 ETag + "
        "gzip level 6 (once per snapshot, view and minute); per request = the real app over raw "
        f"ASGI, median of {ASGI_REQUESTS} requests (no socket: framework + service only)"
    )
    say()
    say(
        "| models | dataset build | view | render | body | gzip | first request "
        "| per request 200 | per request 304 |"
    )
    say("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for label, prices in (
        ("recorded", recorded_prices()),
        *((str(n), synthetic(n)) for n in SCALES),
    ):
        info = SnapshotInfo(
            id=1, fetched_at=datetime.now(UTC), source="pricepertoken", model_count=len(prices)
        )
        started = time.perf_counter()
        dataset = SelectorDataset(
            snapshot=info,
            prices=prices,
            catalog=catalog,
            rate=Decimal(4000),
            rate_source="bench",
            currency=COP,
        )
        build = time.perf_counter() - started
        url = f"sqlite:///{workdir / f'scale-{label}.db'}"
        upgrade(url)
        engine = create_db_engine(url)
        store_listing(
            Repository(engine),
            NormalizedListing(prices=tuple(prices), rows_seen=len(prices), field_names=()),
            fetched_at=datetime.now(UTC),
        )
        engine.dispose()
        app = create_app(
            Settings(
                database_url=url,
                pricepertoken_mcp_url="http://127.0.0.1:9/mcp",
                pricing_refresh_on_startup=False,
                pricing_log_level="WARNING",
            )
        )
        for view, query, accept in (("curated", b"", b"identity"), ("all", b"view=all", b"gzip")):
            started = time.perf_counter()
            payload = dataset.render(view=view, now=datetime.now(UTC), ttl_seconds=86400)
            rendered = render(payload, compress=True)
            render_s = time.perf_counter() - started
            headers = [(b"host", b"bench"), (b"accept-encoding", accept)]

            async def measure(
                query: bytes = query,
                headers: list[tuple[bytes, bytes]] = headers,
                app: Any = app,
            ) -> tuple[float, float, float]:
                first = (await asgi_loop(app, [(ROUTE, query, headers)]))[0]
                loop = await asgi_loop(app, [(ROUTE, query, headers)] * ASGI_REQUESTS)
                # The ETag of this minute's body, from the app itself.
                sent: list[dict[str, Any]] = []

                async def receive() -> dict[str, Any]:
                    return {"type": "http.request", "body": b""}

                async def send(message: dict[str, Any]) -> None:
                    sent.append(message)

                await app(
                    {
                        "type": "http",
                        "asgi": {"version": "3.0"},
                        "http_version": "1.1",
                        "method": "GET",
                        "scheme": "http",
                        "path": ROUTE,
                        "raw_path": ROUTE.encode(),
                        "query_string": query,
                        "root_path": "",
                        "headers": headers,
                        "client": ("127.0.0.1", 5000),
                        "server": ("127.0.0.1", 8080),
                        "state": {},
                    },
                    receive,
                    send,
                )
                etag = dict(sent[0]["headers"])[b"etag"]
                not_modified = await asgi_loop(
                    app, [(ROUTE, query, [*headers, (b"if-none-match", etag)])] * ASGI_REQUESTS
                )
                return first, statistics.median(loop), statistics.median(not_modified)

            first, per_200, per_304 = await with_lifespan(app, measure)
            say(
                f"| {len(prices):,} | {build * 1000:,.0f} ms | {view} | {render_s * 1000:,.1f} ms "
                f"| {len(rendered.body):,} B | {len(rendered.gzip or b''):,} B "
                f"| {first * 1000:,.0f} ms "
                f"| {per_200 * 1e6:,.0f} µs | {per_304 * 1e6:,.0f} µs |"
            )
    say()
    say(
        "first request = the worker reads the snapshot from the database, builds the dataset and "
        "renders the view; a refresh's publish does the same work ahead of requests"
    )
    say()


def measured_run(workdir: Path, procs: Processes, target: Target) -> Measured:
    workdir.mkdir(parents=True)
    say(f"# The served parts: {target.label} ({target.root})")
    say()
    started = os.getloadavg()[0]
    measured = load_tests(workdir, procs, target)
    measured.load = (started, os.getloadavg()[0])
    return measured


def _mb(values: list[float]) -> str:
    return ", ".join(f"{v:.0f} MB" for v in values) if values else "-"


def _rate(pair: tuple[WrkResult, WrkResult] | None) -> str:
    if pair is None:
        return "-"
    mine, nginx = pair
    return (
        f"{mine.rps:,.0f} req/s, p99 {mine.p99_ms:.1f} ms; nginx {nginx.rps:,.0f}: "
        f"{mine.rps / nginx.rps:.2f}x"
    )


def _p99(result: WrkResult | None) -> str:
    return "-" if result is None else f"{result.rps:,.0f} req/s, p99 {result.p99_ms:.1f} ms"


def comparison(compared: list[tuple[Target, Measured]]) -> None:
    """One table: the base revision's service beside this tree's, measured in this run."""
    (before_t, before), (after_t, after) = compared
    rows: list[tuple[str, str, str]] = [
        (
            f"RSS per serving worker after {REFRESH_RUNS} refreshes (target <= 100 MB)",
            _mb(before.rss_after_refreshes),
            _mb(after.rss_after_refreshes),
        ),
        (
            "RSS per serving worker after every route too (POST /estimate, console)",
            _mb(before.rss_after_routes),
            _mb(after.rss_after_routes),
        ),
    ]
    for case in dict.fromkeys([*before.serve, *after.serve]):
        rows.append(
            (
                f"selector {case} vs nginx",
                _rate(before.serve.get(case)),
                _rate(after.serve.get(case)),
            )
        )
    rows += [
        ("selector (curated) without a refresh", _p99(before.quiet), _p99(after.quiet)),
        ("selector (curated) during a 10x refresh", _p99(before.busy), _p99(after.busy)),
        (
            "/health p99 during a 10x refresh",
            f"{before.health_p99_ms:.1f} ms",
            f"{after.health_p99_ms:.1f} ms",
        ),
        (
            "load average (1 min) at its start -> end",
            "{:.1f} -> {:.1f}".format(*before.load),
            "{:.1f} -> {:.1f}".format(*after.load),
        ),
    ]
    say(f"## Before and after, one run: {before_t.label} vs {after_t.label}")
    say(f"| | {before_t.label} | {after_t.label} |")
    say("|---|---|---|")
    for name, left, right in rows:
        say(f"| {name} | {left} | {right} |")
    say()


def main() -> int:
    configure_logging("WARNING")
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} not found (make bench installs it with apt-get)")
    started = time.monotonic()
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="pricing-bench-"))
    workdir.chmod(0o755)  # nginx's workers (an unprivileged user) read files below it
    try:
        machine()
        compared: list[tuple[Target, Measured]] = []
        if BASE and ONLY & set(COMPARED):
            base = prepare_base(BASE)
            for target in (base, CURRENT):
                compile_bytecode(target)
            compared.append((base, measured_run(workdir / "base", procs, base)))
        else:
            compile_bytecode(CURRENT)
        if "refresh" in ONLY:
            asyncio.run(refresh_times(workdir))
        if ONLY & {"serve", "cold", "health", "workers"}:
            compared.append((CURRENT, measured_run(workdir / "current", procs, CURRENT)))
        if "scaling" in ONLY:
            asyncio.run(scaling(workdir))
        if len(compared) == 2:
            comparison(compared)
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    say(f"bench took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
