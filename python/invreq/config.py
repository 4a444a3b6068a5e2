"""Service configuration: one dataclass, filled by the command line (and later a file)."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from pathlib import Path

from invreq.bolt12 import NETWORKS

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_HTTP_PORTS",
    "NETWORK_DEFAULT_PORT",
    "SOCKET_NAME",
    "Config",
    "ConfigError",
]

DEFAULT_DATA_DIR = Path("~/.invreq")
#: The unix socket's name in DATA_DIR/NETWORK/: lightningd's, so that
#: ``lightning-cli --lightning-dir=DATA_DIR --network=NETWORK`` finds it with no --rpc-file.
#: (Older invreq used ``invreq-rpc``; ``--rpc-file invreq-rpc`` keeps that name.)
SOCKET_NAME = "lightning-rpc"
DB_NAME = "invreq.sqlite3"
#: HTTP port by network when --http-port is not given: one per network, so services for
#: two networks on one machine do not both take 3010 (bitcoin's, clnrest's usual port).
DEFAULT_HTTP_PORTS: dict[str, int] = {
    "bitcoin": 3010,
    "testnet": 3011,
    "testnet4": 3012,
    "signet": 3013,
    "regtest": 3014,
}
#: ``Config.http_port`` when not given: replaced by the network's DEFAULT_HTTP_PORTS entry.
NETWORK_DEFAULT_PORT = -1
_HEX_NODE_ID = re.compile(r"0[23][0-9a-fA-F]{64}")


class ConfigError(ValueError):
    """A setting that cannot work; the message names the option and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: Path = DEFAULT_DATA_DIR
    network: str = "bitcoin"
    http_host: str = "127.0.0.1"
    http_port: int = NETWORK_DEFAULT_PORT  # 0 turns HTTP off
    http_tls: bool = False  # HTTPS with a certificate made on first start
    db: str | None = None  # None: SQLite in the network directory
    signer: str = "software"  # software | hwi
    approver: str = "none"  # none | hwi
    hwi_device_type: str | None = None
    hwi_device_path: str | None = None
    hwi_fingerprint: str | None = None
    hwi_key_path: str | None = None
    hwi_approval_path: str | None = None
    hwi_timeout: float = 30.0
    pay_with: str = "none"  # none | cln:RPC_PATH
    path_introduction: str | None = None  # a public peer of the paying node (hex node id)
    # Seconds xpay may take (also its retry_for). CLN's sendinvoice waits 90 s by default
    # for the payment of its invoice: the payer's answer must come well before that.
    pay_timeout: float = 60.0
    pay_reconcile_interval: float = 30.0  # seconds between checks of pending payments
    pay_attempts_per_request: int = 5  # attempts that did not succeed, per request per hour
    pay_attempts_per_minute: int = 30  # attempts on all requests per minute
    log_level: str = "info"
    log_file: Path | None = None
    metrics_port: int = 0  # 0: off; else Prometheus metrics on 127.0.0.1:PORT/metrics
    workers: int = 1  # processes serving the same sockets
    rpc_file: str = SOCKET_NAME  # the unix socket; relative: in the network directory (CLN)

    def __post_init__(self) -> None:
        if self.http_port == NETWORK_DEFAULT_PORT:
            # An unknown network keeps the sentinel for validate() to name --network.
            port = DEFAULT_HTTP_PORTS.get(self.network, NETWORK_DEFAULT_PORT)
            object.__setattr__(self, "http_port", port)

    @property
    def network_dir(self) -> Path:
        return self.data_dir.expanduser() / self.network

    @property
    def socket_path(self) -> Path:
        # As lightningd, which runs in DATA_DIR/NETWORK: a relative rpc-file is there.
        return self.network_dir / Path(self.rpc_file).expanduser()

    @property
    def sqlite_path(self) -> Path:
        return self.network_dir / DB_NAME

    def validate(self) -> None:
        if self.network not in NETWORKS:
            raise ConfigError(
                f"--network: unknown network {self.network!r}; one of {', '.join(NETWORKS)}"
            )
        if not 0 <= self.http_port <= 65535:
            raise ConfigError(f"--http-port: {self.http_port} is not a TCP port (0 turns HTTP off)")
        if self.http_port and not self.http_tls and not _is_loopback(self.http_host):
            # Runes travel in a header: in clear text only where nobody else can listen.
            raise ConfigError(
                f"--http-host: {self.http_host} is not a loopback address; without TLS, HTTP "
                "only binds 127.0.0.1, ::1 or localhost (add --http-tls to serve HTTPS)"
            )
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port: {self.metrics_port} is not a TCP port (0: off)")
        if self.metrics_port and self.metrics_port == self.http_port:
            raise ConfigError("--metrics-port: must differ from --http-port")
        if self.signer not in ("software", "hwi"):
            raise ConfigError(f"--signer: {self.signer!r} is not 'software' or 'hwi'")
        if self.approver not in ("none", "hwi"):
            raise ConfigError(f"--approver: {self.approver!r} is not 'none' or 'hwi'")
        if self.signer == "hwi" and self.approver == "hwi":
            raise ConfigError(
                "--approver hwi: the device already signs every request with --signer hwi; "
                "use one or the other"
            )
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"--workers: {self.workers} is not between 1 and 64")
        if self.workers > 1 and "hwi" in (self.signer, self.approver):
            raise ConfigError("--workers: a hardware device serves one process; use --workers 1")
        if self.workers > 1 and self.metrics_port:
            raise ConfigError(
                "--workers: --metrics-port would be bound by every worker; use --workers 1"
            )
        if self.pay_with != "none" and not self.pay_with.startswith("cln:"):
            raise ConfigError(f"--pay-with: {self.pay_with!r} is not 'none' or 'cln:RPC_PATH'")
        if self.path_introduction is not None:
            if _HEX_NODE_ID.fullmatch(self.path_introduction) is None:
                raise ConfigError(
                    f"--path-introduction: {self.path_introduction!r} is not a node id "
                    "(66 hex digits starting 02 or 03)"
                )
            if not self.pay_with.startswith("cln:"):
                raise ConfigError(
                    "--path-introduction: requests carry a path only with --pay-with cln:PATH"
                )
        if not 1 <= self.pay_timeout <= 3600:
            raise ConfigError(f"--pay-timeout: {self.pay_timeout} is not between 1 and 3600 s")
        if not 0.1 <= self.pay_reconcile_interval <= 3600:
            raise ConfigError(
                f"--pay-reconcile-interval: {self.pay_reconcile_interval} is not between 0.1 "
                "and 3600 s"
            )
        for flag, value in (
            ("--pay-attempts-per-request", self.pay_attempts_per_request),
            ("--pay-attempts-per-minute", self.pay_attempts_per_minute),
        ):
            if not 1 <= value <= 1_000_000:
                raise ConfigError(f"{flag}: {value} is not between 1 and 1000000")
        if self.hwi_timeout <= 0:
            raise ConfigError(f"--hwi-timeout: {self.hwi_timeout} is not a positive number")
        if not self.rpc_file:
            raise ConfigError("--rpc-file: needs a file name or path")
        # A unix socket path is limited to 107 bytes on Linux (sun_path).
        if len(os.fsencode(self.socket_path)) > 107:
            raise ConfigError(
                f"--data-dir: the socket path {self.socket_path} is longer than the 107 bytes "
                "a unix socket allows; choose a shorter data directory (or --rpc-file)"
            )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
