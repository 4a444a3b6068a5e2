"""Every error invreq answers a caller with, and the one place JSON-RPC error objects are made.

Here: each JSON-RPC code's class (``RpcError`` and its subclasses), the byte layer's
errors, and ``StartupError``. Errors that never reach a caller as they are live beside the
code that raises and translates them: ``config.ConfigError`` and ``conffile.ConfFileError``
(become a usage error or ``StartupError``), the device transport's ``TransportError``
family in ``signers/jade_transport.py`` (becomes ``SignerError``), the payment node's
``NodePaymentFailed``, ``OutcomeUnknown`` and ``NodeUnavailable`` in ``payments/node.py``
(become ``PaymentError``, ``PaymentPending`` or a payment left pending), the client-side
errors of another server's reply in ``clnrpc.py``, and the reference device's own in
``refdevice/`` (a separate program).

Byte-layer errors (``Bolt12Error`` and subclasses) are raised by the native core
``invreq._core``; the binding maps its typed Rust errors onto these classes, so Python
code catches them by class, never by parsing messages.

RPC errors carry a stable numeric code (CLN's codes, REFERENCE §6), one class per code (and
per situation a front door answers differently, e.g. ``MissingRune``). Code that decides
what to do with a failure looks at its class, never at numbers inside a serialised reply;
the HTTP doors map classes to statuses. ``RpcError.to_json`` is the only function that
builds a JSON-RPC ``error`` object.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CODE_CATCHALL",
    "CODE_INVALID_PARAMS",
    "CODE_INVALID_REQUEST",
    "CODE_INVOICE_ALREADY_CLAIMED",
    "CODE_INVOICE_AMOUNT",
    "CODE_INVOICE_EXPIRED",
    "CODE_INVOICE_NOT_ACTIVE",
    "CODE_INVOICE_UNKNOWN_REQUEST",
    "CODE_METHOD_NOT_FOUND",
    "CODE_NOT_ACTIVE",
    "CODE_NOT_AUTHORIZED",
    "CODE_NOT_PERMITTED",
    "CODE_PAYMENT_FAILED",
    "CODE_PAYMENT_REFUSED",
    "CODE_REPLY_BUDGET",
    "CODE_REQUEST_EXPIRED",
    "CODE_SERVER_BUSY",
    "CODE_SIGNER",
    "CODE_STORE",
    "AlreadyClaimed",
    "BodyTimeout",
    "Bolt12Error",
    "CommitFailed",
    "DatabaseError",
    "DecodeError",
    "HelpUnknownCommand",
    "InternalError",
    "InvalidFieldError",
    "InvalidParams",
    "InvalidRequest",
    "InvoiceAmount",
    "InvoiceExpired",
    "InvoiceNotActive",
    "InvoiceRefused",
    "InvoiceUnknownRequest",
    "InvoiceWrongPath",
    "MethodNotFound",
    "MissingRune",
    "NotActive",
    "NotAuthorized",
    "NotPermitted",
    "PaymentError",
    "PaymentNotApproved",
    "PaymentRefused",
    "PayoutBoundReached",
    "PayoutDeclined",
    "ReplyBudgetExceeded",
    "RequestExpired",
    "RequestTooLarge",
    "RpcError",
    "RuneError",
    "ServerBusy",
    "SignatureError",
    "SignerError",
    "StartupError",
    "StoreClosed",
    "StoreError",
    "UnknownInvoiceRequest",
    "WriterBusy",
    "listen_error",
]

# --- byte layer -------------------------------------------------------------------------


class Bolt12Error(ValueError):
    """Base class of every error of the BOLT 12 byte layer."""


class DecodeError(Bolt12Error):
    """A string or TLV stream breaks an encoding or reader rule (BOLT 12, REFERENCE §3, §7).

    The message says exactly which rule, e.g. ``unknown even type 78``.
    """


class SignatureError(Bolt12Error):
    """A BIP-340 signature does not verify against the key it must come from."""


class InvalidFieldError(Bolt12Error):
    """A value given to a builder cannot be encoded (e.g. a payer id that is not a point)."""


# --- JSON-RPC ---------------------------------------------------------------------------

CODE_INVALID_REQUEST = -32600
CODE_METHOD_NOT_FOUND = -32601
CODE_INVALID_PARAMS = -32602
CODE_CATCHALL = -1
CODE_NOT_ACTIVE = 1001
# CLN's rune refusals (clnrest and commando): not ours / a restriction is not met.
CODE_NOT_AUTHORIZED = 1501
CODE_NOT_PERMITTED = 1502
# Beyond CLN: failures of the signer (device refused, busy, timed out) and of the store
# (disk full, read-only). Both mean "nothing was created"; codes chosen outside CLN's
# offer/invoice ranges so clients can tell them apart from parameter errors.
CODE_SIGNER = 2001
CODE_STORE = 2002
# Beyond CLN: a batch element left unrun because the batch's replies already reached the
# reply budget (invreq.rpc.MAX_REPLY_BYTES); running it again in another batch is safe.
CODE_REPLY_BUDGET = 2003
#: The process's reply budget (invreq.replybudget) had no room in time: try again.
CODE_SERVER_BUSY = 2004
# Receiving an invoice (receiveinvoice): one code per reason it is refused or not paid.
CODE_INVOICE_UNKNOWN_REQUEST = 2101
CODE_INVOICE_NOT_ACTIVE = 2102
CODE_INVOICE_ALREADY_CLAIMED = 2103
# 2104: a BOLT 11 invoice (the LNURL door) whose amount is not the request's. A BOLT 12
# invoice_amount that differs from invreq_amount is refused by the core's reader first, so
# receiveinvoice answers -32602 naming invoice_amount.
CODE_INVOICE_AMOUNT = 2104
CODE_INVOICE_EXPIRED = 2105
CODE_REQUEST_EXPIRED = 2106
CODE_PAYMENT_REFUSED = 2107
CODE_PAYMENT_FAILED = 2108
# An invoice of ours that came over a blinded path that is not its request's (the plugin).
CODE_INVOICE_WRONG_PATH = 2114
# Payment state that cannot lie (issue 17): the outcome is not known yet; this invoice was
# already attempted; too many attempts; a payment still being attempted; not pending.
CODE_PAYMENT_PENDING = 2109
CODE_INVOICE_ALREADY_ATTEMPTED = 2110
CODE_PAYMENT_LIMITED = 2111
CODE_PAYMENT_IN_FLIGHT = 2112
CODE_PAYMENT_NOT_PENDING = 2113
# Payout authority (issue 23): a reusable request's bound is reached; the request lacks a
# valid approval where one is needed; the payout was declined (or not answered) on the
# device that approves each payment.
CODE_PAYOUT_BOUND_REACHED = 2115
CODE_PAYMENT_NOT_APPROVED = 2116
CODE_PAYOUT_DECLINED = 2117
# `wait` (issue 26): the index did not reach nextvalue within the timeout.
CODE_WAIT_TIMEOUT = 2200


class RpcError(Exception):
    """An error answered to a JSON-RPC caller: ``{code, message, data?}``.

    Raise a subclass: its class says what went wrong (a front door picks its HTTP status
    from the class), its ``code`` is what the caller reads. A bare ``RpcError`` with a
    ``code`` stands only for an error another server answered (CLN, relayed)."""

    code: int = CODE_CATCHALL

    def __init__(self, message: str, *, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


class InternalError(RpcError):
    """A bug, or a limit of the server (too many connections): not the caller's fault."""

    code = CODE_CATCHALL


class InvalidRequest(RpcError):
    """Not a JSON-RPC request at all: bad JSON, invalid UTF-8, missing ``jsonrpc``, too large."""

    code = CODE_INVALID_REQUEST


class RequestTooLarge(InvalidRequest):
    """A request (one JSON value on the socket, one HTTP body) over the size limit."""

    def __init__(self, limit: int, head: bytes = b"") -> None:
        super().__init__(f"request larger than {limit} bytes")
        #: The start of the request, where its ``id`` may still be found.
        self.head = head


class BodyTimeout(InvalidRequest):
    """An HTTP client that did not send its whole body in time."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"request body not received within {seconds:g} s")


class MethodNotFound(RpcError):
    code = CODE_METHOD_NOT_FOUND

    def __init__(self, method: str) -> None:
        super().__init__(f"Unknown command '{method}'")


class HelpUnknownCommand(RpcError):
    """``help NAME`` of a command we do not have: lightningd words it without quotes
    (unlike an unknown method, ``Unknown command 'NAME'``)."""

    code = CODE_METHOD_NOT_FOUND

    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown command {name}")


class InvalidParams(RpcError):
    """Any parameter problem; the message always names the parameter (CLN's wording)."""

    code = CODE_INVALID_PARAMS


class UnknownInvoiceRequest(RpcError):
    code = CODE_CATCHALL

    def __init__(self) -> None:
        super().__init__("Unknown invoice_request")


class NotActive(RpcError):
    code = CODE_NOT_ACTIVE

    def __init__(self) -> None:
        super().__init__("invoice_request is not active")


class SignerError(RpcError):
    """The signer could not produce a signature (refused, busy, unreachable, timed out)."""

    code = CODE_SIGNER


class ReplyBudgetExceeded(RpcError):
    """A batch element that was not run: the replies before it used the batch's budget."""

    code = CODE_REPLY_BUDGET

    def __init__(self, budget: int, done: int, total: int) -> None:
        super().__init__(
            f"not run: the batch's replies reached the {budget}-byte reply budget after "
            f"{done} of {total} requests; send the rest in another batch"
        )


class ServerBusy(RpcError):
    """The reply found no room in the process's reply budget in time (replies in flight to
    clients that do not read hold it): nothing was run twice; try again."""

    code = CODE_SERVER_BUSY

    def __init__(self, budget: int) -> None:
        super().__init__(
            f"server busy: replies in flight fill the {budget}-byte reply budget; try again"
        )


class StoreError(RpcError):
    """The store could not make a change durable, or could not read (disk full, read-only
    database, connection lost ...): nothing was stored."""

    code = CODE_STORE


class StoreClosed(StoreError):
    """A call after ``close()`` (shutdown in progress)."""

    def __init__(self) -> None:
        super().__init__("store is closed")


class DatabaseError(StoreError):
    """The database driver failed; one message for every store and every call."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"database error: {cause}")


class WriterBusy(StoreError):
    """``--workers`` on SQLite: too many writes of this worker wait for the writer process
    (it stalls, or is far behind); this one was refused before it was sent."""

    def __init__(self, waiting: int) -> None:
        super().__init__(
            f"store busy: {waiting} writes already wait for the SQLite writer; nothing was "
            "written, try again"
        )


class CommitFailed(StoreError):
    """A group of writes could not be committed: none of them is stored."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"commit failed, nothing stored: {cause}")


# --- runes (HTTP and REST) --------------------------------------------------------------


class RuneError(RpcError):
    """The rune refuses the call. The HTTP doors answer 401 (403 for a missing rune)."""


class NotAuthorized(RuneError):
    """The rune is missing, not ours, malformed or blacklisted."""

    code = CODE_NOT_AUTHORIZED

    def __init__(self, why: str) -> None:
        super().__init__(f"Not authorized: {why}")


class MissingRune(NotAuthorized):
    """No rune at all (HTTP: 403, as clnrest)."""

    def __init__(self) -> None:
        super().__init__("Missing rune")


class NotPermitted(RuneError):
    """The rune is ours but one of its restrictions is not met."""

    code = CODE_NOT_PERMITTED

    def __init__(self, why: str) -> None:
        super().__init__(f"Not permitted: {why}")


# --- receiveinvoice and the payments --------------------------------------------------


class InvoiceRefused(RpcError):
    """Base of every refusal of ``receiveinvoice`` (codes 2101-2111, 2114)."""


class InvoiceUnknownRequest(InvoiceRefused):
    """The invoice answers no invoice_request of ours."""

    code = CODE_INVOICE_UNKNOWN_REQUEST


class InvoiceNotActive(InvoiceRefused):
    """The request it answers is disabled, or single-use and used."""

    code = CODE_INVOICE_NOT_ACTIVE

    def __init__(self) -> None:
        super().__init__("invoice_request is not active")


class AlreadyClaimed(InvoiceRefused):
    """A single-use request already has a pending or completed payment."""

    code = CODE_INVOICE_ALREADY_CLAIMED

    def __init__(self, status: str) -> None:
        super().__init__(f"invoice_request is single-use and already has a {status} payment")


class InvoiceWrongPath(InvoiceRefused):
    """An invoice of ours that did not come over its request's blinded path (the plugin):
    refused, so a path (or a guessed one) cannot collect another request's amount."""

    code = CODE_INVOICE_WRONG_PATH

    def __init__(self) -> None:
        super().__init__("invoice did not arrive on the blinded path of its invoice_request")


class InvoiceAmount(InvoiceRefused):
    """The invoice's amount is not the request's. Raised by the LNURL door for a BOLT 11
    invoice (:func:`invreq.lnurl.check_invoice`); for a BOLT 12 invoice the core's reader
    refuses it first, so ``receiveinvoice`` answers an invalid ``invoice`` parameter
    (-32602) naming ``invoice_amount``."""

    code = CODE_INVOICE_AMOUNT


class InvoiceExpired(InvoiceRefused):
    code = CODE_INVOICE_EXPIRED

    def __init__(self, expires_at: int, now: int) -> None:
        super().__init__(f"invoice expired at {expires_at} (now {now})")


class RequestExpired(InvoiceRefused):
    """The invoice_request's ``absolute_expiry`` has passed (CLN never checks it)."""

    code = CODE_REQUEST_EXPIRED

    def __init__(self, expires_at: int, now: int) -> None:
        super().__init__(f"invoice_request expired at {expires_at} (now {now})")


class PaymentRefused(InvoiceRefused):
    """The invoice is valid but nothing pays it (``--pay-with none``)."""

    code = CODE_PAYMENT_REFUSED


class PaymentError(InvoiceRefused):
    """The backend tried and the payment did not happen; the claim is released."""

    code = CODE_PAYMENT_FAILED

    def __init__(self, why: str) -> None:
        super().__init__(f"payment failed: {why}")


class PaymentPending(InvoiceRefused):
    """The payment's outcome is not known (the node did not answer within the timeout, the
    connection was lost, or this invoice's payment is still pending): the claim is held
    and reconciliation settles it from the node's own record. ``data`` is the payment."""

    code = CODE_PAYMENT_PENDING


class InvoiceAlreadyAttempted(InvoiceRefused):
    """One payment per invoice, ever: this invoice (its payment_hash) was attempted before
    and did not succeed, or another invoice carries the same payment_hash."""

    code = CODE_INVOICE_ALREADY_ATTEMPTED


class PaymentLimited(InvoiceRefused):
    """An attempt bound was reached (per request or per minute): nothing was attempted or
    recorded."""

    code = CODE_PAYMENT_LIMITED


class PayoutBoundReached(InvoiceRefused):
    """The request's ``max_payouts`` are all taken (pending or paid), or its
    ``payout_window`` has ended: counted in the claim's transaction, nothing recorded."""

    code = CODE_PAYOUT_BOUND_REACHED


class PaymentNotApproved(InvoiceRefused):
    """The request needs an approval (it was made under ``--approver hwi``, or this service
    runs with one) and has none that verifies against the pinned approval key, or the bound
    it approved is not the stored one: nothing is claimed or paid."""

    code = CODE_PAYMENT_NOT_APPROVED


class PayoutDeclined(InvoiceRefused):
    """``--payout-approver hwi``: the person declined the payment on the device, or the
    device did not answer in time. The payment is recorded ``failed``; xpay was never
    called."""

    code = CODE_PAYOUT_DECLINED
    #: What a payee (invoice_error) or an LNURL wallet is told. The message itself carries
    #: the device's own text (its name and address, key path, hwilib's error), which is the
    #: operator's business: it stays in the log and the payment's ``error``.
    public = "payout not approved on the device (declined, or not answered in time): not paid"


class PaymentInFlight(RpcError):
    """``resolvepayment`` on a payment whose attempt may still be running at the node."""

    code = CODE_PAYMENT_IN_FLIGHT


class PaymentNotPending(RpcError):
    """A payment that is already settled cannot be settled again; ``payment`` is it now.

    ``view`` (the error's ``data``) is the payment as ``listpayments`` shows it, rendered by
    the payment domain that answers the caller (:mod:`invreq.payments`): the store raises
    this without one (it knows no JSON shapes), and this module imports nothing of invreq."""

    code = CODE_PAYMENT_NOT_PENDING

    def __init__(self, payment: Any, view: dict[str, Any] | None = None) -> None:
        super().__init__(
            f"payment {payment.payment_id} is not pending (it is {payment.status})",
            data=view,
        )
        self.payment = payment


class WaitTimeout(RpcError):
    """``wait``: the index did not reach ``nextvalue`` within ``timeout`` seconds; the
    reply's data holds the index as it is, so the caller can wait again from there."""

    code = CODE_WAIT_TIMEOUT


# --- start-up ---------------------------------------------------------------------------


class StartupError(RuntimeError):
    """Something configured cannot be used (missing device, stock firmware without the
    extension, a key file others can read, an unreachable database ...). ``invreq serve``
    prints the message and exits non-zero; it never falls back to something else."""


class StoppedDuringStartup(StartupError):
    """SIGINT or SIGTERM arrived before the service was up (a device or database may be
    holding the start-up): what had opened is closed, and the service does not start."""


def listen_error(option: str, address: str, e: OSError) -> StartupError:
    """The one line for a socket that cannot be bound, naming the option that moves it."""
    import errno

    if e.errno == errno.EADDRINUSE:
        why = "already in use (another invreq or another program has it)"
    else:
        why = e.strerror or str(e)
    return StartupError(f"{option}: cannot listen on {address}: {why}; choose another {option}")
