"""Which store a ``--db`` value names: SQLite (the default) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from invreq.errors import StartupError
from invreq.extras import require
from invreq.store.base import Store

__all__ = ["open_store", "sqlite_path"]


def sqlite_path(db: str | None, default_sqlite_path: Path) -> Path | None:
    """The SQLite file a ``--db`` value names (``None``: the default file), or None when it
    names another database."""
    if db is None:
        return default_sqlite_path
    if db.startswith("sqlite:///"):
        return Path(db.removeprefix("sqlite:///")).expanduser()
    return None


def open_store(db: str | None, default_sqlite_path: Path) -> Store:
    """``None`` -> SQLite in the network directory; ``sqlite:///PATH``; ``postgresql://...``."""
    path = sqlite_path(db, default_sqlite_path)
    if path is not None:
        from invreq.store.sqlite import SQLiteStore

        return SQLiteStore(path)
    assert db is not None
    if db.startswith(("postgresql://", "postgres://")):
        require("asyncpg", "--db postgresql://...")
        from invreq.store.postgres import PostgresStore

        return PostgresStore(db)
    raise StartupError(f"--db: {db!r} is not sqlite:///PATH or postgresql://USER@HOST/DB")
