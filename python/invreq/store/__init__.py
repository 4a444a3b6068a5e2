"""Record storage: SQLite (embedded default) and PostgreSQL behind one interface."""

from invreq.store.base import ListQuery, Record, Store

__all__ = ["ListQuery", "Record", "Store"]
