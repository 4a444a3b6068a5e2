"""Which store a ``--db`` value names: SQLite (the default) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from invreq.errors import StartupError
from invreq.extras import require
from invreq.store.base import Store

__all__ = ["open_store"]


def open_store(db: str | None, default_sqlite_path: Path) -> Store:
    """``None`` -> SQLite in the network directory; ``sqlite:///PATH``; ``postgresql://...``."""
    if db is None:
        from invreq.store.sqlite import SQLiteStore

        return SQLiteStore(default_sqlite_path)
    if db.startswith("sqlite:///"):
        from invreq.store.sqlite import SQLiteStore

        return SQLiteStore(Path(db.removeprefix("sqlite:///")).expanduser())
    if db.startswith(("postgresql://", "postgres://")):
        require("asyncpg", "--db postgresql://...")
        from invreq.store.postgres import PostgresStore

        return PostgresStore(db)
    raise StartupError(f"--db: {db!r} is not sqlite:///PATH or postgresql://USER@HOST/DB")
