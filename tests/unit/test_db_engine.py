"""db.py: a SQLite file engine frees each returned connection's page cache."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import event

from pricing_service.db import _release_page_cache, create_db_engine

if TYPE_CHECKING:
    from pathlib import Path


def test_a_file_database_frees_the_page_cache_of_each_returned_connection(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'pages.db'}")
    try:
        assert event.contains(engine, "checkin", _release_page_cache)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (a TEXT)"))
            conn.execute(
                sa.text("INSERT INTO t VALUES (:a)"), [{"a": f"{i:0500d}"} for i in range(2000)]
            )
        for _ in range(2):  # the same pooled connection, its cache freed in between
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*), max(a) FROM t")).one() == (
                    2000,
                    f"{1999:0500d}",
                )
    finally:
        engine.dispose()


def test_an_in_memory_database_keeps_its_pages() -> None:
    engine = create_db_engine("sqlite://")
    try:
        assert not event.contains(engine, "checkin", _release_page_cache)
    finally:
        engine.dispose()


def test_a_broken_connection_is_returned_without_an_error() -> None:
    closed = sqlite3.connect(":memory:")
    closed.close()
    _release_page_cache(closed, None)
    _release_page_cache(None, None)
