"""``invreq-cln-plugin``: the Core Lightning plugin that hands invreq the invoices payees send.

With ``--pay-with cln:PATH``, every request carries a blinded path to that node
(:mod:`invreq.blindpaths`). A payee's ``sendinvoice`` sends its invoice there by onion
message; lightningd gives the message to the ``onion_message_recv_secret`` hook with the final
hop's ``path_id`` as ``pathsecret``. This plugin, started by lightningd from its config::

    plugin=/path/to/.venv/bin/invreq-cln-plugin
    invreq-rpc-file=/var/lib/invreq/bitcoin/lightning-rpc

registers that hook **before CLN's ``offers`` plugin** (which would otherwise answer the
payee with an ``invoice_error`` first) and, for each message carrying an ``invoice`` and a
``pathsecret``, asks invreq ``receiveinvoice invoice pathsecret``:

- a result: the invoice is ours, every check passed and the request is claimed (invreq pays
  it now, in the background). The hook answers ``stop``: the message is handled, and
  ``offers`` must not see it (measured: with ``continue`` it replies an error to the payee);
- error 2101 (the invoice answers no request of ours): ``continue``, untouched, so CLN's own
  offers (``fetchinvoice``, ``invoicerequest``) keep working;
- any other error: ours, and refused (wrong path, inactive, expired, wrong amount ...).
  The hook answers ``stop`` and the plugin sends the payee an ``invoice_error`` with
  invreq's message over ``reply_blindedpath`` (``injectonionmessage``, as ``offers`` does);
  invreq has recorded the refusal as it records any ``receiveinvoice`` refusal;
- invreq unreachable or not answering within ``invreq-timeout`` seconds: logged,
  ``continue``. Passing on is the only safe default: the plugin cannot tell whether the
  message was ours, and stopping would break the node's own offers whenever invreq is down.
  The payee then gets ``offers``' ``invoice_error`` at once (its ``sendinvoice`` fails with
  1004) instead of waiting out its timeout.

Why ask invreq rather than check ``pathsecret`` here: the path_id is an HMAC of the
request's metadata under invreq's path secret. Knowing it here would mean copying that
secret into lightningd's plugin directory, and the plugin would still need invreq to claim
the request. One bounded call both recognises the path and takes the claim, so the answer
``stop`` is given only for invoices invreq has accepted or refused, never on a guess.

The hook is answered from a worker thread (pyln-client's background hooks), so a slow
invreq delays only the messages waiting for it, never lightningd or the other hooks.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from invreq import bolt12, clnrpc
from invreq.errors import CODE_INVOICE_UNKNOWN_REQUEST

__all__ = ["UNREACHABLE", "ask_invreq", "main"]

#: Seconds invreq may take to check and claim an invoice before the message is passed on.
DEFAULT_TIMEOUT = 5.0
#: Messages handled at once; more wait for a free worker.
WORKERS = 8
CONTINUE = {"result": "continue"}
#: Any answer other than ``continue`` ends the hook chain (lightningd onion_message.c).
STOP = {"result": "stop"}
#: invreq's socket missing, refusing, closing, timing out, or answering something that is
#: not a JSON-RPC reply: invreq could not say whether the invoice is ours.
UNREACHABLE = (OSError, clnrpc.BadReply)


def ask_invreq(path: str, method: str, params: dict[str, Any], timeout: float) -> Any:
    """One call to invreq within ``timeout`` seconds (:func:`invreq.clnrpc.call`)."""
    return clnrpc.call(
        path, method, params, timeout=timeout, request_id=f"invreq-cln-plugin:{method}"
    )


class InvoiceHandler:
    """What the hook does with one message; separate from pyln-client so it reads plainly."""

    def __init__(self, plugin: Any, rpc_file: str, timeout: float) -> None:
        self.plugin = plugin
        self.rpc_file = rpc_file
        self.timeout = timeout
        self.node_id: bytes | None = None  # ours, for the reply onion (getinfo at init)
        self._lock = threading.Lock()

    def log(self, message: str, level: str = "info") -> None:
        self.plugin.log(message, level=level)

    def decide(self, om: dict[str, Any]) -> tuple[dict[str, str], str | None]:
        """The hook's answer, and the invoice_error text to send back (if refused)."""
        try:
            invoice = bolt12.encode_string(bolt12.INVOICE_HRP, bytes.fromhex(om["invoice"]))
            pathsecret = str(om["pathsecret"])
        except (ValueError, TypeError, KeyError) as e:
            self.log(f"onion message with an unreadable invoice passed on: {e}", "debug")
            return CONTINUE, None
        try:
            result = ask_invreq(
                self.rpc_file,
                "receiveinvoice",
                {"invoice": invoice, "pathsecret": pathsecret},
                self.timeout,
            )
        except UNREACHABLE as e:
            self.log(
                f"invreq unreachable ({e}); invoice passed on to the next plugin, "
                "the payee gets its invoice_error",
                "warn",
            )
            return CONTINUE, None
        except clnrpc.ClnRpcError as e:
            if e.code == CODE_INVOICE_UNKNOWN_REQUEST:
                return CONTINUE, None
            self.log(f"invoice on our path refused by invreq: {e.code} {e.message}", "info")
            return STOP, e.message
        self.log(
            f"invoice for invreq {result.get('invreq_id')} accepted: payment "
            f"{result.get('payment_id')} of {result.get('amount_msat')} msat is being paid",
            "info",
        )
        return STOP, None

    def reply_error(self, reply_path: dict[str, Any], message: str) -> None:
        """Send ``invoice_error`` to the payee over its reply path, as CLN's offers plugin
        does: an onion whose first hop is this node, injected with ``injectonionmessage``."""
        try:
            node_id = self._own_node_id()
            path = bolt12.BlindedPath(
                first_node_id=bytes.fromhex(reply_path["first_node_id"]),
                first_path_key=bytes.fromhex(reply_path["first_path_key"]),
                hops=[
                    bolt12.BlindedHop(
                        bytes.fromhex(h["blinded_node_id"]),
                        bytes.fromhex(h["encrypted_recipient_data"]),
                    )
                    for h in reply_path["hops"]
                ],
            )
            if path.first_node_id != node_id:
                self._connect(reply_path["first_node_id"])
            path_key, packet = bolt12.reply_onion(
                node_id,
                path,
                [(bolt12.ONIONMSG_INVOICE_ERROR, bolt12.invoice_error(message))],
                session_key=os.urandom(32),
                path_key_secret=os.urandom(32),
            )
            self.plugin.rpc.call(
                "injectonionmessage", {"path_key": path_key.hex(), "message": packet.hex()}
            )
        except Exception as e:
            # The payee's sendinvoice then times out instead of failing at once; nothing
            # else depends on the reply, so it is logged and dropped.
            self.log(f"could not send invoice_error to the payee: {e}", "warn")

    def _own_node_id(self) -> bytes:
        with self._lock:
            if self.node_id is None:
                self.node_id = bytes.fromhex(self.plugin.rpc.call("getinfo")["id"])
            return self.node_id

    def _connect(self, node_id: str) -> None:
        # The onion's next hop must be a peer: connect if gossip knows an address (like
        # offers' establish_onion_path). Already connected is a no-op; failure is left to
        # injectonionmessage to report.
        try:
            self.plugin.rpc.call("connect", {"id": node_id})
        except Exception as e:
            self.log(f"connect {node_id} for the reply: {e}", "debug")

    def handle(self, onion_message: dict[str, Any], request: Any) -> None:
        try:
            answer, error = self.decide(onion_message)
        except Exception as e:
            self.log(f"hook failed, message passed on: {e!r}", "broken")
            answer, error = CONTINUE, None
        request.set_result(answer)  # first: lightningd and the payee are not kept waiting
        reply_path = onion_message.get("reply_blindedpath")
        if error is not None:
            if isinstance(reply_path, dict) and "first_node_id" in reply_path:
                self.reply_error(reply_path, error)
            else:
                self.log("refused invoice came without a usable reply path: no invoice_error")


def main() -> None:
    from invreq.errors import StartupError
    from invreq.extras import require

    try:
        require("pyln", "invreq-cln-plugin")
    except StartupError as e:
        # lightningd logs a plugin's stderr and drops the plugin.
        print(e, file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    from pyln.client import Plugin

    plugin = Plugin()
    executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="invreq-hook")
    state: dict[str, InvoiceHandler] = {}
    plugin.add_option(
        "invreq-rpc-file", None, "invreq's unix socket (DATA_DIR/NETWORK/lightning-rpc)", "string"
    )
    plugin.add_option(
        "invreq-timeout",
        str(DEFAULT_TIMEOUT),
        "seconds invreq may take to accept an invoice before the message is passed on",
        "string",
    )

    @plugin.init()  # type: ignore[untyped-decorator]
    def init(options: dict[str, Any], configuration: dict[str, Any], plugin: Any, **kw: Any) -> Any:
        rpc_file = options.get("invreq-rpc-file")
        if not rpc_file:
            return {"disable": "invreq-rpc-file is not set: invreq-cln-plugin has nothing to do"}
        try:
            timeout = float(options.get("invreq-timeout") or DEFAULT_TIMEOUT)
        except ValueError:
            return {"disable": f"invreq-timeout: {options.get('invreq-timeout')!r} is not a number"}
        if not timeout > 0:
            return {"disable": "invreq-timeout: must be a positive number of seconds"}
        handler = InvoiceHandler(plugin, os.path.expanduser(rpc_file), timeout)
        state["handler"] = handler
        try:
            info = ask_invreq(handler.rpc_file, "getinfo", {}, timeout)
            plugin.log(
                f"handing invoices on our paths to invreq at {handler.rpc_file} "
                f"(payer id {info.get('id')}, network {info.get('network')})"
            )
        except (*UNREACHABLE, clnrpc.ClnRpcError) as e:
            plugin.log(
                f"invreq at {handler.rpc_file} does not answer yet ({e}); invoices on our "
                "paths are passed on until it does",
                level="warn",
            )
        return None

    def on_secret(onion_message: dict[str, Any], request: Any, **kw: Any) -> None:
        handler = state.get("handler")
        om = onion_message if isinstance(onion_message, dict) else {}
        if handler is None or "invoice" not in om or "pathsecret" not in om:
            request.set_result(CONTINUE)
            return
        executor.submit(handler.handle, om, request)

    plugin.add_hook("onion_message_recv_secret", on_secret, background=True, before=["offers"])
    plugin.run()
    executor.shutdown(wait=True)


if __name__ == "__main__":
    main()
