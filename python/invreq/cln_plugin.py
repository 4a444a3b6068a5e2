"""``invreq-cln-plugin``: the Core Lightning plugin that hands invreq the invoices payees send.

With ``--pay-with cln:PATH``, every request carries a blinded path to that node
(:mod:`invreq.blindpaths`). A payee's ``sendinvoice`` sends its invoice there by onion
message; lightningd gives the message to the ``onion_message_recv_secret`` hook with the final
hop's ``path_id`` as ``pathsecret``. This plugin, started by lightningd from its config::

    plugin=/path/to/venv/bin/invreq-cln-plugin
    invreq-rpc-file=/var/lib/invreq/regtest/lightning-rpc

registers that hook **before CLN's ``offers`` plugin** (which would otherwise answer the
payee with an ``invoice_error`` first) and, for each message carrying an ``invoice`` and a
``pathsecret``, asks invreq ``receiveinvoice invoice pathsecret reply_path``:

- a result: the invoice is ours, every check passed and the request is claimed (invreq pays
  it now, in the background, and if the payment certainly fails it sends the payee an
  ``invoice_error`` itself, over the same reply path). The hook answers ``stop``: the
  message is handled, and
  ``offers`` must not see it (measured: with ``continue`` it replies an error to the payee);
- error 2101 (the invoice answers no request of ours): ``continue``, untouched, so CLN's own
  offers (``fetchinvoice``, ``invoicerequest``) keep working;
- any other error: ours, and refused (wrong path, inactive, expired, wrong amount ...).
  The hook answers ``stop`` and the plugin sends the payee an ``invoice_error`` with
  invreq's message over ``reply_blindedpath`` (:mod:`invreq.onionreply`: straight to a peer,
  or over a route of onion-message nodes found in gossip, as ``offers`` does);
- invreq unreachable or not answering within ``invreq-timeout`` seconds: logged,
  ``continue``. Passing on is the only safe default: the plugin cannot tell whether the
  message was ours, and stopping would break the node's own offers whenever invreq is down.
  The payee then gets ``offers``' ``invoice_error`` at once.

**The plugin cannot stop the node.** lightningd exits when a plugin named in its config dies
before answering ``getmanifest`` (it then reads ``invreq-rpc-file=`` as an unknown option).
So this module imports only the standard library and two modules of invreq that import
nothing else (:mod:`invreq.clnrpc`, the socket framing, and :mod:`invreq.oneline`); the
package's ``__init__`` loads nothing. It speaks lightningd's plugin protocol itself (no
pyln-client, whose pyln-proto pins a coincurve fork that clashes with invreq's coincurve),
and imports the working parts (the native core, :mod:`invreq.onionreply`) inside a guard. If
they fail, or anything else is broken, the plugin still answers ``getmanifest`` with its
options, logs one line saying what is wrong, and answers every hook ``continue``: the node
runs as if the plugin were absent.

Why ask invreq rather than check ``pathsecret`` here: the path_id is an HMAC of the
request's metadata under invreq's path secret. Knowing it here would mean copying that
secret into lightningd's plugin directory, and the plugin would still need invreq to claim
the request. One bounded call both recognises the path and takes the claim, so the answer
``stop`` is given only for invoices invreq has accepted or refused, never on a guess.

Hooks are answered from worker threads, so a slow invreq delays only the messages waiting for
it, never lightningd or the other hooks.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from invreq import clnrpc
from invreq.oneline import oneline

__all__ = ["UNREACHABLE", "Plugin", "main", "unix_call"]

#: Seconds invreq may take to check and claim an invoice before the message is passed on.
DEFAULT_TIMEOUT = 5.0
#: Seconds a call on lightningd's own socket may take (route search, injectonionmessage).
NODE_TIMEOUT = 30.0
#: Messages handled at once; more wait for a free worker.
WORKERS = 8
HOOK = "onion_message_recv_secret"
CONTINUE = {"result": "continue"}
#: Any answer other than ``continue`` ends the hook chain (lightningd onion_message.c).
STOP = {"result": "stop"}
#: invreq's code for "this invoice answers no request of ours" (invreq.errors, not imported
#: here: the plugin must start even when the rest of invreq cannot be imported).
CODE_INVOICE_UNKNOWN_REQUEST = 2101

OPTIONS = [
    {
        "name": "invreq-rpc-file",
        "type": "string",
        "description": "invreq's unix socket (DATA_DIR/NETWORK/lightning-rpc)",
    },
    {
        "name": "invreq-timeout",
        "type": "string",
        "default": str(DEFAULT_TIMEOUT),
        "description": "seconds invreq may take to accept an invoice before the message is "
        "passed on",
    },
]


#: The other side could not say: its socket missing, refusing, closing, not answering in
#: time, or answering something that is not a JSON-RPC reply.
UNREACHABLE = (OSError, clnrpc.BadReply)


def unix_call(path: str, method: str, params: dict[str, Any], timeout: float) -> Any:
    """One JSON-RPC call on a unix socket in lightningd's framing (invreq's and lightningd's
    own), answered within ``timeout`` seconds: :func:`invreq.clnrpc.call`."""
    return clnrpc.call(
        path, method, params, timeout=timeout, request_id=f"invreq-cln-plugin:{method}"
    )


class Plugin:
    """lightningd's plugin protocol on stdin/stdout (JSON-RPC 2.0, each message followed by a
    blank line): ``getmanifest``, ``init``, then the hook; ``log`` notifications back."""

    def __init__(self, stdin: BinaryIO, stdout: BinaryIO) -> None:
        self.stdin, self.stdout = stdin, stdout
        self._write_lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="invreq-hook")
        #: Why the plugin cannot work (None: it can), said once at init.
        self.broken: str | None = None
        self.handler: Any = None  # InvoiceHandler once init succeeded

    def write(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\n\n"
        with self._write_lock:
            self.stdout.write(data)
            self.stdout.flush()

    def log(self, message: str, level: str = "info") -> None:
        # One line each: lightningd shows it as it is, and it may carry a payee's text.
        # The entry twice, as pyln-client sends it: flat for lightningd's log handler and
        # under "log" for the notification's newer form.
        entry = {"level": level, "message": oneline(message, 1000)}
        self.write({"jsonrpc": "2.0", "method": "log", "params": {**entry, "log": entry}})

    def answer(self, rid: Any, result: Any) -> None:
        self.write({"jsonrpc": "2.0", "id": rid, "result": result})

    def run(self) -> None:
        decoder = json.JSONDecoder()
        buf = ""
        while True:
            chunk = os.read(self.stdin.fileno(), 65536)
            if not chunk:
                break  # lightningd closed our stdin: it is stopping, or unloading us
            buf += chunk.decode("utf-8", "replace")
            while True:
                stripped = buf.lstrip()
                try:
                    message, end = decoder.raw_decode(stripped)
                except ValueError:
                    buf = stripped
                    break
                buf = stripped[end:]
                if isinstance(message, dict):
                    self.dispatch(message)
        self.executor.shutdown(wait=True)

    def dispatch(self, message: dict[str, Any]) -> None:
        method, rid = message.get("method"), message.get("id")
        params = message.get("params") or {}
        if rid is None:
            return  # a notification: we subscribe to none
        if method == "getmanifest":
            self.answer(rid, manifest())
        elif method == "init":
            self.answer(rid, self.init(params))
        elif method == HOOK:
            self.on_message(rid, params)
        else:
            error = {"code": -32601, "message": f"unknown method {oneline(method)}"}
            self.write({"jsonrpc": "2.0", "id": rid, "error": error})

    def init(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            options = params.get("options") or {}
            rpc_file = options.get("invreq-rpc-file")
            if not rpc_file:
                return {"disable": "invreq-rpc-file is not set: the plugin has nothing to do"}
            raw_timeout = options.get("invreq-timeout") or DEFAULT_TIMEOUT
            try:
                timeout = float(raw_timeout)
            except ValueError:
                return {"disable": f"invreq-timeout: {oneline(repr(raw_timeout))} is not a number"}
            if not timeout > 0:
                return {"disable": "invreq-timeout: must be a positive number of seconds"}
            conf = params.get("configuration") or {}
            node_rpc = os.path.join(conf["lightning-dir"], conf["rpc-file"])
            if self.broken is None:
                self.handler = InvoiceHandler(self, os.path.expanduser(rpc_file), node_rpc, timeout)
                self.handler.greet()
        except Exception as e:
            self.broken = f"init failed: {e!r}"
        if self.broken is not None:
            self.log(
                f"invreq-cln-plugin cannot work, every message is passed on: {self.broken}",
                "broken",
            )
        return {}

    def on_message(self, rid: Any, params: dict[str, Any]) -> None:
        om = params.get("onion_message")
        if (
            self.handler is None
            or not isinstance(om, dict)
            or "invoice" not in om
            or "pathsecret" not in om
        ):
            self.answer(rid, CONTINUE)
            return
        self.executor.submit(self.handler.handle, rid, om)


def manifest() -> dict[str, Any]:
    return {
        "options": OPTIONS,
        "rpcmethods": [],
        "subscriptions": [],
        "hooks": [{"name": HOOK, "before": ["offers"]}],
        # Not startable at run time: measured on v26.06, a `plugin start` defers the hook
        # and runs it AFTER offers (the payee got offers' error and was paid anyway).
        "dynamic": False,
        "nonnumericids": True,
    }


class InvoiceHandler:
    """What the hook does with one message, once the plugin can work."""

    def __init__(self, plugin: Plugin, rpc_file: str, node_rpc: str, timeout: float) -> None:
        # Imported here, under Plugin.init's guard: the native core and what needs it.
        from invreq import bolt12, onionreply

        self.bolt12, self.onionreply = bolt12, onionreply
        self.plugin = plugin
        self.rpc_file = rpc_file
        self.node_rpc = node_rpc
        self.timeout = timeout
        self._node_id: str | None = None
        self._lock = threading.Lock()

    def log(self, message: str, level: str = "info") -> None:
        self.plugin.log(message, level)

    def greet(self) -> None:
        try:
            info = unix_call(self.rpc_file, "getinfo", {}, self.timeout)
            self.log(
                f"handing invoices on our paths to invreq at {self.rpc_file} "
                f"(payer id {info.get('id')}, network {info.get('network')})"
            )
        except (*UNREACHABLE, clnrpc.ClnRpcError) as e:
            # Usual on a node's first start, when invreq (which needs the node) is started
            # after it: nothing is lost, messages pass on until invreq answers.
            self.log(
                f"invreq at {self.rpc_file} does not answer yet ({e}); invoices on our paths "
                "are passed on until it does (expected when lightningd starts before invreq)",
                "info",
            )

    def node_call(self, method: str, params: dict[str, Any]) -> Any:
        return unix_call(self.node_rpc, method, params, NODE_TIMEOUT)

    def node_id(self) -> str:
        with self._lock:
            if self._node_id is None:
                self._node_id = str(self.node_call("getinfo", {})["id"])
            return self._node_id

    def decide(self, om: dict[str, Any]) -> tuple[dict[str, str], str | None]:
        """The hook's answer, and the invoice_error text to send back (if refused)."""
        try:
            invoice = self.bolt12.encode_string("lni", bytes.fromhex(om["invoice"]))
            pathsecret = str(om["pathsecret"])
        except (ValueError, TypeError, KeyError) as e:
            self.log(f"onion message with an unreadable invoice passed on: {e}", "debug")
            return CONTINUE, None
        params: dict[str, Any] = {"invoice": invoice, "pathsecret": pathsecret}
        reply = om.get("reply_blindedpath")
        if isinstance(reply, dict) and "first_node_id" in reply:
            params["reply_path"] = reply  # invreq tells the payee itself if paying fails
        try:
            result = unix_call(self.rpc_file, "receiveinvoice", params, self.timeout)
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
            message = oneline(e.message)
            self.log(f"invoice on our path refused by invreq: {e.code} {message}", "info")
            return STOP, message
        self.log(
            f"invoice for invreq {result.get('invreq_id')} accepted: payment "
            f"{result.get('payment_id')} of {result.get('amount_msat')} msat is being paid",
            "info",
        )
        return STOP, None

    def reply_error(self, reply: dict[str, Any], message: str) -> None:
        """Send ``invoice_error`` to the payee over its reply path."""
        try:
            via = self.onionreply.send_invoice_error(self.node_call, self.node_id(), reply, message)
            self.log(
                "invoice_error sent to the payee"
                + (f" through {len(via)} node(s) found in gossip" if via else ""),
                "debug",
            )
        except Exception as e:
            # The payee's sendinvoice then times out instead of failing at once; nothing
            # else depends on the reply, so it is logged and dropped.
            self.log(f"could not send invoice_error to the payee: {e}", "warn")

    def handle(self, rid: Any, om: dict[str, Any]) -> None:
        try:
            answer, error = self.decide(om)
        except Exception as e:
            self.log(f"hook failed, message passed on: {e!r}", "broken")
            answer, error = CONTINUE, None
        self.plugin.answer(rid, answer)  # first: lightningd and the payee are not kept waiting
        if error is not None:
            reply = om.get("reply_blindedpath")
            if isinstance(reply, dict) and "first_node_id" in reply:
                self.reply_error(reply, error)
            else:
                self.log("refused invoice came without a usable reply path: no invoice_error")


def main() -> None:
    plugin = Plugin(sys.stdin.buffer, sys.stdout.buffer)
    try:
        # The working parts, imported now so that a broken install is told at init (one
        # line) while getmanifest is still answered: lightningd must keep running.
        from invreq import bolt12, onionreply  # noqa: F401
    except BaseException as e:  # SystemExit or KeyboardInterrupt from a broken module too
        plugin.broken = f"cannot import invreq's working parts: {type(e).__name__}: {e}"
    plugin.run()


if __name__ == "__main__":
    main()
