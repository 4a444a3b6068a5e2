"""``--workers`` on SQLite: while the writer process stalls, a worker's waiting writes are
bounded (issue 25: abandoned writes piled up in the workers without end).

A real ``WorkerStore`` over a real socketpair and a real SQLite file; the writer is a
stand-in that says it is ready (the writer's own first frame, in its framing) and then
never answers, as a stalled writer (SIGSTOP, a disk that hangs) would.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from pathlib import Path

import _storerows as storerows
import pytest
from invreq.errors import CODE_STORE, DatabaseError, WriterBusy
from invreq.store import writer
from invreq.store.base import Record
from invreq.store.sqlite import SQLiteStore


def record(i: int) -> Record:
    return storerows.record(i, created_at=1_700_000_000)


async def test_writes_waiting_for_a_stalled_writer_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "MAX_WAITING_WRITES", 50)
    path = tmp_path / "invreq.sqlite3"
    made = SQLiteStore(path)
    await made.open()
    await made.close()
    worker_end, writer_end = socket.socketpair()
    ready = pickle.dumps((writer._READY, str(path)))
    writer_end.sendall(struct.pack("!I", len(ready)) + ready)
    store = writer.WorkerStore(worker_end)
    await store.open()
    try:
        waiting = [asyncio.ensure_future(store.insert(record(i))) for i in range(50)]
        await asyncio.sleep(0.1)
        assert not any(w.done() for w in waiting)  # all sent, none answered
        # The next ones are refused at once, nothing sent; the waiting ones still wait.
        for i in range(50, 60):
            with pytest.raises(WriterBusy) as e:
                await store.insert(record(i))
            assert e.value.code == CODE_STORE and "nothing was written" in e.value.message
        # Abandoned callers do not free their place: their writes may still commit.
        for w in waiting[:10]:
            w.cancel()
        with pytest.raises(WriterBusy):
            await store.insert(record(99))
        # The writer is gone: every waiting write fails with 2002, and the bound is free.
        writer_end.close()
        results = await asyncio.gather(*waiting[10:], return_exceptions=True)
        assert all(isinstance(r, DatabaseError) for r in results)
    finally:
        await store.close()
