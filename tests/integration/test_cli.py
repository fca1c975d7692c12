"""The pricing-service command as a deployment runs it: migrate, then serve with environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx2
import pytest

from pricing_service.db import create_db_engine
from pricing_service.domain import RunStatus
from pricing_service.repository import Repository
from tests.support.logfmt import parse_logfmt
from tests.support.process import ServiceProcess, cli, free_port
from tests.support.recording import CATALOG_DIR
from tests.support.snapshots import store_snapshot

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.mcp_upstream import LoopbackUpstream


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRICING_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'var' / 'pricing.db'}"
    env["PRICING_CATALOG_DIR"] = str(CATALOG_DIR)
    env.update(extra)
    return env


def test_bad_setting_stops_with_one_line(tmp_path: Path) -> None:
    result = cli(["migrate"], _env(tmp_path, PRICING_USD_TO_COP="abc"), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pricing-service: PRICING_USD_TO_COP: Input should be a valid decimal (got 'abc')"
    ]


def test_version(tmp_path: Path) -> None:
    from pricing_service import __version__

    result = cli(["--version"], _env(tmp_path), tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"pricing-service {__version__}"


def test_migrate_says_what_it_did_in_one_line(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from pricing_service.migrate import alembic_config, upgrade

    env = _env(tmp_path)
    scripts = ScriptDirectory.from_config(alembic_config(env["DATABASE_URL"]))
    head = scripts.get_current_head()
    first = cli(["migrate"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"migrate: upgraded from revision none (empty database) to {head}"
    ]
    assert first.stderr == ""  # alembic's INFO lines are quiet
    again = cli(["migrate"], env, tmp_path)
    assert again.stdout.splitlines() == [f"migrate: already at the latest revision {head}"]
    # From one revision to the next: both are named.
    older = tmp_path / "older.db"
    first_revision = scripts.get_base()
    assert first_revision is not None
    assert upgrade(f"sqlite:///{older}", first_revision) == (None, first_revision)
    if first_revision != head:
        step = cli(["migrate"], {**env, "DATABASE_URL": f"sqlite:///{older}"}, tmp_path)
        assert step.stdout.splitlines() == [
            f"migrate: upgraded from revision {first_revision} to {head}"
        ]


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_unreachable_database_is_one_line(tmp_path: Path, command: str) -> None:
    env = _env(
        tmp_path,
        DATABASE_URL=f"postgresql+psycopg://postgres:hunter2@127.0.0.1:{free_port()}/pricing",
        PORT=str(free_port()),
    )
    result = cli([command], env, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pricing-service: database unavailable: connection failed: ")
    assert "hunter2" not in result.stderr


def test_paths_do_not_depend_on_the_working_directory(tmp_path: Path) -> None:
    # No PRICING_CATALOG_DIR: run from elsewhere, the command still finds the project's catalog.
    env = _env(tmp_path)
    del env["PRICING_CATALOG_DIR"]
    result = cli(["catalog", "check"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "catalog").exists()


def test_migrate_then_serve_answers_health_and_ready(tmp_path: Path) -> None:
    port = free_port()
    # No network: the upstream URL points at a closed loopback port.
    env = _env(
        tmp_path,
        PORT=str(port),
        PRICEPERTOKEN_MCP_URL=f"http://127.0.0.1:{free_port()}/mcp",
        PRICING_LOG_FORMAT="json",
    )
    migrated = cli(["migrate"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    with ServiceProcess(env, port, cwd=tmp_path) as server:
        ready = server.wait_ready()
        assert ready.status_code == 200, ready.text
        health = httpx2.get(f"{server.url}/health", timeout=2)
        assert health.json() == {"status": "ok"}
    # Every line, uvicorn's too, is one JSON object with an event, and SIGTERM loses none of them.
    lines = [json.loads(line) for line in server.output.splitlines()]
    assert all(line.get("event") for line in lines), [line for line in lines if "event" not in line]
    assert {"app.started", "http.summary"} <= {line.get("event") for line in lines}
    assert lines[0]["logger"] == "uvicorn.error"
    assert lines[0]["event"] == "uvicorn.process_started"
    assert lines[-1]["msg"] == f"Finished server process [{server.pid}]"
    assert lines[-1]["event"] == "uvicorn.process_finished"
    # The bundled seed was stored by a refresh child (refresh_process.py), and the startup
    # refresh (to a closed port) runs in another: any line of theirs carries their pid.
    children = {line["child_pid"] for line in lines if line["event"] == "refresh.child_started"}
    assert children, lines
    pids = {line["pid"] for line in lines}
    assert server.pid in pids
    assert pids <= {server.pid} | children


# Two uvicorn workers must start within ServiceProcess's bound: in the serial tier.
@pytest.mark.serial
def test_every_line_of_serve_is_logfmt_with_an_event(tmp_path: Path, sqlite_url: str) -> None:
    # Two workers: the supervisor's lines (parent started, workers stopped) as well as each
    # worker's startup and shutdown, all in the default format a logfmt parser keys on event=.
    port = free_port()
    env = _env(
        tmp_path,
        DATABASE_URL=sqlite_url,  # migrated already (a copy): no `migrate` process
        PORT=str(port),
        PRICEPERTOKEN_MCP_URL=f"http://127.0.0.1:{free_port()}/mcp",
    )
    with ServiceProcess(env, port, args=["serve", "--workers", "2"], cwd=tmp_path) as server:
        assert httpx2.get(f"{server.url}/health", timeout=5).status_code == 200
    assert server.returncode == 0, server.output
    lines = [parse_logfmt(line) for line in server.output.splitlines()]
    assert lines, "serve wrote nothing"
    assert all(line.get("event") for line in lines), server.output
    events = [line["event"] for line in lines]
    # uvicorn's lines are named events, never a bare msg=; startup and shutdown included.
    uvicorn = [line for line in lines if line["logger"].startswith("uvicorn")]
    assert all(not line["event"].endswith(".info") for line in uvicorn), server.output
    parent = {line["pid"] for line in lines if line["event"] == "uvicorn.supervisor_started"}
    assert parent == {str(server.pid)}
    assert events.count("uvicorn.startup_complete") == 2, events
    assert events.count("uvicorn.process_finished") == 2, events
    assert events[-1] == "uvicorn.supervisor_stopped"
    assert {"uvicorn.started", "app.started", "app.stopped", "uvicorn.shutdown_complete"} <= set(
        events
    )


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_serve_rejects_bad_worker_count(tmp_path: Path, workers: str) -> None:
    result = cli(["serve", "--workers", workers], _env(tmp_path), tmp_path)
    assert result.returncode != 0
    assert "--workers must be at least 1" in result.stderr


def test_catalog_check(tmp_path: Path) -> None:
    env = _env(tmp_path)
    ok = cli(["catalog", "check"], env, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "valid" in ok.stdout
    broken = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, broken)
    text = (broken / "specials.toml").read_text()
    (broken / "specials.toml").write_text(text + '\n"gpt-4o-mini-tts" = "karaoke"\n')
    env["PRICING_CATALOG_DIR"] = str(broken)
    bad = cli(["catalog", "check"], env, tmp_path)
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("pricing-service: specials.toml: special 'gpt-4o-mini-tts': ")
    # The service refuses to start on it with the same line.
    serve = cli(["serve"], env, tmp_path)
    assert serve.returncode == 2
    assert serve.stderr.strip().splitlines() == lines


def test_refresh_command(tmp_path: Path, mcp_upstream: LoopbackUpstream) -> None:
    env = _env(tmp_path, PRICEPERTOKEN_MCP_URL=mcp_upstream.url)
    assert cli(["migrate"], env, tmp_path).returncode == 0
    ok = cli(["refresh"], env, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "refresh.started" in ok.stdout
    assert "upstream.list" in ok.stdout
    assert "refresh.completed" in ok.stdout
    assert "refresh: run 1 succeeded rows=533" in ok.stdout
    mcp_upstream.set_behaviour("http_500")
    failed = cli(["refresh", "--force"], env, tmp_path)
    assert failed.returncode == 1
    assert "refresh: run 2 failed" in failed.stdout
    assert "UpstreamUnavailable" in failed.stdout


def test_refresh_killed_midway_leaves_the_previous_snapshot(
    tmp_path: Path, mcp_upstream: LoopbackUpstream
) -> None:
    env = _env(tmp_path, PRICEPERTOKEN_MCP_URL=mcp_upstream.url)
    assert cli(["migrate"], env, tmp_path).returncode == 0
    repository = Repository(create_db_engine(env["DATABASE_URL"]))
    store_snapshot(repository)  # the last good prices, as a finished run left them
    before = repository.current_snapshot()
    assert before is not None
    mcp_upstream.latency = 0.05  # slow enough to be killed in the middle of the enrichment
    calls = mcp_upstream.calls["get_model"]
    process = subprocess.Popen(
        [sys.executable, "-m", "pricing_service", "refresh", "--force"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while mcp_upstream.calls["get_model"] < calls + 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()  # SIGKILL: no cleanup of any kind
    process.wait(timeout=10)
    assert repository.current_snapshot() == before
    abandoned = repository.last_run()
    assert abandoned is not None
    assert abandoned.status is RunStatus.RUNNING
    # The next lease holder closes runs whose process died.
    assert repository.abandon_running_runs(datetime.now(UTC)) == 1
    closed = repository.get_run(abandoned.id)
    assert closed is not None
    assert closed.status is RunStatus.FAILED
    assert closed.error is not None
    # It says what the run was doing and which process ran it.
    assert closed.error.startswith("abandoned while fetching: the process running it (")
    assert f":{process.pid})" in closed.error
    repository.engine.dispose()


def test_catalog_check_refuses_a_curated_model_held_in_the_seed_without_a_decision(
    tmp_path: Path,
) -> None:
    # The repository's catalog ships the decisions: the check passes on it.
    decided = cli(
        ["catalog", "check"], _env(tmp_path, PRICING_CATALOG_DIR=str(CATALOG_DIR)), tmp_path
    )
    assert decided.returncode == 0, decided.stderr
    assert "price decisions: 6 (" in decided.stdout
    assert "held in the bundled seed without a decision: none" in decided.stdout

    undecided = tmp_path / "catalog"
    undecided.mkdir()
    for source in CATALOG_DIR.glob("*.toml"):
        if source.name != "decisions.toml":
            shutil.copy(source, undecided / source.name)
    refused = cli(
        ["catalog", "check"], _env(tmp_path, PRICING_CATALOG_DIR=str(undecided)), tmp_path
    )
    assert refused.returncode == 1, refused.stdout
    # Each curated spelling named, with its category, the hold and the id to decide on.
    assert "google/gemini-1.5-flash (fast: second_source" in refused.stderr
    assert "add a [[decision]] for gemini-1.5-flash" in refused.stderr
    assert "x-ai/grok-3-mini (fast: second_source" in refused.stderr
    assert "deepseek-chat" not in refused.stderr  # held too, but not curated


def test_accept_refuses_a_run_id_out_of_range_before_the_database(tmp_path: Path) -> None:
    for bad in ("2147483648", "0", "-3"):
        result = cli(["refresh", "--accept", bad], _env(tmp_path), tmp_path)
        assert result.returncode == 1, result.stderr
        assert f"--accept must be a run id from 1 to 2147483647, not {bad}" in result.stderr
