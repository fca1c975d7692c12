"""The CPU of storing a snapshot (``Repository.apply_plan``), on SQLite and PostgreSQL.

Each round starts from an empty database and stores, through the service's own write step
(``SnapshotWriter``: plan, then one ``apply_plan`` transaction), the recorded PricePerToken
listing (2026-04-29, about 650 models with the second source's):

1. ``seed``: the recording into the empty database (every price, history row, baseline and
   change event new; the prices the second source contradicts held under a seeded run);
2. ``moved``: a run a day later with the prices ``bench.wire_digest`` moves (a fifth, odd
   factors, unknown, delisted, one held, three new);
3. ``same``: the same listing again (only the current prices rewritten);
4. ``accept``: the prices ``same`` held (again) accepted (holds settled, a decision recorded);
5. ``back``: a run with the recording again (the moved prices' history closed, events).

and prints this process's CPU milliseconds (``time.process_time``: user + system of this
process only, the database server's own work not included) per store, in ``apply_plan`` alone
and in the whole write step (planning too): the median over the rounds for each step, and the
mean over all stores. The garbage collector runs as it does in the service, from empty
generations (``gc.collect()`` before each store, not counted). Every time is
fixed, so two trees' stored rows can be compared too: ``--dump FILE`` writes every table's rows
of each engine's last round (ids included) as JSON, and ``--compare FILE`` exits 1 when they differ.

    python -m bench.store_cpu --rounds 10
    python -m bench.store_cpu --rounds 10 --postgres postgresql+psycopg://.../scratch_db
    python -m bench.store_cpu --rounds 1 --dump before.json   # then --compare before.json

``--postgres`` names a scratch database: its tables are migrated and then emptied
(``TRUNCATE ... RESTART IDENTITY``) before every round. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bench.wire_digest import moved_listing
from pricing_service.db import create_db_engine
from pricing_service.domain import AcceptedFigure, NormalizedListing, SnapshotInfo, SnapshotSource
from pricing_service.migrate import upgrade
from pricing_service.repository import Repository
from pricing_service.tables import metadata
from tests.support.recording import normalized_recording
from tests.support.snapshots import writer

if TYPE_CHECKING:
    from collections.abc import Callable

T0 = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)
STEPS = ("seed", "moved", "same", "accept", "back")


class TimedRepository(Repository):
    """A repository that records the CPU of each ``apply_plan``."""

    cpu: list[float]

    def apply_plan(self, *args: Any, **kwargs: Any) -> tuple[SnapshotInfo, int]:
        started = time.process_time()
        try:
            return super().apply_plan(*args, **kwargs)
        finally:
            self.cpu.append(time.process_time() - started)


Cpu = dict[str, dict[str, float]]  # step -> {"apply": apply_plan's CPU, "write": the step's}


def one_round(repository: TimedRepository) -> Cpu:
    """The five stores on an empty database; the CPU of each (``apply_plan``, whole step)."""
    write = writer(repository)
    listing = normalized_recording()
    moved = moved_listing(listing)
    found: Cpu = {}

    def timed(step: str, store: Callable[[], object]) -> None:
        gc.collect()  # each store starts with the collector's generations empty: less noise
        started = time.process_time()
        store()
        found[step] = {"write": time.process_time() - started, "apply": repository.cpu.pop()}
        assert not repository.cpu

    def run(step: str, stored: NormalizedListing, at: datetime) -> int:
        run = repository.start_run("bench", at)
        timed(
            step,
            lambda: write.store_listing(
                stored,
                run_id=run.id,
                source=SnapshotSource.PRICEPERTOKEN,
                planned_at=at,
                fetched_at=at,
                finished_at=at,
            ),
        )
        return run.id

    timed("seed", lambda: write.store_seed(listing, T0))
    run("moved", moved, T0 + timedelta(days=1))
    held_again = run("same", moved, T0 + timedelta(days=2))  # holds the moved run's doubts again
    proposals = repository.held_proposals(held_again, (), AcceptedFigure.PROPOSED.value)
    if proposals:
        accepted_at = T0 + timedelta(days=2, hours=1)
        timed(
            "accept",
            lambda: write.store_accepted(
                proposals, by="bench", figure=AcceptedFigure.PROPOSED.value, now=accepted_at
            ),
        )
    run("back", listing, T0 + timedelta(days=3))
    return found


def dump(engine: sa.Engine) -> dict[str, list[list[str | None]]]:
    """Every table's rows, ordered by primary key, each value as the database stores it (cast
    to text: a JSON null and an SQL NULL differ, as do two spellings of one decimal)."""
    tables: dict[str, list[list[str | None]]] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            query = sa.select(*(sa.cast(c, sa.Text) for c in table.columns)).order_by(
                *table.primary_key.columns
            )
            tables[table.name] = [list(row) for row in conn.execute(query)]
    return tables


def measure(label: str, urls: list[str], reset: Callable[[str], None]) -> None:
    steps: dict[str, list[dict[str, float]]] = {step: [] for step in STEPS}
    for url in urls:
        reset(url)
        engine = create_db_engine(url)
        repository = TimedRepository(engine)
        repository.cpu = []
        try:
            for step, cpu in one_round(repository).items():
                steps[step].append(cpu)
        finally:
            engine.dispose()
    for part, name in (("apply", "apply_plan"), ("write", "write step (plan + apply_plan)")):
        cells = "  ".join(
            f"{step} {statistics.median(c[part] for c in cpus) * 1000:6.1f}"
            for step, cpus in steps.items()
            if cpus
        )
        stores = [c[part] for cpus in steps.values() for c in cpus]
        print(
            f"{label:10} {name:30} CPU ms, median of {len(urls)} rounds: {cells}"
            f"  | mean of {len(stores)} stores {statistics.fmean(stores) * 1000:6.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", metavar="URL", help="a scratch PostgreSQL database")
    parser.add_argument("--dump", type=Path, help="write the last round's rows here")
    parser.add_argument("--compare", type=Path, help="compare the last round's rows")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="store-cpu-"))
    try:
        migrated = scratch / "migrated.db"
        upgrade(f"sqlite:///{migrated}")
        last = scratch / "round.db"

        def fresh_sqlite(url: str) -> None:
            shutil.copyfile(migrated, last)

        measure("sqlite", [f"sqlite:///{last}"] * args.rounds, fresh_sqlite)
        engine = create_db_engine(f"sqlite:///{last}")
        rows = {"sqlite": dump(engine)}
        engine.dispose()
        if args.postgres:
            upgrade(args.postgres)

            def empty_postgres(url: str) -> None:
                engine = sa.create_engine(url)
                names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
                with engine.begin() as conn:
                    conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                engine.dispose()

            measure("postgresql", [args.postgres] * args.rounds, empty_postgres)
            engine = create_db_engine(args.postgres)
            rows["postgresql"] = dump(engine)
            engine.dispose()
    finally:
        shutil.rmtree(scratch)
    if args.dump:
        args.dump.write_text(json.dumps(rows, indent=1))
        count = sum(len(table) for tables in rows.values() for table in tables.values())
        print(f"store_cpu: {count} rows written to {args.dump}")
    if args.compare:
        before = json.loads(args.compare.read_text())
        differ = [
            f"{engine_name} {name}"
            for engine_name in sorted(set(before) | set(rows))
            for name in metadata.tables
            if before.get(engine_name, {}).get(name) != rows.get(engine_name, {}).get(name)
        ]
        for where in differ:
            print(f"store_cpu: table differs: {where}", file=sys.stderr)
        if differ:
            return 1
        print(f"store_cpu: every table's rows identical to {args.compare}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
