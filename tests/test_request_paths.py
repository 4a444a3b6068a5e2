"""Requests made with a Core Lightning backend carry a blinded path to its node.

What stands in for lightningd: tests/fake_plugin_host.py's RPC socket answers ``getinfo``
with the node id of a secret key the test knows, so the path in each request can be
decrypted here as the node would, with the core's receive side (``bolt12.decrypt_hop``).
"""

from __future__ import annotations

import hashlib
import hmac
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _service_fixtures import Server
from coincurve import PrivateKey
from fake_plugin_host import PluginHost
from invreq import bolt12
from invreq.config import Config, ConfigError

NODE_SECRET = b"\x42" * 32
INTRO_SECRET = b"\x24" * 32


def serve(tmp_path: Path, host: PluginHost, *args: str) -> Server:
    return Server(
        tmp_path / "data", extra_args=["--pay-with", f"cln:{host.rpc_path}", *args]
    ).start()


def test_the_path_secret_is_made_on_first_start_owner_only_and_kept(tmp_path: Path) -> None:
    host = PluginHost(tmp_path / "lightning", NODE_SECRET)
    try:
        s = serve(tmp_path, host)
        path = tmp_path / "data" / "regtest" / "path_secret"
        secret = path.read_bytes()
        assert len(secret) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert s.stop() == 0, s.output()
        s.start()  # a restart keeps it: paths of earlier requests stay ours
        assert path.read_bytes() == secret
        assert s.stop() == 0, s.output()
        path.chmod(0o640)
        with pytest.raises(RuntimeError, match=r"chmod 600 .*path_secret"):
            s.start()
    finally:
        host.stop()


def test_without_a_cln_backend_no_path_secret_and_no_paths(tmp_path: Path) -> None:
    s = Server(tmp_path / "data").start()
    try:
        r = s.rpc.call("invoicerequest", [1000, "no node"])
        assert "invreq_paths" not in s.rpc.call("decode", [r["bolt12"]])
        assert "blinded_path" not in s.rpc.call("getinfo")
        assert not (tmp_path / "data" / "regtest" / "path_secret").exists()
    finally:
        assert s.stop() == 0, s.output()


def test_the_start_fails_in_one_line_when_the_node_cannot_be_asked(tmp_path: Path) -> None:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "invreq.cli",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--network",
            "regtest",
            "--http-port",
            "0",
            "--pay-with",
            f"cln:{tmp_path / 'no-such-node' / 'lightning-rpc'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--pay-with: cannot reach Core Lightning at" in lines[0], p.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"path_introduction": "02abc", "pay_with": "cln:/x"}, "not a node id"),
        ({"path_introduction": "04" + "11" * 32, "pay_with": "cln:/x"}, "not a node id"),
        ({"path_introduction": "02" + "11" * 32}, "only with --pay-with cln"),
    ],
)
def test_path_introduction_values_that_cannot_work_are_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**changes).validate()  # type: ignore[arg-type]


def test_the_introduction_cannot_be_the_paying_node_itself(tmp_path: Path) -> None:
    host = PluginHost(tmp_path / "lightning", NODE_SECRET)
    try:
        own = PrivateKey(NODE_SECRET).public_key.format().hex()
        s = Server(
            tmp_path / "data",
            extra_args=["--pay-with", f"cln:{host.rpc_path}", "--path-introduction", own],
        )
        with pytest.raises(RuntimeError, match="--path-introduction: that is the paying node"):
            s.start()
    finally:
        host.stop()


def _path_id(tmp_path: Path, metadata: bytes) -> bytes:
    secret = (tmp_path / "data" / "regtest" / "path_secret").read_bytes()
    return hmac.new(secret, metadata, hashlib.sha256).digest()


def test_a_request_carries_a_path_that_the_node_decrypts_to_its_path_id(tmp_path: Path) -> None:
    host = PluginHost(tmp_path / "lightning", NODE_SECRET)
    try:
        s = serve(tmp_path, host)
        r = s.rpc.call("invoicerequest", [1000, "collect over a path"])
        req = bolt12.decode_invoice_request(r["bolt12"])  # the signature covers the path
        assert req.paths is not None and len(req.paths) == 1
        path = req.paths[0]
        assert path.first_node_id == host.node_id and len(path.hops) == 1
        # The core's receive side, with the node's secret, as the node does on arrival.
        hop = bolt12.decrypt_hop(
            NODE_SECRET, path.first_path_key, path.hops[0].encrypted_recipient_data
        )
        assert hop.path_id == _path_id(tmp_path, req.metadata)
        assert hop.next_node_id is None
        d = s.rpc.call("decode", [r["bolt12"]])
        assert d["invreq_paths"][0]["first_node_id"] == host.node_id.hex()
        assert s.rpc.call("getinfo")["blinded_path"] == {"node_id": host.node_id.hex()}
        # Every request has its own blinding: two paths to one node cannot be linked.
        other = bolt12.decode_invoice_request(s.rpc.call("invoicerequest", [1000, "x"])["bolt12"])
        assert other.paths is not None
        assert other.paths[0].first_path_key != path.first_path_key
        assert other.paths[0].hops[0].blinded_node_id != path.hops[0].blinded_node_id
        assert s.stop() == 0, s.output()
    finally:
        host.stop()


def test_with_an_introduction_node_the_path_has_two_hops(tmp_path: Path) -> None:
    host = PluginHost(tmp_path / "lightning", NODE_SECRET)
    intro = PrivateKey(INTRO_SECRET).public_key.format()
    try:
        s = serve(tmp_path, host, "--path-introduction", intro.hex())
        r = s.rpc.call("invoicerequest", [1000, "through a public peer"])
        req = bolt12.decode_invoice_request(r["bolt12"])
        assert req.paths is not None
        path = req.paths[0]
        assert path.first_node_id == intro and len(path.hops) == 2
        first = bolt12.decrypt_hop(
            INTRO_SECRET, path.first_path_key, path.hops[0].encrypted_recipient_data
        )
        assert first.next_node_id == host.node_id and first.path_id is None
        last = bolt12.decrypt_hop(
            NODE_SECRET, first.next_path_key, path.hops[1].encrypted_recipient_data
        )
        assert last.path_id == _path_id(tmp_path, req.metadata)
        assert s.rpc.call("getinfo")["blinded_path"] == {
            "node_id": host.node_id.hex(),
            "introduction": intro.hex(),
        }
        assert s.stop() == 0, s.output()
    finally:
        host.stop()
