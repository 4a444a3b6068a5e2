"""The commands: what each RPC method does, given parameters that are already valid.

Parameters arrive parsed by :mod:`invreq.params` (so every value here is in range); the
answers are the JSON objects of CLN's schemas, key order included. The pipeline of
``invoicerequest`` is: build the unsigned stream (native core) -> approval by a device
(``--approver hwi``) -> signature from the signer -> verified by the core before it is
attached -> durable in the store -> reply. A failure at any step stores nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from invreq import __version__, bolt12, paging, views
from invreq.approval import approval_text, verify_approval
from invreq.bound import PayoutBound
from invreq.errors import Bolt12Error, InvalidParams, SignatureError, SignerError
from invreq.store.base import ListQuery, Record, RequestStore

if TYPE_CHECKING:
    from invreq.blindpaths import PathMaker
    from invreq.lnurl import Links
    from invreq.metrics import Metrics
    from invreq.signers.base import Approver, Signer

__all__ = ["Service"]


async def _outcome(call: Awaitable[Any]) -> Any:
    """The call's answer, or the exception it failed with."""
    try:
        return await call
    except Exception as e:
        return e


METADATA_LEN = 16  # bytes of CSPRNG per request (REFERENCE §1), as CLN writes

_verifying: ThreadPoolExecutor | None = None
_verifying_made = threading.Lock()


async def _verified_off_the_loop(
    unsigned: list[bolt12.UnsignedInvoiceRequest], signatures: list[bytes]
) -> list[tuple[str, str | None] | None]:
    """``bolt12.with_signatures`` of a batch's requests, run in a thread of its own.

    The core verifies without the GIL (about 25 µs a signature here), so in this thread
    the batch's verifications run on the second core while the loop serves the other
    connections, instead of holding them all for the whole batch. Only for batches: a
    single request's check is cheaper than the hop to a thread and back, and measured
    worse that way (the result waits for the loop to give up the GIL). One thread per
    process, made on first use (never in a ``--workers`` parent before its fork).
    """
    global _verifying
    if len(unsigned) < 2:
        return list(bolt12.with_signatures(unsigned, signatures))
    with _verifying_made:
        if _verifying is None:
            _verifying = ThreadPoolExecutor(max_workers=1, thread_name_prefix="invreq-verify")
    loop = asyncio.get_running_loop()
    return list(
        await loop.run_in_executor(_verifying, bolt12.with_signatures, unsigned, signatures)
    )


@dataclasses.dataclass
class Service:
    network: str
    store: RequestStore
    signer: Signer
    clock: Callable[[], float] = time.time
    approver: Approver | None = None
    #: --payout-approver hwi: its key is stored with every request made (see _record)
    payout_approver: Approver | None = None
    metrics: Metrics | None = None
    #: With a CLN backend: every request carries a blinded path to the paying node.
    paths: PathMaker | None = None
    #: With --lnurl: single-use requests also carry an LNURL-withdraw link (invreq.lnurl).
    lnurl: Links | None = None
    #: --allow-unlimited-payouts: with an approver, reusable requests without max_payouts
    allow_unlimited_payouts: bool = False
    #: With HTTP on: the payee page's address of a request (``page_url`` in the replies).
    page_url: Callable[[str], str] | None = None

    async def invoicerequest(
        self,
        amount: int,
        description: str,
        issuer: str | None = None,
        label: str | None = None,
        absolute_expiry: int | None = None,
        single_use: bool = True,
        max_payouts: int | None = None,
        payout_window: int | None = None,
    ) -> dict[str, Any]:
        created_at = int(self.clock())
        bound = self._bound(single_use, max_payouts, payout_window, created_at)
        unsigned = self._build(amount, description, issuer, absolute_expiry)
        invreq_id = unsigned.invreq_id.hex()
        approval = None
        if self.approver is not None:
            approval = await self._approve(
                approval_text(
                    network=self.network,
                    amount_msat=amount,
                    description=description,
                    issuer=issuer,
                    absolute_expiry=absolute_expiry,
                    invreq_id=invreq_id,
                    bound=bound,
                ),
                invreq_id,
            )
        started = time.perf_counter()
        signature = await self.signer.sign_invoice_request(unsigned.tlv_stream, unsigned.digest)
        if self.metrics is not None:
            self.metrics.signer.observe(time.perf_counter() - started)
        try:
            signed = unsigned.with_signature(signature)
        except SignatureError as e:
            # A signer that answers with a wrong signature is broken or hostile: nothing is
            # stored, and the caller learns that the signer, not its input, failed.
            raise SignerError(f"signer returned an invalid signature: {e}") from e
        record = self._record(
            invreq_id, signed.bolt12, label, created_at, bound, approval, absolute_expiry
        )
        await self.store.insert(record)
        return self._with_page(
            views.record_json(record, unsigned=signed.bolt12_unsigned, links=self._links(record))
        )

    def _record(
        self,
        invreq_id: str,
        signed: str,
        label: str | None,
        created_at: int,
        bound: PayoutBound,
        approval: dict[str, Any] | None,
        absolute_expiry: int | None,
    ) -> Record:
        """A new request's record, signed string and all."""
        return Record(
            invreq_id=invreq_id,
            bolt12=signed,
            label=label,
            active=True,
            single_use=bound.single_use,
            used=False,
            created_at=created_at,
            payer_key=self.signer.key_id,
            approval=approval,
            max_payouts=bound.max_payouts,
            payout_until=bound.payout_until,
            # Decided now and stored: the pay path requires a verifying approval of it
            # whatever configuration pays it later (invreq.payments.authority).
            approval_required=self.approver is not None,
            absolute_expiry=absolute_expiry,
            # One withdrawal per link (its k1 is useless once the request is collected):
            # reusable requests keep the BOLT 12 door only.
            lnurl_k1=self.lnurl.new_k1() if self.lnurl is not None and bound.single_use else None,
            # Decided now as well: each payout of this request needs this device's yes,
            # whichever instance or configuration pays it (invreq.payments.authority).
            payout_approver_key=None
            if self.payout_approver is None
            else self.payout_approver.pubkey.hex(),
        )

    def _links(self, record: Record) -> dict[str, str] | None:
        """The request's LNURL (both forms) while this service serves that door."""
        if self.lnurl is None or record.lnurl_k1 is None:
            return None
        return self.lnurl.links_json(record.lnurl_k1)

    def _build(
        self, amount: int, description: str, issuer: str | None, absolute_expiry: int | None
    ) -> bolt12.UnsignedInvoiceRequest:
        """A new request's unsigned form (one crossing into the native core)."""
        metadata = os.urandom(METADATA_LEN)  # the OS CSPRNG, as secrets uses, minus two layers
        return bolt12.UnsignedInvoiceRequest(
            metadata=metadata,
            # Inside the signed records: invreq_id and the signature cover the path.
            paths=[] if self.paths is None else self.paths.paths(metadata),
            description=description,
            amount_msat=amount,
            payer_id=self.signer.payer_id,
            absolute_expiry=absolute_expiry,
            issuer=issuer,
            chain=bolt12.chain_for_network(self.network),
        )

    async def invoicerequests(self, calls: list[dict[str, Any]]) -> list[Any]:
        """Many ``invoicerequest`` calls (a batch's run of them, parameters bound) as one:
        each built, then signed, then every signature verified and attached in one crossing
        into the native core (without the GIL, in a thread beside the loop), every record
        handed to the store in the same turn (one commit for all), answered in order. Each
        answer is the call's reply or the exception that call alone failed with; a failure
        stores nothing of that call.

        With an approver, each request waits for the device in turn: the calls run one by
        one as ``invoicerequest``."""
        if self.approver is not None:
            return [await _outcome(self.invoicerequest(**call)) for call in calls]
        out: list[Any] = [None] * len(calls)
        ready: list[tuple[int, bolt12.UnsignedInvoiceRequest, bytes, PayoutBound]] = []
        now = int(self.clock())
        for i, call in enumerate(calls):
            try:
                bound = self._bound(
                    call.get("single_use", True),
                    call.get("max_payouts"),
                    call.get("payout_window"),
                    now,
                )
                unsigned = self._build(
                    call["amount"],
                    call["description"],
                    call.get("issuer"),
                    call.get("absolute_expiry"),
                )
                started = time.perf_counter()
                signature = await self.signer.sign_invoice_request(
                    unsigned.tlv_stream, unsigned.digest
                )
                if self.metrics is not None:
                    self.metrics.signer.observe(time.perf_counter() - started)
            except Exception as e:  # this call's failure, answered as invoicerequest would
                out[i] = e
                continue
            ready.append((i, unsigned, signature, bound))
        strings = await _verified_off_the_loop([r[1] for r in ready], [r[2] for r in ready])
        records: list[tuple[int, Record, str | None]] = []
        for (i, unsigned, _, bound), signed in zip(ready, strings, strict=True):
            if signed is None:
                out[i] = SignerError("signer returned an invalid signature")
                continue
            invreq_id = unsigned.invreq_id.hex()
            call = calls[i]
            record = self._record(
                invreq_id,
                signed[0],
                call.get("label"),
                now,
                bound,
                None,
                call.get("absolute_expiry"),
            )
            records.append((i, record, signed[1]))
        stored = await asyncio.gather(
            *(self.store.insert(r) for _, r, _ in records), return_exceptions=True
        )
        for (i, record, unsigned_string), result in zip(records, stored, strict=True):
            out[i] = (
                result
                if isinstance(result, BaseException)
                else self._with_page(
                    views.record_json(record, unsigned=unsigned_string, links=self._links(record))
                )
            )
        return out

    def _with_page(self, out: dict[str, Any]) -> dict[str, Any]:
        if self.page_url is not None:
            out["page_url"] = self.page_url(out["invreq_id"])
        return out

    def _bound(
        self, single_use: bool, max_payouts: int | None, payout_window: int | None, now: int
    ) -> PayoutBound:
        """The payout bound the parameters ask for (rules: :mod:`invreq.bound`)."""
        for name, value in (("max_payouts", max_payouts), ("payout_window", payout_window)):
            if value is None:
                continue
            if single_use:
                raise InvalidParams(
                    f"{name}: only for a reusable request (single_use=false); a single-use "
                    "request is paid once"
                )
            if value == 0:
                raise InvalidParams(f"{name}: should be at least 1")
        bound = PayoutBound(
            single_use=single_use,
            max_payouts=max_payouts,
            payout_until=None if payout_window is None else now + payout_window,
        )
        if bound.unlimited and self.approver is not None and not self.allow_unlimited_payouts:
            raise InvalidParams(
                "max_payouts: a reusable request (single_use=false) without max_payouts would "
                "be paid for every invoice, without limit, on one approval; give max_payouts, "
                "or start invreq with --allow-unlimited-payouts"
            )
        return bound

    async def _approve(self, text: str, invreq_id: str) -> dict[str, Any]:
        """The approver's evidence, accepted only if it is a signature over exactly
        ``text`` (which names this request by position) by the key it reports."""
        assert self.approver is not None
        evidence = await self.approver.approve(text)
        try:
            pubkey = bytes.fromhex(evidence["pubkey"])
        except (KeyError, TypeError, ValueError):
            raise SignerError("approver returned no public key with its approval") from None
        problem = None if evidence.get("message") == text else "it is not over the text sent"
        problem = problem or verify_approval(evidence, invreq_id=invreq_id, pubkey=pubkey)
        if problem is not None:
            raise SignerError(f"approval refused: {problem}")
        return evidence

    async def listinvoicerequests(
        self,
        invreq_id: str | None = None,
        active_only: bool = False,
        index: str | None = None,
        start: int | None = None,
        limit: int | None = None,
        label: str | None = None,
    ) -> paging.Listing[Record]:
        if (start is not None or limit is not None) and index is None:
            # CLN's list commands: `start` and `limit` only make sense along an index.
            raise InvalidParams("index: required when start or limit is given")
        query = ListQuery(
            invreq_id=invreq_id, active_only=active_only, label=label, max_bytes=paging.CHUNK_BYTES
        )

        async def read(first: int | None, n: int) -> list[Record]:
            return await self.store.list(dataclasses.replace(query, start=first, limit=n))

        # Every matching record (as lightningd), read and sent a chunk at a time.
        rows = paging.chunks(read, lambda r: r.created_index, start, limit)
        return paging.Listing(
            "invoicerequests",
            rows,
            lambda r: self._with_page(views.listed_json(r, links=self._links(r))),
        )

    async def disableinvoicerequest(self, invreq_id: str) -> dict[str, Any]:
        """CLN's answer; when payments of this request are still pending (they may yet
        complete: CLN aborts the node in that case, we tell the truth instead), plus
        ``payments_in_flight``, their payment_ids. Only then: otherwise the reply is exactly
        CLN's (its schema allows no other field). Each of them is stamped
        ``request_disabled_at`` in the same transaction."""
        record, pending = await self.store.disable_noting_payments(invreq_id, int(self.clock()))
        out = views.record_json(record)
        if pending:
            out["payments_in_flight"] = [p.payment_id for p in pending]
        return out

    async def decode(self, string: str) -> dict[str, Any]:
        prefix = string.strip().lower()[:4]
        try:
            if prefix == bolt12.INVOICE_HRP + "1":
                return views.decode_invoice_json(bolt12.decode_invoice(string))
            if prefix == bolt12.OFFER_HRP + "1":
                return views.decode_offer_json(bolt12.decode_offer(string))
            return views.decode_json(*bolt12.inspect_invoice_request(string))
        except Bolt12Error as e:
            raise InvalidParams(f"string: {e}") from e

    async def getinfo(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.signer.payer_id.hex(),
            "network": self.network,
            "version": __version__,
            "signer": self.signer.kind,
            "store": self.store.kind,
        }
        if self.paths is not None:
            # Where payees' invoices go: operators check it against the node's own getinfo.
            out["blinded_path"] = {"node_id": self.paths.node_id.hex()}
            if self.paths.introduction is not None:
                out["blinded_path"]["introduction"] = self.paths.introduction.hex()
        return out
