"""The stand-in for lightningd (tests/fake_lightningd.py, NOT a Lightning node) as a
fixture, and a test payee that answers our requests with signed invoices.

``lightningd(*args, node_id=...)`` starts a fake node; ``restart(node_id=..., fresh=...)``
restarts it on the same socket, as the same node (its payment record kept) or as another
node (another id, an empty record)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import Server
from coincurve import PrivateKey
from invreq import bolt12
from pyln.client import LightningRpc, RpcError

PAYEE = PrivateKey(b"\x77" * 32)
FAKE = Path(__file__).parent / "fake_lightningd.py"
NODE_A = "02" + "ab" * 32
NODE_B = "03" + "cd" * 32


class FakeLightningd:
    def __init__(self, directory: Path, *args: str, node_id: str = NODE_A) -> None:
        self.dir = directory
        self.socket = directory / "lightning-rpc"
        self.log = directory / "xpay.log"
        self.args = list(args)
        self.node_id = node_id
        self.generation = 0
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(FAKE),
                "--socket",
                str(self.socket),
                "--log",
                str(self.log),
                "--state",
                str(self.dir / f"state-{self.node_id}.json"),
                "--node-id",
                self.node_id,
                *self.args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"fake-lightningd ready"

    @property
    def rpc(self) -> LightningRpc:
        return LightningRpc(str(self.socket))

    def xpays(self) -> list[str]:
        if not self.log.exists():
            return []
        return [json.loads(line)["xpay"] for line in self.log.read_text().splitlines()]

    def xpay_params(self) -> list[dict[str, Any]]:
        """Every xpay as logged: the invoice (``xpay``), ``retry_for`` and any ``maxfee``."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def wait_for_xpays(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.xpays()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.xpays()) >= n, self.xpays()

    def settle(self, invoice: str, status: str) -> None:
        """The node's pending payment of ``invoice`` completes (or fails) now."""
        h = payment_hash_of(invoice)
        self.rpc.call("dev-invreq-settle", {"payment_hash": h, "status": status})

    def restart(self, *args: str, node_id: str | None = None) -> None:
        """Restart on the same socket: as the same node (its record kept), or with another
        ``node_id`` as another node (another record)."""
        self.stop()
        if node_id is not None:
            self.node_id = node_id
        if args:
            self.args = list(args)
        self.socket.unlink(missing_ok=True)
        self._start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def lightningd(tmp_path: Path) -> Iterator[Any]:
    started: list[FakeLightningd] = []

    def start(*args: str, node_id: str = NODE_A) -> FakeLightningd:
        d = tmp_path / f"ln{len(started)}"
        d.mkdir()
        f = FakeLightningd(d, *args, node_id=node_id)
        started.append(f)
        return f

    yield start
    for f in started:
        if f.proc.poll() is None:
            f.stop()


def invoice_for(
    bolt12_str: str,
    *,
    n: int = 0,
    created_at: int | None = None,
    amount: int | None = None,
    relative_expiry: int | None = None,
    node: PrivateKey = PAYEE,
) -> str:
    """The payee's answer to our request: a signed invoice (``n`` varies its payment_hash)."""
    req = bolt12.decode_invoice_request(bolt12_str)
    preimage = hashlib.sha256(b"preimage %d" % n).digest()
    unsigned = bolt12.UnsignedInvoice(
        req.tlv_stream,
        created_at=int(time.time()) if created_at is None else created_at,
        payment_hash=hashlib.sha256(preimage).digest(),
        amount_msat=req.amount_msat if amount is None else amount,
        node_id=node.public_key.format(),
        relative_expiry=relative_expiry,
    )
    return unsigned.with_signature(node.sign_schnorr(unsigned.digest, bytes(32))).bolt12


def payment_hash_of(invoice: str) -> str:
    """Of a BOLT 12 invoice, or of a BOLT 11 one (the LNURL door's)."""
    if not invoice.lower().startswith("lni1"):
        import bolt11

        return str(bolt11.decode(invoice).payment_hash)
    return bolt12.decode_invoice(invoice).payment_hash.hex()


def error_of(s: Server, method: str, params: Any) -> dict[str, Any]:
    with pytest.raises(RpcError) as e:
        s.rpc.call(method, params)
    return e.value.error  # type: ignore[no-any-return]


def wait_until(check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``check()`` until it returns something truthy (no timing is asserted: the
    deadline only keeps a broken build from hanging the suite)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{what}: not reached within {timeout} s")


__all__ = [
    "NODE_A",
    "NODE_B",
    "PAYEE",
    "FakeLightningd",
    "error_of",
    "invoice_for",
    "lightningd",
    "payment_hash_of",
    "wait_until",
]
