"""An independent, pure-Python reader of BOLT 4 onion messages, written from the spec text.

Tests use it to open what the plugin sends (the onion it injects) as the nodes on the path
would: peel the Sphinx layer addressed to a node, and decrypt a hop's
``encrypted_recipient_data``. It also builds a plain blinded path for a test payee's
``reply_blindedpath``. Plain on purpose (no caching); the product never imports it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from coincurve import PrivateKey, PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from oracle import encode_tlv_stream, parse_tlv_stream

__all__ = ["Peeled", "blinded_path", "blinded_secret", "decrypt_hop", "peel"]

CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def _ecdh(secret: bytes, point: bytes) -> bytes:
    """SHA256 of the compressed point secret * point (BOLT 4's shared secret)."""
    shared = PublicKey(point).multiply(secret).format(compressed=True)
    return hashlib.sha256(shared).digest()


def _chacha20(key: bytes, data: bytes) -> bytes:
    # cryptography's nonce is the 32-bit block counter then the 96-bit nonce: all zero.
    enc = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    return enc.update(data)


def _mul_secret(secret: bytes, factor: bytes) -> bytes:
    value = int.from_bytes(secret, "big") * int.from_bytes(factor, "big") % CURVE_ORDER
    return value.to_bytes(32, "big")


def _bigsize(data: bytes) -> tuple[int, int]:
    first = data[0]
    if first < 0xFD:
        return first, 1
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(data[1 : 1 + width], "big"), 1 + width


def blinded_secret(node_secret: bytes, path_key: bytes) -> bytes:
    """The secret of the node's blinded id for ``path_key``: what opens its onion layer."""
    return _mul_secret(node_secret, _hmac(b"blinded_node_id", _ecdh(node_secret, path_key)))


def decrypt_hop(
    node_secret: bytes, path_key: bytes, encrypted: bytes
) -> tuple[bytes, dict[int, bytes], bytes]:
    """(blinded node secret, the hop's encrypted_data_tlv records, next path key)."""
    ss = _ecdh(node_secret, path_key)
    plain = ChaCha20Poly1305(_hmac(b"rho", ss)).decrypt(bytes(12), encrypted, b"")
    records = dict(parse_tlv_stream(plain))
    blinded_secret = _mul_secret(node_secret, _hmac(b"blinded_node_id", ss))
    if 8 in records:
        next_key = records[8]
    else:
        factor = hashlib.sha256(path_key + ss).digest()
        next_key = PublicKey(path_key).multiply(factor).format(compressed=True)
    return blinded_secret, records, next_key


@dataclass
class Peeled:
    payload: dict[int, bytes]  # the hop's onionmsg_tlv records
    next_packet: bytes | None  # None: this hop is the last


def peel(packet: bytes, blinded_secret: bytes) -> Peeled:
    """Open the layer of ``onion_message_packet`` addressed to the node whose (blinded)
    secret is ``blinded_secret``; checks the HMAC (no associated data)."""
    assert packet[0] == 0, "version 0"
    ephemeral, body, mac = packet[1:34], packet[34:-32], packet[-32:]
    ss = _ecdh(blinded_secret, ephemeral)
    assert hmac.compare_digest(_hmac(_hmac(b"mu", ss), body), mac), "onion HMAC does not verify"
    stream = _chacha20(_hmac(b"rho", ss), bytes(2 * len(body)))
    clear = bytes(a ^ b for a, b in zip(body + bytes(len(body)), stream, strict=True))
    length, used = _bigsize(clear)
    payload = clear[used : used + length]
    next_mac = clear[used + length : used + length + 32]
    rest = clear[used + length + 32 : used + length + 32 + len(body)]
    if next_mac == bytes(32):
        return Peeled(dict(parse_tlv_stream(payload)), None)
    factor = hashlib.sha256(ephemeral + ss).digest()
    next_ephemeral = PublicKey(ephemeral).multiply(factor).format(compressed=True)
    return Peeled(dict(parse_tlv_stream(payload)), b"\x00" + next_ephemeral + rest + next_mac)


def blinded_path(node_secret: bytes, path_id: bytes, session: bytes) -> dict[str, object]:
    """A one-hop blinded path to the node of ``node_secret``, in the JSON shape lightningd
    gives a hook's ``reply_blindedpath``."""
    node = PrivateKey(node_secret).public_key.format()
    path_key = PrivateKey(session).public_key.format()
    ss = _ecdh(session, node)
    blinded = PublicKey(node).multiply(_hmac(b"blinded_node_id", ss)).format()
    data = encode_tlv_stream([(6, path_id)])
    encrypted = ChaCha20Poly1305(_hmac(b"rho", ss)).encrypt(bytes(12), data, b"")
    return {
        "first_node_id": node.hex(),
        "first_path_key": path_key.hex(),
        "hops": [{"blinded_node_id": blinded.hex(), "encrypted_recipient_data": encrypted.hex()}],
    }
