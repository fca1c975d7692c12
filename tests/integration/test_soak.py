"""The soak: minutes of ordinary upstream glitches, Redis and database faults and worker kills,
and not one wrong price on screen.

`make soak` runs it (PRICING_SOAK_SECONDS=300); `make test` skips it (it does not fit the
suite's time). Two `pricing-service serve` replicas share PostgreSQL behind a proxy the soak
cuts and stalls, and a private Redis server it pauses and kills. The loopback MCP server serves
the whole recording (533 models, stateful sessions). Each cycle publishes either a legitimate
version of the listing (a few prices moving by at most 10 %) or one glitch (get_model errors
for a few models whose list price is then a wrong figure, a lost session, HTTP 500s, nulls, a
jump of 100x, a drop to 0, a cache price 1000x, a string price, a truncated or inflated list),
sometimes with an infrastructure fault at the same time, and triggers a refresh on a replica.

A checker polls both replicas' `view=all` all the while. A price is wrong when a replica serves
figures (input, output, cache read) for a model that no legitimate version of the listing
ever gave it: a glitch's figure, a list price standing in for a failed detail, a zero. Unknown
is never wrong (it is counted). The counts are printed; the test asserts 0 wrong prices, that
checks ran, that runs succeeded, and that every glitch and fault was exercised.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from sqlalchemy.engine import make_url

from pricing_service.db import create_db_engine
from pricing_service.gate import decided_price
from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.normalize import PriceIndex
from pricing_service.repository import Repository
from pricing_service.second_source import second_source
from pricing_service.seed import load_seed
from tests.support.mcp_upstream import Behaviour, LoopbackUpstream
from tests.support.process import ServiceProcess, free_port
from tests.support.recording import CATALOG, CATALOG_DIR, recorded_listing
from tests.support.snapshots import store_snapshot
from tests.support.tcp_proxy import TcpProxy

if TYPE_CHECKING:
    from collections.abc import Iterator
    from decimal import Decimal
    from pathlib import Path

    from pricing_service.domain import ModelPrice
    from tests.support.recording import Listing

SOAK_SECONDS = float(os.environ.get("PRICING_SOAK_SECONDS", "0"))
SEED = int(os.environ.get("PRICING_SOAK_SEED", "1"))
CRON = "cron-token-for-the-soak"
SEED_RECORDED_AT = load_seed().recorded_at

pytestmark = [
    pytest.mark.skipif(SOAK_SECONDS <= 0, reason="the soak runs with `make soak`"),
    pytest.mark.timeout(SOAK_SECONDS + 600),
]

GLITCHES = (
    "detail_errors",
    "many_detail_errors",
    "session_lost",
    "http_500",
    "nulls",
    "jump",
    "zero",
    "cache_jump",
    "string_price",
    "truncated",
    "inflated",
)
FAULTS = ("redis_pause", "redis_kill", "db_cut", "db_stall", "kill_replica")

Figures = tuple[float | None, float | None, float | None]  # input, output, cache read


# -- the oracle -------------------------------------------------------------------------------


def _figures(price: ModelPrice) -> Figures:
    def number(value: Decimal | None) -> float | None:
        return None if value is None else float(value)

    return (
        number(price.input_usd_per_million),
        number(price.output_usd_per_million),
        number(price.cache_read_usd_per_million),
    )


class Oracle:
    """Every figure a legitimate version of the listing gave each id the selector shows
    (resolved as the service resolves it: bare ids, slugs, ``provider/model``, aliases)."""

    def __init__(self) -> None:
        self.versions: list[PriceIndex] = []
        self._known: dict[tuple[str, Figures], bool] = {}
        self._lock = threading.Lock()

    def publish(self, data: Listing) -> None:
        """A version the upstream is about to serve (normalized as a correct refresh does)."""
        base = normalize_listing(data.rows, data.details).prices
        # Served too: what genai-prices gives the models this version does not list (the
        # seed's fills at the recording's date, a run's at today's), and the figures the
        # catalog's operators' decisions serve while the upstream states what they were taken
        # against.
        second = second_source()
        decided = tuple(
            decided_price(p, CATALOG.decisions[p.model_id], second.price(p))
            for p in base
            if p.model_id in CATALOG.decisions and CATALOG.decisions[p.model_id].applies_to(p)
        )
        indexes = [
            PriceIndex(prices, CATALOG.aliases)
            for prices in (
                base,
                second.unlisted(base, at=SEED_RECORDED_AT),
                second.unlisted(base, at=datetime.now(UTC)),
                decided,
            )
        ]
        with self._lock:
            self.versions.extend(indexes)
            self._known = {key: ok for key, ok in self._known.items() if ok}

    def wrong(self, item: dict[str, Any]) -> str | None:
        """Why a served selector item is a wrong price, or None."""
        if item.get("price_basis") not in ("official", "list", "seed", "second_source"):
            return None  # catalog overrides and local models: not a source's figures
        served: Figures = (
            item.get("input_usd_per_million"),
            item.get("output_usd_per_million"),
            item.get("cache_read_usd_per_million"),
        )
        if served[0] is None or served[1] is None:
            return None  # unknown: never wrong
        key = (str(item["model_id"]), served)
        with self._lock:
            ok = self._known.get(key)
            if ok is None:
                found = (index.resolve(key[0]) for index in self.versions)
                ok = any(p is not None and _figures(p) == served for p in found)
                self._known[key] = ok
        return None if ok else f"{key[0]} served {served}, which no legitimate version gave it"


# -- the world --------------------------------------------------------------------------------


class RedisServer:
    """A private redis-server on a fixed port: paused, killed and started again."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]  # noqa: RUF005
            + ["--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(redis.exceptions.ConnectionError):
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    raise AssertionError("redis-server did not start")
                time.sleep(0.05)
        finally:
            client.close()

    def signal(self, number: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(number)

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


class Replica:
    """One `serve` process, killed and started again on the same port."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.port = free_port()
        self.env = {**env, "PORT": str(self.port)}
        self.tmp_path = tmp_path
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: ServiceProcess | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        process = ServiceProcess(self.env, self.port, cwd=self.tmp_path, ready_timeout=90)
        process.start()
        process.wait_ready()
        with self.lock:
            self.process = process

    def kill(self) -> None:
        with self.lock:
            process, self.process = self.process, None
        if process is not None and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.stop()

    @property
    def alive(self) -> bool:
        with self.lock:
            return self.process is not None


@pytest.fixture
def world(database_url_pg: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    url = make_url(database_url_pg)
    engine = create_db_engine(database_url_pg)
    try:
        store_snapshot(Repository(engine))  # the recording, as a good run left it
    finally:
        engine.dispose()
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    upstream = LoopbackUpstream(stateful=True).start()
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
        env.pop("REDIS_URL", None)
        env.update(
            DATABASE_URL=proxied,
            REDIS_URL=redis_server.url,
            PRICEPERTOKEN_MCP_URL=upstream.url,
            PRICING_CATALOG_DIR=str(CATALOG_DIR),
            PRICING_CRON_TOKEN=CRON,
            PRICING_REFRESH_ON_STARTUP="false",
            PRICING_RATE_LIMIT_PER_MINUTE="100000",
            PRICING_UPSTREAM_CALL_TIMEOUT_SECONDS="5",
            PRICING_UPSTREAM_RUN_TIMEOUT_SECONDS="120",
        )
        replicas = [Replica(env, tmp_path), Replica(env, tmp_path)]
        try:
            for replica in replicas:
                replica.start()
            yield {
                "upstream": upstream,
                "redis": redis_server,
                "proxy": proxy,
                "replicas": replicas,
                "database_url": database_url_pg,
            }
        finally:
            for replica in replicas:
                replica.kill()
            upstream.stop()
            redis_server.kill()


# -- versions of the listing ----------------------------------------------------------------


def _priced_slugs(data: Listing) -> list[str]:
    return sorted(
        slug
        for slug, detail in data.details.items()
        if isinstance(detail.get("pricing"), dict)
        and isinstance(detail["pricing"].get("input_per_1m"), int | float)
        and isinstance(detail["pricing"].get("output_per_1m"), int | float)
        and detail["pricing"]["input_per_1m"] > 0
    )


def _set(data: Listing, slug: str, **pricing: Any) -> None:
    data.details[slug]["pricing"].update(pricing)
    for row in data.rows:
        if row["slug"] == slug:
            for key in ("input_per_1m", "output_per_1m"):
                if key in pricing:
                    row[key] = pricing[key]


def legit_change(data: Listing, rng: random.Random) -> Listing:
    """A few prices moving by at most 10 %, list and official alike."""
    changed = copy.deepcopy(data)
    for slug in rng.sample(_priced_slugs(changed), 5):
        factor = rng.choice((0.9, 0.95, 1.05, 1.1))
        pricing = changed.details[slug]["pricing"]
        moved = {
            key: round(pricing[key] * factor, 6)
            for key in ("input_per_1m", "output_per_1m", "cache_read_per_1m")
            if isinstance(pricing.get(key), int | float)
        }
        _set(changed, slug, **moved)
    return changed


def glitch(kind: str, data: Listing, rng: random.Random, upstream: LoopbackUpstream) -> Listing:
    """``data`` as the upstream answers it during one glitch (the behaviour set on the server)."""
    bad = copy.deepcopy(data)
    slugs = _priced_slugs(bad)
    if kind in ("detail_errors", "many_detail_errors"):
        share = 0.03 if kind == "detail_errors" else 0.1
        failing = set(rng.sample(slugs, int(len(data.rows) * share)))
        for row in bad.rows:  # a host's cheaper list figure, which must never stand in
            if row["slug"] in failing and isinstance(row.get("input_per_1m"), int | float):
                row["input_per_1m"] = round(row["input_per_1m"] * 0.37, 6)
                row["output_per_1m"] = round((row.get("output_per_1m") or 1) * 0.37, 6)
        upstream.set_behaviour(Behaviour.IS_ERROR, tool="get_model", slugs=failing)
    elif kind == "session_lost":
        upstream.set_behaviour(Behaviour.SESSION_LOST, tool="get_model", times=2)
    elif kind == "http_500":
        upstream.set_behaviour(Behaviour.HTTP_500, tool="get_model", times=6)
    elif kind == "nulls":
        for slug in rng.sample(slugs, 5):
            _set(bad, slug, input_per_1m=None, output_per_1m=None)
    elif kind == "jump":
        for slug in rng.sample(slugs, 3):
            pricing = bad.details[slug]["pricing"]
            _set(bad, slug, input_per_1m=pricing["input_per_1m"] * 100)
    elif kind == "zero":
        for slug in rng.sample(slugs, 3):
            _set(bad, slug, input_per_1m=0, output_per_1m=0)
    elif kind == "cache_jump":
        cached = [s for s in slugs if bad.details[s]["pricing"].get("cache_read_per_1m")]
        for slug in rng.sample(cached, 3):
            pricing = bad.details[slug]["pricing"]
            _set(bad, slug, cache_read_per_1m=pricing["cache_read_per_1m"] * 1000)
    elif kind == "string_price":
        slug = rng.choice(slugs)
        _set(bad, slug, input_per_1m=str(bad.details[slug]["pricing"]["input_per_1m"]))
    elif kind == "truncated":
        bad.rows = bad.rows[: len(bad.rows) // 2]
    elif kind == "inflated":
        extra = []
        for copy_no in range(1, 4):
            for row in data.rows:
                slug = f"{row['slug']}-copy{copy_no}"
                extra.append({**row, "slug": slug})
                detail = data.details[row["slug"]]
                model = f"{detail.get('model') or row['slug']}-copy{copy_no}"
                bad.details[slug] = {**detail, "slug": slug, "model": model}
        bad.rows = bad.rows + extra
    return bad


# -- faults -----------------------------------------------------------------------------------


def fault(kind: str, world: dict[str, Any], rng: random.Random) -> None:
    """One infrastructure fault, a few seconds long, then repaired."""
    redis_server: RedisServer = world["redis"]
    proxy: TcpProxy = world["proxy"]
    hold = rng.uniform(1.0, 4.0)
    if kind == "redis_pause":
        redis_server.signal(signal.SIGSTOP)
        time.sleep(hold)
        redis_server.signal(signal.SIGCONT)
    elif kind == "redis_kill":
        redis_server.kill()
        time.sleep(hold)
        redis_server.start()
    elif kind in ("db_cut", "db_stall"):
        proxy.set_mode("reset" if kind == "db_cut" else "blackhole")
        time.sleep(hold)
        proxy.set_mode("pass")
    elif kind == "kill_replica":
        replica: Replica = rng.choice(world["replicas"])
        replica.kill()
        time.sleep(hold)
        replica.start()


# -- the soak ---------------------------------------------------------------------------------


class Checker(threading.Thread):
    """Polls every live replica's view=all and checks each price against the oracle."""

    def __init__(self, replicas: list[Replica], oracle: Oracle) -> None:
        super().__init__(name="soak-checker", daemon=True)
        self.replicas = replicas
        self.oracle = oracle
        self.stop = threading.Event()
        self.counts: Counter[str] = Counter()
        self.wrong: list[str] = []

    def run(self) -> None:
        with httpx2.Client(timeout=5) as http:
            while not self.stop.wait(0.2):
                for replica in self.replicas:
                    if replica.alive:
                        self.check(http, replica)

    def check(self, http: httpx2.Client, replica: Replica) -> None:
        try:
            answer = http.get(f"{replica.url}/api/v1/pricing/models", params={"view": "all"})
        except httpx2.TransportError:
            self.counts["unanswered"] += 1  # a killed or restarting replica
            return
        if answer.status_code != 200:
            self.counts[f"status_{answer.status_code}"] += 1
            return
        for item in answer.json()["items"]:
            self.counts["prices_checked"] += 1
            if item.get("held"):
                self.counts["held_shown"] += 1
            if item.get("price_status") == "unknown":
                self.counts["unknown_shown"] += 1
            reason = self.oracle.wrong(item)
            if reason is not None:
                self.counts["wrong"] += 1
                if len(self.wrong) < 20 and reason not in self.wrong:
                    self.wrong.append(reason)


def refresh(replicas: list[Replica], rng: random.Random) -> str:
    live = [r for r in replicas if r.alive]
    if not live:
        return "no_replica"
    replica = rng.choice(live)
    try:
        answer = httpx2.post(
            f"{replica.url}/api/v1/pricing/refresh",
            headers={"Authorization": f"Bearer {CRON}"},
            json={"force": True, "wait_seconds": 120},
            timeout=150,
        )
    except httpx2.TransportError:
        return "unanswered"
    if answer.status_code != 200:
        return f"status_{answer.status_code}"
    return str(answer.json()["run"]["status"])


def test_no_wrong_price_through_minutes_of_glitches_and_faults(world: dict[str, Any]) -> None:
    rng = random.Random(SEED)
    upstream: LoopbackUpstream = world["upstream"]
    replicas: list[Replica] = world["replicas"]
    oracle = Oracle()
    legit = recorded_listing()
    oracle.publish(legit)
    checker = Checker(replicas, oracle)
    checker.start()
    outcomes: Counter[str] = Counter()
    exercised: Counter[str] = Counter()
    deadline = time.monotonic() + SOAK_SECONDS
    cycle = 0
    try:
        while time.monotonic() < deadline:
            cycle += 1
            # Every glitch and fault once before any repeats, then at random.
            if cycle % 2:
                legit = legit_change(legit, rng)
                oracle.publish(legit)  # before it can be served
                served, kind = legit, "legit"
            else:
                unseen = [g for g in GLITCHES if not exercised[g]]
                kind = unseen[0] if unseen else rng.choice(GLITCHES)
                served = glitch(kind, legit, rng, upstream)
            exercised[kind] += 1
            upstream.set_data(rows=served.rows, details=served.details)
            faulting: threading.Thread | None = None
            if rng.random() < 0.5:
                unseen = [f for f in FAULTS if not exercised[f]]
                name = unseen[0] if unseen else rng.choice(FAULTS)
                exercised[name] += 1
                faulting = threading.Thread(target=fault, args=(name, world, rng), daemon=True)
                faulting.start()
            outcome = refresh(replicas, rng)
            outcomes[f"{kind}:{outcome}"] += 1
            if faulting is not None:
                faulting.join(timeout=120)
                assert not faulting.is_alive(), "a fault did not end"
            upstream.set_behaviour(Behaviour.OK)
            upstream.set_data(rows=legit.rows, details=legit.details)
        # The end: the last legitimate version, every replica on the database's snapshot.
        for replica in replicas:
            if not replica.alive:
                replica.start()
        last = refresh(replicas, rng)
        outcomes[f"final:{last}"] += 1
        time.sleep(5)  # two pointer checks and some more polls on the final snapshot
    finally:
        checker.stop.set()
        checker.join(timeout=30)
    print(f"\nsoak: {SOAK_SECONDS:g} s, seed {SEED}, {cycle} cycles")
    print(f"soak checks: {dict(sorted(checker.counts.items()))}")
    print(f"soak runs: {dict(sorted(outcomes.items()))}")
    print(f"soak exercised: {dict(sorted(exercised.items()))}")
    assert checker.wrong == [], "\n".join(checker.wrong)
    assert checker.counts["prices_checked"] > 0
    assert sum(n for k, n in outcomes.items() if k.endswith(":succeeded")) > 0
    assert set(GLITCHES) <= set(exercised), "a glitch was never exercised: soak longer"
    assert set(FAULTS) <= set(exercised), "a fault was never exercised: soak longer"
    _assert_converged(replicas)


def _assert_converged(replicas: list[Replica]) -> None:
    def snapshot(replica: Replica) -> Any:
        body = httpx2.get(f"{replica.url}/api/v1/pricing/models", timeout=5).json()
        return body["snapshot"]["id"]

    deadline = time.monotonic() + 30
    while True:
        seen = {snapshot(r) for r in replicas}
        if len(seen) == 1:
            return
        assert time.monotonic() < deadline, f"replicas never converged: {seen}"
        time.sleep(0.5)
