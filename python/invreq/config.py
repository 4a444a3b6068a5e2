"""Service configuration: one dataclass, the one source of every option.

Each field carries its default, help text and accepted values; :mod:`invreq.cli` builds
``invreq serve``'s options (and the keys config files may set) from the fields, and
:meth:`Config.validate` checks values and combinations against the same constants.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

from invreq.bolt12 import NETWORKS
from invreq.loops import EVENT_LOOPS
from invreq.loops import resolve as resolve_loop

__all__ = [
    "APPROVERS",
    "DEFAULT_DATA_DIR",
    "DEFAULT_HTTP_PORTS",
    "DEFAULT_HWI_KEY_PATH",
    "LOG_LEVELS",
    "NETWORK_DEFAULT_PORT",
    "SIGNERS",
    "SOCKET_NAME",
    "Config",
    "ConfigError",
    "pay_with_path",
    "public_url_problem",
]

DEFAULT_DATA_DIR = Path("~/.invreq")
#: The unix socket's name in DATA_DIR/NETWORK/: lightningd's, so that
#: ``lightning-cli --lightning-dir=DATA_DIR --network=NETWORK`` finds it with no --rpc-file.
#: (Older invreq used ``invreq-rpc``; ``--rpc-file invreq-rpc`` keeps that name.)
SOCKET_NAME = "lightning-rpc"
DB_NAME = "invreq.sqlite3"
_HEX_NODE_ID = re.compile(r"0[23][0-9a-fA-F]{64}")


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
#: The key path of the payer key (--signer hwi) and of approvals (--approver hwi).
DEFAULT_HWI_KEY_PATH = "m/9735h/0h/0h"
SIGNERS = ("software", "hwi")
APPROVERS = ("none", "hwi")
LOG_LEVELS = ("debug", "info", "warn", "error")
#: ``--pay-with``: ``none``, or a Core Lightning node's RPC socket after this prefix.
PAY_WITH_CLN = "cln:"


class ConfigError(ValueError):
    """A setting that cannot work; the message names the option and how to fix it."""


def _option(default: Any, doc: str, choices: tuple[str, ...] | None = None) -> Any:
    """A field that is also the option ``--field-name`` and the config-file key
    ``field-name``: ``doc`` is its help text (``invreq serve --help`` adds the default),
    ``choices`` what it accepts."""
    return dataclasses.field(default=default, metadata={"help": doc, "choices": choices})


@dataclasses.dataclass(frozen=True)
class Config:
    """Every setting of ``invreq serve``, the one source of its options: :mod:`invreq.cli`
    builds the command line (and the keys config files may set) from these fields."""

    # _option returns dataclasses.field(...): the default is the (immutable) Path given.
    data_dir: Path = _option(DEFAULT_DATA_DIR, "state directory")  # noqa: RUF009
    network: str = _option("bitcoin", "the chain whose invoice_requests are made", NETWORKS)
    http_host: str = _option("127.0.0.1", "HTTP address (loopback only without --http-tls)")
    http_port: int = _option(
        NETWORK_DEFAULT_PORT,
        "HTTP port; 0 turns HTTP off (default: by network, "
        + ", ".join(f"{n} {port}" for n, port in DEFAULT_HTTP_PORTS.items())
        + ")",
    )
    http_tls: bool = _option(
        False,
        "serve HTTPS with DATA_DIR/NETWORK/tls.crt (created on first start); required for a "
        "non-loopback --http-host",
    )
    public_url: str | None = _option(
        None,
        "the address payees reach the HTTP door at, e.g. https://pay.example.com behind a "
        "proxy: page_url in the replies is this plus /r/INVREQ_ID (None: the HTTP door's "
        "own address); with --lnurl, the links wallets fetch start with it too",
    )
    webhook_url: str | None = _option(
        None,
        "POST every event (invoice received, payment pending, paid, failed, request "
        "disabled or expired) here, signed with the webhook secret (docs/payee-page.md)",
    )
    webhook_secret_file: Path | None = _option(  # noqa: RUF009
        None, "the webhook's HMAC-SHA256 key: a file only its owner can read, >= 16 bytes"
    )
    db: str | None = _option(
        None, "sqlite:///PATH or postgresql://...; None: SQLite in DATA_DIR/NETWORK/"
    )
    signer: str = _option(
        "software",
        "where the payer key is: DATA_DIR/NETWORK/payer_secret, or a hardware device",
        SIGNERS,
    )
    approver: str = _option(
        "none", "hwi: a hardware device approves (signs a text for) every request", APPROVERS
    )
    payout_approver: str = _option(
        "none",
        "hwi: a hardware device approves (signs a text for) every payment before it is sent, "
        "with the key at --hwi-approval-path",
        APPROVERS,
    )
    allow_unlimited_payouts: bool = _option(
        False,
        "with --approver hwi, accept reusable requests (single_use=false) without max_payouts: "
        "one approval then pays every invoice, without limit (the approval text says UNLIMITED)",
    )
    hwi_device_type: str | None = _option(None, "hwilib device type, e.g. jade")
    hwi_device_path: str | None = _option(None, "e.g. tcp:127.0.0.1:30121")
    hwi_fingerprint: str | None = _option(
        None,
        "the device's master fingerprint (8 hex digits), computed from its master public key "
        "and checked at start; alone, it finds the device among USB devices (never a TCP "
        "address: name one with --hwi-device-path)",
    )
    hwi_pubkey: str | None = _option(
        None,
        "the public key (66 hex digits) the device must have at its key path (the payer key "
        "path with --signer hwi, the approval path with --approver hwi), checked at start and "
        "every reconnect; without it the key seen at the first start is pinned in "
        "DATA_DIR/NETWORK/hwi-keys",
    )
    hwi_key_path: str = _option(DEFAULT_HWI_KEY_PATH, "payer key path with --signer hwi")
    hwi_approval_path: str = _option(
        DEFAULT_HWI_KEY_PATH, "key path of the approval signatures with --approver hwi"
    )
    hwi_timeout: float = _option(30.0, "seconds to wait for the device")
    pay_with: str = _option(
        "none",
        "how receiveinvoice pays: none (validate and record only) or cln:RPC_PATH (a Core "
        "Lightning node's lightning-rpc, through xpay); with cln, every request carries a "
        "blinded path to that node, for payees to send their invoice over",
    )
    path_introduction: str | None = _option(
        None,
        "NODE_ID: a public peer of the paying node that the blinded path enters through "
        "(two hops), for a node that is not announced",
    )
    # CLN's sendinvoice waits 90 s by default for the payment of its invoice: the payer's
    # answer must come well before that.
    pay_timeout: float = _option(
        60.0,
        "seconds xpay may take (given to the node as retry_for); after it the payment is "
        "pending (outcome unknown) and reconciliation settles it from the node's record",
    )
    pay_reconcile_interval: float = _option(
        30.0, "seconds between checks of pending payments against the node's listpays"
    )
    pay_attempts_per_request: int = _option(
        5,
        "payment attempts on one invoice_request that may fail (or stay pending) within an "
        "hour before it is not attempted again (error 2111)",
    )
    pay_attempts_per_minute: int = _option(
        30, "payment attempts on all invoice_requests per minute (error 2111 beyond)"
    )
    lnurl: bool = _option(
        False,
        "LNURL-withdraw (LUD-03): each single-use request made while on also carries a link "
        "(lnurl, lnurlw) any LNURL wallet collects it through, paid through --pay-with; needs "
        "HTTP and --public-url",
    )
    log_level: str = _option("info", "the least important messages logged", LOG_LEVELS)
    log_file: Path | None = _option(  # noqa: RUF009
        None, "log here instead of stderr (None: stderr); SIGHUP reopens it"
    )
    metrics_port: int = _option(0, "serve Prometheus metrics on 127.0.0.1:PORT/metrics; 0: off")
    workers: int = _option(
        1, "processes serving the same sockets (on SQLite, one more process writes for all)"
    )
    event_loop: str = _option(
        "auto",
        "the event loop: uvloop or asyncio's own; auto: $INVREQ_EVENT_LOOP when set, "
        "otherwise uvloop where it is installed",
        EVENT_LOOPS,
    )
    rpc_file: str = _option(
        SOCKET_NAME,
        "the JSON-RPC unix socket, as lightningd's rpc-file: a relative path is taken from "
        "DATA_DIR/NETWORK/ (the default is where lightning-cli --lightning-dir=DATA_DIR "
        "--network=NETWORK looks; older invreq used invreq-rpc)",
    )

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
    def page_base(self) -> str | None:
        """Where payee pages are, without the trailing slash; None when HTTP is off."""
        if not self.http_port:
            return None
        if self.public_url is not None:
            return self.public_url.rstrip("/")
        scheme = "https" if self.http_tls else "http"
        host = f"[{self.http_host}]" if ":" in self.http_host else self.http_host
        return f"{scheme}://{host}:{self.http_port}"

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
        if self.public_url is not None and not re.fullmatch(
            r"https?://[^\s/?#]+(/[^\s?#]*)?", self.public_url
        ):
            raise ConfigError(
                f"--public-url: {self.public_url!r} is not an http:// or https:// address "
                "(no query or fragment)"
            )
        if self.webhook_url is not None:
            if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s#]*)?", self.webhook_url):
                raise ConfigError(
                    f"--webhook-url: {self.webhook_url!r} is not an http:// or https:// address"
                )
            if self.webhook_secret_file is None:
                raise ConfigError(
                    "--webhook-url: needs --webhook-secret-file (deliveries are signed)"
                )
        elif self.webhook_secret_file is not None:
            raise ConfigError("--webhook-secret-file: only with --webhook-url")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port: {self.metrics_port} is not a TCP port (0: off)")
        if self.metrics_port and self.metrics_port == self.http_port:
            raise ConfigError("--metrics-port: must differ from --http-port")
        if self.signer not in SIGNERS:
            raise ConfigError(f"--signer: {self.signer!r} is not 'software' or 'hwi'")
        if self.approver not in APPROVERS:
            raise ConfigError(f"--approver: {self.approver!r} is not 'none' or 'hwi'")
        if self.signer == "hwi" and self.approver == "hwi":
            raise ConfigError(
                "--approver hwi: the device already signs every request with --signer hwi; "
                "use one or the other"
            )
        if self.payout_approver not in APPROVERS:
            raise ConfigError(f"--payout-approver: {self.payout_approver!r} is not 'none' or 'hwi'")
        if self.payout_approver == "hwi" and self.signer == "hwi":
            raise ConfigError(
                "--payout-approver hwi: the device holds the payer key with --signer hwi and "
                "serves one connection; use --signer software (with --approver hwi)"
            )
        if self.payout_approver == "hwi" and pay_with_path(self.pay_with) is None:
            raise ConfigError(
                "--payout-approver hwi: nothing is paid with --pay-with none; give --pay-with "
                "cln:RPC_PATH"
            )
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"--workers: {self.workers} is not between 1 and 64")
        if self.workers > 1 and "hwi" in (self.signer, self.approver, self.payout_approver):
            raise ConfigError("--workers: a hardware device serves one process; use --workers 1")
        if self.workers > 1 and self.metrics_port:
            raise ConfigError(
                "--workers: --metrics-port would be bound by every worker; use --workers 1"
            )
        pay_with_path(self.pay_with)
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(
                f"--log-level: {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}"
            )
        if self.path_introduction is not None:
            if _HEX_NODE_ID.fullmatch(self.path_introduction) is None:
                raise ConfigError(
                    f"--path-introduction: {self.path_introduction!r} is not a node id "
                    "(66 hex digits starting 02 or 03)"
                )
            if pay_with_path(self.pay_with) is None:
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
        if self.lnurl and self.public_url is not None:
            public_url_problem(self.public_url)
        if self.lnurl and not self.http_port:
            raise ConfigError("--lnurl: wallets reach the link over HTTP; give --http-port")
        if self.lnurl and pay_with_path(self.pay_with) is None:
            raise ConfigError(
                "--lnurl: a withdrawal link promises a payment; give --pay-with cln:RPC_PATH"
            )
        if self.lnurl and self.public_url is None:
            raise ConfigError(
                "--lnurl: give --public-url, the base URL wallets reach this service's HTTP door "
                "at (https://..., or http://... for an onion service)"
            )
        if self.hwi_fingerprint is not None and not _HEX_FINGERPRINT.fullmatch(
            self.hwi_fingerprint
        ):
            raise ConfigError(f"--hwi-fingerprint: {self.hwi_fingerprint!r} is not 8 hex digits")
        if self.hwi_pubkey is not None and not _HEX_NODE_ID.fullmatch(self.hwi_pubkey):
            raise ConfigError(
                f"--hwi-pubkey: {self.hwi_pubkey!r} is not a compressed public key "
                "(66 hex digits starting 02 or 03)"
            )
        for flag, path in (
            ("--hwi-key-path", self.hwi_key_path),
            ("--hwi-approval-path", self.hwi_approval_path),
        ):
            problem = key_path_problem(path)
            if problem is not None:
                raise ConfigError(f"{flag}: {path!r} {problem}")
        if self.hwi_timeout <= 0:
            raise ConfigError(f"--hwi-timeout: {self.hwi_timeout} is not a positive number")
        try:
            resolve_loop(self.event_loop)
        except ValueError as e:
            raise ConfigError(f"--event-loop: {e}") from None
        if not self.rpc_file:
            raise ConfigError("--rpc-file: needs a file name or path")
        # A unix socket path is limited to 107 bytes on Linux (sun_path).
        if len(os.fsencode(self.socket_path)) > 107:
            raise ConfigError(
                f"--data-dir: the socket path {self.socket_path} is longer than the 107 bytes "
                "a unix socket allows; choose a shorter data directory (or --rpc-file)"
            )


_HEX_FINGERPRINT = re.compile(r"[0-9a-fA-F]{8}")
_PATH_STEP = re.compile(r"(\d+)([hH']?)")


def key_path_problem(path: str) -> str | None:
    """Why a BIP-32 path may not name a device key invreq uses, or None.

    The payer key is published in every request and the approval key with every approval.
    ``m`` itself would publish the master public key (whose hash is the wallet's
    fingerprint, and which with a leaked chain code opens every non-hardened key); a
    non-hardened step makes the key derivable from its parent's xpub, which wallets hand
    to watch-only software (with the wallet's addresses: ``m/84h/0h/0h/0/5`` is one). So
    every step is hardened, and there is at least one."""
    steps = path.split("/")
    if steps[0] != "m":
        return "is not a BIP-32 path (it starts with m/)"
    if len(steps) == 1:
        return "is the master key itself, which every request would publish; use m/9735h/0h/0h"
    for step in steps[1:]:
        m = _PATH_STEP.fullmatch(step)
        if m is None or int(m.group(1)) >= 2**31:
            return f"has a step {step!r} that is not an index below 2^31 (h for hardened)"
        if not m.group(2):
            return (
                f"has the non-hardened step {step!r}: its key can be derived from the parent's "
                "xpub, which wallets export; harden every step (e.g. m/9735h/0h/0h)"
            )
    return None


def pay_with_path(spec: str) -> Path | None:
    """The ``--pay-with`` grammar, in one place: ``none`` -> None, ``cln:RPC_PATH`` -> the
    path (``~`` expanded); anything else raises ``ConfigError``."""
    if spec == "none":
        return None
    if spec.startswith(PAY_WITH_CLN):
        return Path(spec.removeprefix(PAY_WITH_CLN)).expanduser()
    raise ConfigError(f"--pay-with: {spec!r} is not 'none' or 'cln:RPC_PATH'")


def public_url_problem(url: str) -> None:
    """``--public-url``'s shape: wallets fetch LNURLs over https, http only for an onion
    service (LUD-01); loopback http is allowed for testing on one machine. Raises
    ``ConfigError``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and (host.endswith(".onion") or _is_loopback(host))
    )
    if not host or not secure or parts.query or parts.fragment:
        raise ConfigError(
            f"--public-url: {url!r} is not a base URL LNURL wallets accept (--lnurl): give "
            "https://HOST[:PORT][/PATH] (http:// only for an onion service, or loopback for "
            "testing), without query or fragment"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
