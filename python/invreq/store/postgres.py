"""The shared store: PostgreSQL through asyncpg, for several instances on one database.

Creation is the hot path, so inserts are grouped: a writer task takes every insert waiting
in its queue and sends them as one ``INSERT ... SELECT FROM unnest(...)`` statement, one
round trip and one commit (``synchronous_commit`` as the server is configured, ``on`` by
default: the commit waits for the WAL flush). Only then are the callers answered.

State changes (``disable``, ``mark_used``) are single conditional ``UPDATE``s: whichever
instance's statement the database runs first wins, the other finds the condition false.
No state is decided in process memory.

Migrations are versioned (table ``invreq_schema``) and run under an advisory lock, so two
instances starting at once cannot both apply them.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg

from invreq.bound import PayoutBound
from invreq.errors import (
    AlreadyClaimed,
    CommitFailed,
    DatabaseError,
    NotActive,
    StartupError,
    StoreClosed,
    StoreError,
    UnknownInvoiceRequest,
)
from invreq.store import outbox
from invreq.store.base import (
    Claim,
    Event,
    ListQuery,
    Payment,
    PaymentLimits,
    Record,
    StoredRune,
)
from invreq.store.rows import (
    BOUND_TAKEN,
    LNURL_MIGRATION,
    PAYMENT_BY_ID,
    PAYMENT_COLUMNS,
    PAYMENT_INSERT,
    PAYMENT_INSERT_COUNT,
    PAYOUT_APPROVER_MIGRATION,
    RECENT_ATTEMPTS,
    REQUEST_WINDOW,
    RUNE_COLUMNS,
    UNSETTLED_ATTEMPTS,
    blacklist_range,
    blacklist_row,
    bound_migration,
    bounded_select,
    check_bound,
    limits_reached_per_minute,
    limits_reached_per_request,
    not_pending,
    payment_from_row,
    payment_migration,
    payment_values,
    states,
    stored_rune,
)

__all__ = ["MIGRATIONS", "PostgresStore"]

#: Most inserts one statement carries.
MAX_GROUP = 512
#: What asyncpg raises when the database, the connection or the network fails.
_DRIVER_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
#: Any constant: the key of the advisory lock that serialises migrations.
_MIGRATION_LOCK = 0x696E7672  # "invr"

# No rune string in the database (it is derived again from the master secret, the
# unique id and the restrictions): a new table takes each rune's restrictions (the
# base64 decoded, the 32-byte authcode and the "=<unique id>" restriction cut off) and
# the old table is dropped whole. last_used: unix nanoseconds of the last call that
# passed (CLN's rate=N). The blacklist takes any u64: bounds stored minus 2**63.
_DROP_RUNE_STRINGS = (
    """CREATE TABLE runes_v2 (
        unique_id    BIGINT PRIMARY KEY,
        restrictions TEXT NOT NULL,
        created_at   BIGINT NOT NULL,
        last_used    BIGINT
    )""",
    """INSERT INTO runes_v2 (unique_id, restrictions, created_at)
       SELECT unique_id,
              coalesce(substring(convert_from(substring(
                  decode(translate(rune, '-_', '+/'), 'base64') FROM 33), 'UTF8')
                  FROM '&(.*)$'), ''),
              created_at
       FROM runes""",
    "DROP TABLE runes",
    "ALTER TABLE runes_v2 RENAME TO runes",
    """CREATE TABLE rune_blacklist_u64 (
        first_offset BIGINT NOT NULL,
        last_offset  BIGINT NOT NULL
    )""",
    """INSERT INTO rune_blacklist_u64 (first_offset, last_offset)
       SELECT (first::numeric - 9223372036854775808)::bigint,
              (last::numeric - 9223372036854775808)::bigint
       FROM rune_blacklist""",
    "DROP TABLE rune_blacklist",
)

#: Schema changes, applied in order; the list index + 1 is the version. Never edit one
#: that has shipped: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE invoice_requests (
            created_index BIGSERIAL PRIMARY KEY,
            invreq_id     TEXT NOT NULL UNIQUE,
            bolt12        TEXT NOT NULL,
            label         TEXT,
            active        BOOLEAN NOT NULL,
            single_use    BOOLEAN NOT NULL,
            used          BOOLEAN NOT NULL,
            created_at    BIGINT NOT NULL,
            payer_key     TEXT NOT NULL,
            approval      JSONB
        )""",
        "CREATE INDEX invoice_requests_label ON invoice_requests(label) WHERE label IS NOT NULL",
    ),
    (
        """CREATE TABLE runes (
            unique_id  BIGINT PRIMARY KEY,
            rune       TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )""",
        "CREATE TABLE rune_blacklist (first BIGINT NOT NULL, last BIGINT NOT NULL)",
    ),
    (
        """CREATE TABLE payments (
            payment_id   BIGSERIAL PRIMARY KEY,
            invreq_id    TEXT NOT NULL REFERENCES invoice_requests(invreq_id),
            invoice      TEXT NOT NULL,
            amount_msat  BIGINT NOT NULL,
            payment_hash TEXT NOT NULL,
            status       TEXT NOT NULL,
            created_at   BIGINT NOT NULL,
            resolved_at  BIGINT,
            preimage     TEXT,
            error        TEXT
        )""",
        "CREATE INDEX payments_invreq ON payments(invreq_id)",
    ),
    payment_migration("BIGINT"),
    _DROP_RUNE_STRINGS,
    bound_migration("BIGINT", "BOOLEAN", "false"),
    outbox.events_migration("BIGINT", "BIGSERIAL"),
    LNURL_MIGRATION,
    PAYOUT_APPROVER_MIGRATION,
)

#: The first schema version without rune strings.
RUNE_STRINGS_DROPPED = MIGRATIONS.index(_DROP_RUNE_STRINGS) + 1

_COLUMNS = (
    "invreq_id, bolt12, label, active, single_use, used, created_at, payer_key, "
    "created_index, approval, max_payouts, payout_until, approval_required, absolute_expiry,"
    " lnurl_k1, payout_approver_key"
)


def _sql(text: str, **more: str) -> str:
    """Shared SQL (invreq.store.outbox) with asyncpg's numbered parameters."""
    return text.format(**{f"p{i}": f"${i}" for i in range(1, 10)}, **more)


async def _emit(
    conn: Any,
    kind: str,
    invreq_id: str,
    at: int,
    *,
    payment_id: int | None = None,
    amount: int | None = None,
    detail: str | None = None,
) -> None:
    """One event, in the changing transaction (invreq.store.outbox)."""
    await conn.execute(_sql(outbox.EVENT_INSERT), kind, payment_id, amount, at, detail, invreq_id)


async def _bump(conn: Any, subsystem: str, key: Any) -> None:
    """The subsystem's updated index + 1 (its row lock orders the transactions that change
    the subsystem), stamped on the changed row."""
    n = await conn.fetchval(_sql(outbox.BUMP), subsystem)
    table, column = outbox.SUBSYSTEMS[subsystem]
    if column == "created_index":
        column = "invreq_id"  # requests are found by their id
    await conn.execute(f"UPDATE {table} SET updated_index = $1 WHERE {column} = $2", n, key)


async def _disabled(conn: Any, row: Any, at: int) -> None:
    record = _record(row)
    await _bump(conn, "invoicerequests", record.invreq_id)
    await _emit(
        conn, "request_disabled", record.invreq_id, at, amount=outbox.request_amount(record.bolt12)
    )


async def _check_limits(conn: Any, payment: Payment, limits: PaymentLimits) -> None:
    unsettled = await conn.fetchval(
        UNSETTLED_ATTEMPTS.format(p1="$1", p2="$2"),
        payment.invreq_id,
        payment.created_at - REQUEST_WINDOW,
    )
    if unsettled >= limits.per_request:
        raise limits_reached_per_request(unsettled, limits)
    recent = await conn.fetchval(RECENT_ATTEMPTS.format(p1="$1"), payment.created_at - 60)
    if recent >= limits.per_minute:
        raise limits_reached_per_minute(recent, limits)


#: A row's size for bounded reads (see rows.bounded_select): octet_length of a TOASTed
#: value is its stored length, read without fetching the value.
_RECORD_SIZE = (
    "octet_length(bolt12) + coalesce(octet_length(label), 0)"
    " + coalesce(pg_column_size(approval), 0)"
)
_PAYMENT_SIZE = (
    "octet_length(invoice) + coalesce(octet_length(error), 0)"
    " + coalesce(octet_length(evidence), 0) + coalesce(octet_length(resolved_by), 0)"
)


_EVENT_SIZE = (
    "coalesce(octet_length(label), 0) + coalesce(octet_length(detail), 0)"
    " + coalesce(octet_length(last_error), 0) + 100"
)


def _record(row: Any) -> Record:
    return Record(
        invreq_id=row[0],
        bolt12=row[1],
        label=row[2],
        active=row[3],
        single_use=row[4],
        used=row[5],
        created_at=row[6],
        payer_key=row[7],
        created_index=row[8],
        approval=None if row[9] is None else json.loads(row[9]),
        max_payouts=None if row[10] is None else int(row[10]),
        payout_until=None if row[11] is None else int(row[11]),
        approval_required=bool(row[12]),
        absolute_expiry=row[13],
        lnurl_k1=row[14],
        payout_approver_key=row[15],
    )


class PostgresStore:
    kind = "postgresql"

    def __init__(self, dsn: str, *, pool_size: int = 4) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.commits = 0
        self.writes = 0
        self._pool: asyncpg.Pool | None = None
        self._queue: asyncio.Queue[tuple[Record, asyncio.Future[int]] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        #: called with (seconds, writes) after each commit (metrics)
        self.on_commit: Callable[[float, int], None] | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.pool_size, command_timeout=30
            )
        except _DRIVER_ERRORS as e:
            raise StartupError(f"--db: cannot connect to PostgreSQL: {e}") from None
        try:
            await self._migrate()
        except BaseException:
            await self._pool.close()
            raise
        self._writer = asyncio.create_task(self._write_loop(), name="invreq-pg-writer")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            await self._queue.put(None)  # after every insert already queued
            await self._writer
        if self._pool is not None:
            await self._pool.close()

    @contextlib.asynccontextmanager
    async def _pool_guarded(self) -> AsyncIterator[asyncpg.Pool]:
        """The one guard of every call but the grouped insert: a closed store raises
        ``StoreClosed``, a driver error ``DatabaseError`` (a transaction opened inside is
        rolled back, so nothing was stored)."""
        if self._closed or self._pool is None:
            raise StoreClosed()
        try:
            yield self._pool
        except _DRIVER_ERRORS as e:
            raise DatabaseError(e) from None

    async def _migrate(self) -> None:
        assert self._pool is not None
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS invreq_schema (version INTEGER NOT NULL)"
            )
            version = await conn.fetchval("SELECT max(version) FROM invreq_schema") or 0
            if version > len(MIGRATIONS):
                raise StartupError(
                    f"--db: schema version {version} was written by a newer invreq (this one "
                    f"knows {len(MIGRATIONS)}); upgrade invreq"
                )
            for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO invreq_schema (version) VALUES ($1)", number)

    # --- writes -------------------------------------------------------------------------

    async def insert(self, record: Record) -> int:
        if self._closed or self._writer is None:
            raise StoreClosed()
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put((record, fut))
        return await fut

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            item = await self._queue.get()
            if item is None:
                break
            group = [item]
            while len(group) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
            await self._insert_group(group)

    async def _insert_group(self, group: list[tuple[Record, asyncio.Future[int]]]) -> None:
        assert self._pool is not None
        recs = [r for r, _ in group]
        started = time.perf_counter()
        try:
            # One statement, one round trip, one commit for the whole group. ON CONFLICT
            # keeps one bad row (a repeated invreq_id) from failing the others.
            rows = await self._pool.fetch(
                "INSERT INTO invoice_requests (invreq_id, bolt12, label, active, single_use,"
                " used, created_at, payer_key, approval, max_payouts, payout_until,"
                " approval_required, absolute_expiry, lnurl_k1, payout_approver_key)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[],"
                " $5::bool[], $6::bool[], $7::bigint[], $8::text[], $9::jsonb[],"
                " $10::bigint[], $11::bigint[], $12::bool[], $13::bigint[], $14::text[],"
                " $15::text[])"
                " ON CONFLICT (invreq_id) DO NOTHING RETURNING invreq_id, created_index",
                [r.invreq_id for r in recs],
                [r.bolt12 for r in recs],
                [r.label for r in recs],
                [r.active for r in recs],
                [r.single_use for r in recs],
                [r.used for r in recs],
                [r.created_at for r in recs],
                [r.payer_key for r in recs],
                [None if r.approval is None else json.dumps(r.approval) for r in recs],
                [r.max_payouts for r in recs],
                [r.payout_until for r in recs],
                [r.approval_required for r in recs],
                [r.absolute_expiry for r in recs],
                [r.lnurl_k1 for r in recs],
                [r.payout_approver_key for r in recs],
            )
        except Exception as e:  # asyncpg errors, timeouts: the writer must outlive them
            err = CommitFailed(e)
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(err)
            return
        self.commits += 1
        self.writes += len(rows)
        if self.on_commit is not None:
            self.on_commit(time.perf_counter() - started, len(group))
        index = {row[0]: row[1] for row in rows}
        for rec, fut in group:
            if fut.done():
                continue
            if rec.invreq_id in index:
                fut.set_result(index.pop(rec.invreq_id))
            else:
                fut.set_exception(StoreError(f"invreq_id {rec.invreq_id} already exists"))

    async def _update(
        self, sql: str, invreq_id: str, refused: type[Exception], *, disabling: bool = False
    ) -> Record:
        async with self._pool_guarded() as pool, pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(sql, invreq_id)
            if row is not None:
                if disabling:
                    await _disabled(conn, row, int(time.time()))
                else:
                    await _bump(conn, "invoicerequests", invreq_id)
                return _record(row)
            exists = await conn.fetchval(
                "SELECT 1 FROM invoice_requests WHERE invreq_id = $1", invreq_id
            )
        raise refused() if exists else UnknownInvoiceRequest()

    async def disable(self, invreq_id: str) -> Record:
        return await self._update(
            "UPDATE invoice_requests SET active = false WHERE invreq_id = $1 AND active"
            f" RETURNING {_COLUMNS}",
            invreq_id,
            NotActive,
            disabling=True,
        )

    async def mark_used(self, invreq_id: str) -> Record:
        return await self._update(
            "UPDATE invoice_requests SET used = true,"
            " active = CASE WHEN single_use THEN false ELSE active END"
            " WHERE invreq_id = $1 AND active AND NOT (single_use AND used)"
            f" RETURNING {_COLUMNS}",
            invreq_id,
            NotActive,
        )

    # --- payments (see invreq.payments) --------------------------------------------------

    async def payment_claim(self, payment: Payment, limits: PaymentLimits | None = None) -> Claim:
        async with self._pool_guarded() as pool:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    # The row lock serialises claims on one request across instances (and so
                    # claims of one invoice: its invreq_id is fixed by its records).
                    row = await conn.fetchrow(
                        "SELECT active, single_use, used, max_payouts, payout_until"
                        " FROM invoice_requests WHERE invreq_id = $1 FOR UPDATE",
                        payment.invreq_id,
                    )
                    existing = await conn.fetchrow(
                        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_hash = $1"
                        " AND duplicate_of IS NULL",
                        payment.payment_hash,
                    )
                    if existing is not None:
                        found = payment_from_row(existing)
                        # A refused row becomes the attempt of the same invoice only: it keeps
                        # its invoice, which is what the node will be asked to pay.
                        if not (
                            found.status == "refused"
                            and payment.status == "pending"
                            and found.invoice == payment.invoice
                        ):
                            return Claim(found, new=False)
                    if row is None:
                        raise UnknownInvoiceRequest()
                    # Refused attempts (no backend) claim nothing, but are not recorded for
                    # a request that could not be paid anyway.
                    active, single_use, used, max_payouts, payout_until = row
                    if not active:
                        raise NotActive()
                    if single_use:
                        taken = await conn.fetchval(
                            "SELECT status FROM payments WHERE invreq_id = $1 AND status IN"
                            " ('pending', 'paid') LIMIT 1",
                            payment.invreq_id,
                        )
                        if taken is not None or used:
                            raise AlreadyClaimed(taken or "paid")
                    else:
                        # Under the row lock: another instance's claim on this request
                        # waits, and counts this one.
                        count = await conn.fetchval(BOUND_TAKEN.format(p1="$1"), payment.invreq_id)
                        check_bound(
                            PayoutBound(False, max_payouts, payout_until),
                            int(count),
                            payment.created_at,
                        )
                    if payment.status == "pending" and limits is not None:
                        await _check_limits(conn, payment, limits)
                    if existing is not None:
                        # The refused row of this invoice becomes its attempt: still one row.
                        updated = await conn.fetchrow(
                            "UPDATE payments SET status = $1, created_at = $2, resolved_at = NULL,"
                            " error = NULL, node_id = $3, attempt_deadline = $4"
                            f" WHERE payment_id = $5 RETURNING {PAYMENT_COLUMNS}",
                            payment.status,
                            payment.created_at,
                            payment.node_id,
                            payment.attempt_deadline,
                            existing[0],
                        )
                        claimed = payment_from_row(updated)
                        await _bump(conn, "payments", claimed.payment_id)
                    else:
                        placeholders = ",".join(f"${i}" for i in range(1, PAYMENT_INSERT_COUNT + 1))
                        payment_id = await conn.fetchval(
                            f"INSERT INTO payments ({PAYMENT_INSERT}) VALUES ({placeholders})"
                            " RETURNING payment_id",
                            *payment_values(payment),
                        )
                        claimed = dataclasses.replace(payment, payment_id=int(payment_id))
                    for kind, detail in outbox.claim_events(claimed.status):
                        await _emit(
                            conn,
                            kind,
                            claimed.invreq_id,
                            claimed.created_at,
                            payment_id=claimed.payment_id,
                            amount=claimed.amount_msat,
                            detail=detail,
                        )
            except asyncpg.UniqueViolationError:
                # Another invoice with this payment_hash (for another request) won a race.
                found_now = await self.payment_by_hash(payment.payment_hash)
                if found_now is None:
                    raise StoreError("database error: payment_hash conflict") from None
                return Claim(found_now, new=False)
        return Claim(claimed, new=True)

    async def payment_finish(
        self,
        payment_id: int,
        status: str,
        resolved_at: int,
        *,
        preimage: str | None = None,
        error: str | None = None,
        resolved_by: str | None = None,
        evidence: str | None = None,
    ) -> Payment:
        async with self._pool_guarded() as pool, pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE payments SET status = $1, resolved_at = $2, preimage = $3,"
                " error = $4, resolved_by = $5, evidence = $6"
                f" WHERE payment_id = $7 AND status = 'pending' RETURNING {PAYMENT_COLUMNS}",
                status,
                resolved_at,
                preimage,
                error,
                resolved_by,
                evidence,
                payment_id,
            )
            if row is None:
                now = await conn.fetchrow(PAYMENT_BY_ID.format(p1="$1"), payment_id)
                raise not_pending(payment_id, now)
            done = payment_from_row(row)
            await _bump(conn, "payments", payment_id)
            if status == "paid":
                await conn.execute(
                    "UPDATE invoice_requests SET used = true,"
                    " active = CASE WHEN single_use THEN false ELSE active END"
                    " WHERE invreq_id = $1",
                    row[1],
                )
                await _bump(conn, "invoicerequests", done.invreq_id)
            await _emit(
                conn,
                "paid" if status == "paid" else "failed",
                done.invreq_id,
                resolved_at,
                payment_id=payment_id,
                amount=done.amount_msat,
                detail=error,
            )
        return done

    async def payment_approved(
        self, payment_id: int, approval: dict[str, Any], attempt_deadline: int | None = None
    ) -> Payment:
        async with self._pool_guarded() as pool, pool.acquire() as conn, conn.transaction():
            # GREATEST ignores a NULL: the later of the two, or whichever is set.
            row = await conn.fetchrow(
                "UPDATE payments SET payout_approval = $1,"
                " attempt_deadline = GREATEST(attempt_deadline, $3::bigint)"
                f" WHERE payment_id = $2 AND status = 'pending' RETURNING {PAYMENT_COLUMNS}",
                json.dumps(approval),
                payment_id,
                attempt_deadline,
            )
            if row is None:
                now = await conn.fetchrow(PAYMENT_BY_ID.format(p1="$1"), payment_id)
                raise not_pending(payment_id, now)
        return payment_from_row(row)

    async def payment_count(self, invreq_id: str, status: str) -> int:
        async with self._pool_guarded() as pool:
            count = await pool.fetchval(
                "SELECT count(*) FROM payments WHERE invreq_id = $1 AND status = $2",
                invreq_id,
                status,
            )
        return int(count)

    async def payment_by_hash(self, payment_hash: str) -> Payment | None:
        async with self._pool_guarded() as pool:
            row = await pool.fetchrow(
                f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_hash = $1"
                " AND duplicate_of IS NULL",
                payment_hash,
            )
        return None if row is None else payment_from_row(row)

    async def disable_noting_payments(
        self, invreq_id: str, at: int
    ) -> tuple[Record, builtins.list[Payment]]:
        async with self._pool_guarded() as pool, pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE invoice_requests SET active = false WHERE invreq_id = $1 AND active"
                f" RETURNING {_COLUMNS}",
                invreq_id,
            )
            if row is None:
                exists = await conn.fetchval(
                    "SELECT 1 FROM invoice_requests WHERE invreq_id = $1", invreq_id
                )
                raise NotActive() if exists else UnknownInvoiceRequest()
            await _disabled(conn, row, at)
            pending = await conn.fetch(
                "UPDATE payments SET request_disabled_at = $1 WHERE invreq_id = $2"
                f" AND status = 'pending' RETURNING {PAYMENT_COLUMNS}",
                at,
                invreq_id,
            )
            for p in pending:
                await _bump(conn, "payments", p[0])
        payments = sorted((payment_from_row(p) for p in pending), key=lambda p: p.payment_id)
        return _record(row), payments

    async def payments(
        self,
        invreq_id: str | None = None,
        status: str | None = None,
        *,
        start: int | None = None,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> builtins.list[Payment]:
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if invreq_id is not None:
            args.append(invreq_id)
            where.append(f"invreq_id = ${len(args)}")
        if status is not None:
            args.append(status)
            where.append(f"status = ${len(args)}")
        if start is not None:
            args.append(min(start, 2**63 - 1))  # beyond BIGINT: none
            where.append(f"payment_id >= ${len(args)}")
        rest = "FROM payments"
        if where:
            rest += " WHERE " + " AND ".join(where)
        rest += " ORDER BY payment_id"
        if limit is not None:
            rest += f" LIMIT {int(limit)}"
        if max_bytes is None:
            sql = f"SELECT {PAYMENT_COLUMNS} {rest}"
        else:
            args.append(max_bytes)
            sql = bounded_select(
                PAYMENT_COLUMNS, _PAYMENT_SIZE, rest, "payment_id", f"${len(args)}"
            )
        async with self._pool_guarded() as pool:
            rows = await pool.fetch(sql, *args)
        return [payment_from_row(r) for r in rows]

    # --- runes (see invreq.auth) ---------------------------------------------------------

    async def rune_insert(self, restrictions: str, created_at: int) -> int:
        """Take the next unique id (0, 1, 2 ...), store the rune's restrictions under it."""
        async with self._pool_guarded() as pool, pool.acquire() as conn, conn.transaction():
            # Instances share the counter: the lock makes "max + 1" safe between them.
            await conn.execute("LOCK TABLE runes IN EXCLUSIVE MODE")
            unique_id = int(
                await conn.fetchval("SELECT coalesce(max(unique_id) + 1, 0) FROM runes")
            )
            await conn.execute(
                "INSERT INTO runes (unique_id, restrictions, created_at) VALUES ($1, $2, $3)",
                unique_id,
                restrictions,
                created_at,
            )
        return unique_id

    async def runes(
        self,
        limit: int | None = None,
        *,
        start: int | None = None,
        max_bytes: int | None = None,
    ) -> builtins.list[StoredRune]:
        args: builtins.list[Any] = []
        rest = "FROM runes"
        if start is not None:
            args.append(min(start, 2**63 - 1))
            rest += " WHERE unique_id >= $1"
        rest += " ORDER BY unique_id"
        if limit is not None:
            rest += f" LIMIT {int(limit)}"
        if max_bytes is None:
            sql = f"SELECT {RUNE_COLUMNS} {rest}"
        else:
            args.append(max_bytes)
            size = "octet_length(restrictions)"
            sql = bounded_select(RUNE_COLUMNS, size, rest, "unique_id", f"${len(args)}")
        async with self._pool_guarded() as pool:
            rows = await pool.fetch(sql, *args)
        return [stored_rune(r) for r in rows]

    async def rune(self, unique_id: int) -> StoredRune | None:
        if unique_id >= 2**63:
            return None  # we never issued it (and BIGINT stops there)
        async with self._pool_guarded() as pool:
            row = await pool.fetchrow(
                f"SELECT {RUNE_COLUMNS} FROM runes WHERE unique_id = $1", unique_id
            )
        return None if row is None else stored_rune(row)

    async def rune_used(self, unique_id: int, now_ns: int, previous_ns: int | None) -> bool:
        async with self._pool_guarded() as pool:
            status = await pool.execute(
                "UPDATE runes SET last_used = $1"
                " WHERE unique_id = $2 AND last_used IS NOT DISTINCT FROM $3",
                now_ns,
                unique_id,
                previous_ns,
            )
        return bool(status == "UPDATE 1")

    async def rune_blacklist_add(self, first: int, last: int) -> None:
        async with self._pool_guarded() as pool:
            await pool.execute(
                "INSERT INTO rune_blacklist_u64 (first_offset, last_offset) VALUES ($1, $2)",
                *blacklist_row(first, last),
            )

    async def rune_blacklist(self) -> builtins.list[tuple[int, int]]:
        async with self._pool_guarded() as pool:
            rows = await pool.fetch(
                "SELECT first_offset, last_offset FROM rune_blacklist_u64 ORDER BY 1, 2"
            )
        return [blacklist_range(r) for r in rows]

    # --- events and indexes (see invreq.store.outbox) ----------------------------------------

    async def indexes(self) -> dict[str, dict[str, int]]:
        async with self._pool_guarded() as pool, pool.acquire() as conn:
            updated = {
                r[0]: int(r[1])
                for r in await conn.fetch("SELECT subsystem, updated FROM invreq_indexes")
            }
            out = {}
            for subsystem, (table, column) in outbox.SUBSYSTEMS.items():
                created = await conn.fetchval(f"SELECT coalesce(max({column}), 0) FROM {table}")
                out[subsystem] = {"created": int(created), "updated": updated[subsystem]}
        return out

    async def index_details(
        self, subsystem: str, indexname: str, value: int
    ) -> dict[str, Any] | None:
        async with self._pool_guarded() as pool:
            row = await pool.fetchrow(
                outbox.details_sql(subsystem, indexname, "$1"), min(value, 2**63 - 1)
            )
        return None if row is None else outbox.details_json(subsystem, tuple(row))

    async def events(
        self,
        *,
        invreq_id: str | None = None,
        start: int | None = None,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> builtins.list[Event]:
        args: builtins.list[Any] = [min(start or 0, 2**63 - 1)]
        rest = "FROM events WHERE event_id >= $1"
        if invreq_id is not None:
            args.append(invreq_id)
            rest += " AND invreq_id = $2"
        # Without start: the newest ones (read backwards, returned in order).
        newest = start is None
        rest += " ORDER BY event_id" + (" DESC" if newest else "")
        rest += "" if limit is None else f" LIMIT {int(limit)}"
        sql = f"SELECT {outbox.EVENT_COLUMNS} {rest}"
        if max_bytes is not None and not newest:
            args.append(max_bytes)
            sql = bounded_select(
                outbox.EVENT_COLUMNS, _EVENT_SIZE, rest, "event_id", f"${len(args)}"
            )
        async with self._pool_guarded() as pool:
            rows = await pool.fetch(sql, *args)
        return [outbox.event_from_row(r) for r in (reversed(rows) if newest else rows)]

    async def events_lease(
        self, now: int, owner: str, limit: int, lease_seconds: int
    ) -> builtins.list[Event]:
        async with self._pool_guarded() as pool, pool.acquire() as conn, conn.transaction():
            # SKIP LOCKED: events another instance is leasing right now are left to it.
            due = await conn.fetch(_sql(outbox.DUE) + " FOR UPDATE OF e SKIP LOCKED", now, limit)
            if not due:
                return []
            marks = ",".join(str(int(r[0])) for r in due)
            rows = await conn.fetch(_sql(outbox.LEASE, ids=marks), now + lease_seconds, owner)
        return sorted((outbox.event_from_row(r) for r in rows), key=lambda e: e.event_id)

    async def event_delivered(self, event_id: int, owner: str, at: int) -> bool:
        async with self._pool_guarded() as pool:
            status = await pool.execute(_sql(outbox.DELIVERED), at, event_id, owner)
        return bool(status == "UPDATE 1")

    async def event_retry(self, event_id: int, owner: str, next_at: int, error: str) -> bool:
        async with self._pool_guarded() as pool:
            status = await pool.execute(_sql(outbox.RETRY), next_at, error, event_id, owner)
        return bool(status == "UPDATE 1")

    async def events_release(self, owner: str) -> int:
        async with self._pool_guarded() as pool:
            status = await pool.execute(_sql(outbox.RELEASE), owner)
        return int(status.split()[-1])

    async def note_expired(self, now: int) -> int:
        async with self._pool_guarded() as pool, pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_sql(outbox.EXPIRED, active="active", used="used"), now)
            for r in rows:
                await _emit(
                    conn,
                    "request_expired",
                    r[0],
                    now,
                    amount=outbox.request_amount(r[1]),
                )
        return len(rows)

    # --- reads --------------------------------------------------------------------------

    async def _records(self, sql: str, *args: Any) -> builtins.list[Record]:
        async with self._pool_guarded() as pool:
            rows = await pool.fetch(sql, *args)
        return [_record(r) for r in rows]

    async def count_by_state(self) -> dict[str, int]:
        async with self._pool_guarded() as pool:
            rows = await pool.fetch(
                "SELECT active, used, count(*) FROM invoice_requests GROUP BY active, used"
            )
        return states([tuple(r) for r in rows])

    async def get(self, invreq_id: str) -> Record | None:
        rows = await self._records(
            f"SELECT {_COLUMNS} FROM invoice_requests WHERE invreq_id = $1", invreq_id
        )
        return rows[0] if rows else None

    async def get_by_k1(self, k1: str) -> Record | None:
        rows = await self._records(
            f"SELECT {_COLUMNS} FROM invoice_requests WHERE lnurl_k1 = $1", k1
        )
        return rows[0] if rows else None

    async def list(self, query: ListQuery) -> builtins.list[Record]:
        where: builtins.list[str] = []
        args: builtins.list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if query.invreq_id is not None:
            where.append(f"invreq_id = {arg(query.invreq_id)}")
        if query.active_only:
            where.append("active")
        if query.label is not None:
            where.append(f"label = {arg(query.label)}")
        if query.start is not None:
            # BIGINT is signed 64-bit; anything above holds no record anyway.
            where.append(f"created_index >= {arg(min(query.start, 2**63 - 1))}")
        rest = "FROM invoice_requests"
        if where:
            rest += " WHERE " + " AND ".join(where)
        rest += " ORDER BY created_index"
        if query.limit is not None:
            rest += f" LIMIT {arg(query.limit)}"
        if query.max_bytes is None:
            return await self._records(f"SELECT {_COLUMNS} {rest}", *args)
        bound = arg(query.max_bytes)
        return await self._records(
            bounded_select(_COLUMNS, _RECORD_SIZE, rest, "created_index", bound), *args
        )
