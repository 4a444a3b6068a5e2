"""HTTPS for ``--http-tls``: a certificate created on first start in the network directory.

The certificate is self-signed (CLN's clnrest does the same); clients pin it by passing the
file as their CA (``curl --cacert DIR/NETWORK/tls.crt``). It names ``localhost``, the
loopback addresses and the ``--http-host`` given when it was created; to serve under another
name, delete both files and start again, or put your own ``tls.crt``/``tls.key`` there
(either may be a symbolic link, e.g. to a certbot directory).

Every problem with the pair ends the start with one line saying what to do: a key the group
or others can read (``chmod 600``), one file of the pair without the other, a file that
cannot be read or does not hold a certificate and its key.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import stat
from pathlib import Path

from invreq.errors import StartupError

__all__ = ["CERT_NAME", "KEY_NAME", "server_context"]

CERT_NAME = "tls.crt"
KEY_NAME = "tls.key"


def _create(cert: Path, key: Path, host: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    try:
        ip = ipaddress.ip_address(host)
        if not ip.is_loopback and not ip.is_unspecified:
            names.append(x509.IPAddress(ip))
    except ValueError:
        if host != "localhost":
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "invreq")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _check_key_mode(key: Path) -> None:
    try:
        mode = os.stat(key).st_mode  # follows a link: the key itself must be private
    except OSError as e:
        raise StartupError(f"{key}: cannot read the TLS key ({e.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StartupError(
            f"{key} is readable by group or others (mode {stat.S_IMODE(mode):04o}); it is the "
            f"HTTPS private key: run `chmod 600 {key}` and start again"
        )


def server_context(directory: Path, host: str) -> ssl.SSLContext:
    cert, key = directory / CERT_NAME, directory / KEY_NAME
    has_cert, has_key = os.path.lexists(cert), os.path.lexists(key)
    if not has_cert and not has_key:
        _create(cert, key, host)
    elif not has_cert:
        raise StartupError(
            f"{key} exists but {cert} does not: put the certificate back, or delete {key} "
            "to have a new pair made"
        )
    elif not has_key:
        raise StartupError(
            f"{cert} exists but {key} does not: put the key back, or delete {cert} to have "
            "a new pair made"
        )
    _check_key_mode(key)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise StartupError(
            f"{cert}, {key}: not a usable certificate and key ({e}); fix them, or delete both "
            "to have a new pair made"
        ) from None
    return ctx
