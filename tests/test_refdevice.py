"""The reference signing device: BIP-32 against the published vectors, then the device as a
real process driven by unmodified hwilib exactly as the HWI signer will drive it.

hwilib treats only ``tcp:127.0.0.1:30121`` as a Jade simulator, so every device here
listens on that port: one device at a time, each stopped (and its exit code checked)
before the next test starts one.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from _refdevice import START_TIMEOUT, RefDevice  # noqa: F401
from coincurve import PublicKey
from hwilib.commands import get_client
from hwilib.common import Chain
from hwilib.devices.jade import JadeClient
from hwilib.devices.jadepy.jade_error import JadeError
from hwilib.errors import ActionCanceledError
from invreq import bolt12
from invreq.refdevice.__main__ import load_or_create_seed
from invreq.refdevice.bip32 import ExtendedPrivateKey, format_path, hash160, parse_path
from invreq.refdevice.listener import DEFAULT_PORT
from invreq.signers.software import SoftwareSigner

# hwilib 3.2.0's JadeClient calls semver.parse_version_info, deprecated in semver 3; under
# filterwarnings=error that warning would abort get_client after it has connected.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Function 'semver.parse_version_info' is deprecated:DeprecationWarning"
)

SIMULATOR = f"tcp:127.0.0.1:{DEFAULT_PORT}"
SEED = bytes(range(32))
BOLT12_PATH = "m/9735h/0h"

# --- BIP-32 ------------------------------------------------------------------------------

# Provenance: BIP-32 "Test Vectors", test vectors 1 and 2 (bitcoin/bips, bip-0032.mediawiki).
# (chain, ext pub, ext prv) exactly as published.
BIP32_VECTOR_1_SEED = "000102030405060708090a0b0c0d0e0f"
BIP32_VECTOR_1 = [
    (
        "m",
        "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8",
        "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi",
    ),
    (
        "m/0H",
        "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw",
        "xprv9uHRZZhk6KAJC1avXpDAp4MDc3sQKNxDiPvvkX8Br5ngLNv1TxvUxt4cV1rGL5hj6KCesnDYUhd7oWgT11eZG7XnxHrnYeSvkzY7d2bhkJ7",
    ),
    (
        "m/0H/1",
        "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ",
        "xprv9wTYmMFdV23N2TdNG573QoEsfRrWKQgWeibmLntzniatZvR9BmLnvSxqu53Kw1UmYPxLgboyZQaXwTCg8MSY3H2EU4pWcQDnRnrVA1xe8fs",
    ),
    (
        "m/0H/1/2H",
        "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5",
        "xprv9z4pot5VBttmtdRTWfWQmoH1taj2axGVzFqSb8C9xaxKymcFzXBDptWmT7FwuEzG3ryjH4ktypQSAewRiNMjANTtpgP4mLTj34bhnZX7UiM",
    ),
    (
        "m/0H/1/2H/2",
        "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV",
        "xprvA2JDeKCSNNZky6uBCviVfJSKyQ1mDYahRjijr5idH2WwLsEd4Hsb2Tyh8RfQMuPh7f7RtyzTtdrbdqqsunu5Mm3wDvUAKRHSC34sJ7in334",
    ),
    (
        "m/0H/1/2H/2/1000000000",
        "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy",
        "xprvA41z7zogVVwxVSgdKUHDy1SKmdb533PjDz7J6N6mV6uS3ze1ai8FHa8kmHScGpWmj4WggLyQjgPie1rFSruoUihUZREPSL39UNdE3BBDu76",
    ),
]
BIP32_VECTOR_2_SEED = (
    "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a2"
    "9f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542"
)
BIP32_VECTOR_2 = [
    (
        "m",
        "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB",
        "xprv9s21ZrQH143K31xYSDQpPDxsXRTUcvj2iNHm5NUtrGiGG5e2DtALGdso3pGz6ssrdK4PFmM8NSpSBHNqPqm55Qn3LqFtT2emdEXVYsCzC2U",
    ),
    (
        "m/0",
        "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH",
        "xprv9vHkqa6EV4sPZHYqZznhT2NPtPCjKuDKGY38FBWLvgaDx45zo9WQRUT3dKYnjwih2yJD9mkrocEZXo1ex8G81dwSM1fwqWpWkeS3v86pgKt",
    ),
    (
        "m/0/2147483647H",
        "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a",
        "xprv9wSp6B7kry3Vj9m1zSnLvN3xH8RdsPP1Mh7fAaR7aRLcQMKTR2vidYEeEg2mUCTAwCd6vnxVrcjfy2kRgVsFawNzmjuHc2YmYRmagcEPdU9",
    ),
    (
        "m/0/2147483647H/1",
        "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon",
        "xprv9zFnWC6h2cLgpmSA46vutJzBcfJ8yaJGg8cX1e5StJh45BBciYTRXSd25UEPVuesF9yog62tGAQtHjXajPPdbRCHuWS6T8XA2ECKADdw4Ef",
    ),
    (
        "m/0/2147483647H/1/2147483646H",
        "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL",
        "xprvA1RpRA33e1JQ7ifknakTFpgNXPmW2YvmhqLQYMmrj4xJXXWYpDPS3xz7iAxn8L39njGVyuoseXzU6rcxFLJ8HFsTjSyQbLYnMpCqE2VbFWc",
    ),
    (
        "m/0/2147483647H/1/2147483646H/2",
        "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt",
        "xprvA2nrNbFZABcdryreWet9Ea4LvTJcGsqrMzxHx98MMrotbir7yrKCEXw7nadnHM8Dq38EGfSh6dqA9QWTyefMLEcBYJUuekgW4BYPJcr9E7j",
    ),
]
BIP32_CASES = [(BIP32_VECTOR_1_SEED, *c) for c in BIP32_VECTOR_1] + [
    (BIP32_VECTOR_2_SEED, *c) for c in BIP32_VECTOR_2
]


@pytest.mark.parametrize(("seed", "chain", "xpub", "xprv"), BIP32_CASES)
def test_bip32_published_vectors(seed: str, chain: str, xpub: str, xprv: str) -> None:
    key = ExtendedPrivateKey.from_seed(bytes.fromhex(seed)).derive(parse_path(chain))
    assert key.xpub() == xpub
    assert key.xprv() == xprv


def test_bip32_testnet_serialisation_matches_hwilib() -> None:
    """tpub/tprv differ from xpub/xprv only in the version bytes; hwilib's own decoder (an
    independent implementation) must read the same key and chain code back."""
    from hwilib.key import ExtendedKey

    key = ExtendedPrivateKey.from_seed(SEED).derive(parse_path("m/9735h/0h/7"))
    tpub = key.xpub(testnet=True)
    assert tpub.startswith("tpub") and key.xprv(testnet=True).startswith("tprv")
    decoded = ExtendedKey.deserialize(tpub)
    assert decoded.pubkey == key.public_key and decoded.chaincode == key.chain_code
    assert decoded.depth == 3 and decoded.child_num == 7
    assert decoded.parent_fingerprint == key.parent_fingerprint


def test_path_notation() -> None:
    assert parse_path("m/0H/1/2h/3'") == [0x8000_0000, 1, 0x8000_0002, 0x8000_0003]
    assert parse_path("m") == []
    assert format_path(parse_path("m/9735'/0/1H")) == "m/9735h/0/1h"
    for bad in ("0/1", "m/x", "m/2147483648", "m/-1", "m/1/"):
        with pytest.raises(ValueError):
            parse_path(bad)


def test_seed_file_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "seed"
    seed = load_or_create_seed(path)
    assert len(seed) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_seed(path) == seed


# --- the device as a process --------------------------------------------------------------


StartDevice = Callable[..., RefDevice]


@pytest.fixture
def start_device(tmp_path: Path) -> Iterator[StartDevice]:
    """Starts a device (one at a time: they share the port) and checks it exits cleanly."""
    seed_file = tmp_path / "seed"
    seed_file.write_text(SEED.hex())
    started: list[RefDevice] = []

    def start(*args: str, stdin: int = subprocess.DEVNULL) -> RefDevice:
        assert not started, "one device at a time: they all use the simulator port"
        dev = RefDevice(seed_file, tmp_path / "console.log", list(args))
        started.append(dev)
        return dev.start(stdin)

    yield start
    for dev in started:
        if dev.proc is not None and dev.proc.returncode is None:
            assert dev.stop() == 0, dev.console()


@pytest.fixture
def client_for(start_device: StartDevice) -> Iterator[Callable[..., JadeClient]]:
    """hwilib clients on the simulator path, each closed at the end of the test."""
    clients: list[JadeClient] = []

    def connect(chain: Chain = Chain.TEST) -> JadeClient:
        client = get_client("jade", SIMULATOR, chain=chain)
        assert isinstance(client, JadeClient)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        if client.jade.jade.impl.tcp_sock is not None:
            client.close()


def master() -> ExtendedPrivateKey:
    return ExtendedPrivateKey.from_seed(SEED)


def key_at(path: str) -> ExtendedPrivateKey:
    return master().derive(parse_path(path))


def unsigned_request(
    amount_msat: int = 1000, path: str = BOLT12_PATH
) -> bolt12.UnsignedInvoiceRequest:
    return bolt12.UnsignedInvoiceRequest(
        metadata=bytes(16),
        description="x",
        amount_msat=amount_msat,
        payer_id=key_at(path).public_key,
    )


def bolt12_params(
    tlv_stream: bytes, path: str = BOLT12_PATH, replace: dict[str, Any] | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "path": parse_path(path),
        "messagename": "invoice_request",
        "fieldname": "signature",
        "tlv_stream": tlv_stream,
    }
    params.update(replace or {})
    return params


def sign_bolt12(client: JadeClient, params: dict[str, Any]) -> Any:
    # The raw RPC channel: JadeClient.jade is hwilib's JadeAPI; _jadeRpc sends one request
    # and returns its result, or raises JadeError with the device's code and message.
    return client.jade._jadeRpc("sign_bolt12", params)


def verify_bip137(signature_b64: str, message: bytes, pubkey33: bytes) -> bool:
    """BIP-137 check written from the format: header 27 + recid (+4 when the key is
    compressed), then r || s; the public key recovered over the message hash must match."""
    sig = base64.b64decode(signature_b64)
    assert len(sig) == 65
    header = sig[0]
    assert 31 <= header <= 34, "a compressed P2PKH signature has header 31..34"
    size = len(message).to_bytes(1, "big")  # test messages are short: 1-byte compact size
    data = b"\x18Bitcoin Signed Message:\n" + size + message
    digest = hashlib.sha256(hashlib.sha256(data).digest()).digest()
    recovered = PublicKey.from_signature_and_message(
        sig[1:] + bytes([(header - 27) & 3]), digest, hasher=None
    )
    return recovered.format(compressed=True) == pubkey33


@pytest.mark.parametrize("chain", [Chain.MAIN, Chain.TEST])
def test_hwilib_reads_fingerprint_and_xpub(
    client_for: Callable[..., JadeClient], start_device: StartDevice, chain: Chain
) -> None:
    dev = start_device()
    client = client_for(chain)
    fingerprint = hash160(master().public_key)[:4]
    assert client.get_master_fingerprint() == fingerprint
    assert dev.fingerprint == fingerprint.hex()
    xpub = client.get_pubkey_at_path(BOLT12_PATH)
    assert xpub.to_string() == key_at(BOLT12_PATH).xpub(testnet=chain != Chain.MAIN)


def test_hwilib_sign_message_verifies(
    client_for: Callable[..., JadeClient], start_device: StartDevice
) -> None:
    dev = start_device()
    signature = client_for().sign_message("hello", "m/44h/0h/0h/0/0")
    assert verify_bip137(signature, b"hello", key_at("m/44h/0h/0h/0/0").public_key)
    assert not verify_bip137(signature, b"hellO", key_at("m/44h/0h/0h/0/0").public_key)
    assert "| hello" in dev.console()  # shown before it was signed


def test_sign_bolt12_verifies_and_equals_the_software_signer(
    client_for: Callable[..., JadeClient], start_device: StartDevice
) -> None:
    dev = start_device()
    unsigned = unsigned_request()
    reply = sign_bolt12(client_for(), bolt12_params(unsigned.tlv_stream))
    key = key_at(BOLT12_PATH)
    assert reply["pubkey"] == key.public_key
    bolt12.verify_signature(unsigned.digest, reply["signature"], key.public_key)
    assert reply["signature"] == SoftwareSigner(key.secret).sign_digest(unsigned.digest)
    assert unsigned.with_signature(reply["signature"]).payer_id == key.public_key
    console = dev.console()
    for shown in ("description:     x", "amount:          1000 msat", "chain:           bitcoin"):
        assert shown in console
    assert unsigned.digest.hex() in console


def test_summary_shows_issuer_expiry_and_chain(
    client_for: Callable[..., JadeClient], start_device: StartDevice
) -> None:
    dev = start_device()
    unsigned = bolt12.UnsignedInvoiceRequest(
        metadata=bytes(16),
        description="line one\nline two",
        amount_msat=5,
        payer_id=key_at(BOLT12_PATH).public_key,
        issuer="Bob",
        absolute_expiry=1_700_000_000,
        chain=bolt12.CHAINS["regtest"],
    )
    sign_bolt12(client_for(), bolt12_params(unsigned.tlv_stream))
    console = dev.console()
    assert "description:     line one\\nline two" in console  # a newline cannot fake a line
    assert "issuer:          Bob" in console
    assert "absolute_expiry: 1700000000 (2023-11-14 22:13:20 UTC)" in console
    assert "chain:           regtest" in console


def test_unknown_method_is_minus_32601(
    client_for: Callable[..., JadeClient], start_device: StartDevice
) -> None:
    start_device()
    with pytest.raises(JadeError) as e:
        client_for().jade._jadeRpc("no_such_method", {})
    assert e.value.code == JadeError.UNKNOWN_METHOD == -32601


def test_stock_firmware_does_not_know_sign_bolt12(
    client_for: Callable[..., JadeClient], start_device: StartDevice
) -> None:
    start_device("--stock")
    client = client_for()
    with pytest.raises(JadeError) as e:
        sign_bolt12(client, bolt12_params(unsigned_request().tlv_stream))
    assert e.value.code == -32601
    assert client.sign_message("still a Jade", "m/0h")  # the rest works as before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"messagename": "invoice"}, "only invoice_request/signature is signed"),
        ({"fieldname": "payer_signature"}, "only invoice_request/signature is signed"),
        ({"messagename": None}, "only invoice_request/signature is signed"),
        ({"path": "m/9735h/0h"}, "path must be a list"),
        ({"path": [2**32]}, "path must be a list"),
        ({"tlv_stream": "00"}, "tlv_stream must be bytes"),
    ],
)
def test_bad_parameters_are_minus_32602(
    client_for: Callable[..., JadeClient],
    start_device: StartDevice,
    extra: dict[str, Any],
    message: str,
) -> None:
    start_device()
    with pytest.raises(JadeError) as e:
        sign_bolt12(client_for(), bolt12_params(unsigned_request().tlv_stream, replace=extra))
    assert e.value.code == JadeError.BAD_PARAMETERS == -32602
    assert message in e.value.message


def test_streams_the_device_must_not_sign(
    client_for: Callable[..., JadeClient], start_device: StartDevice
) -> None:
    start_device()
    client = client_for()
    stream = unsigned_request().tlv_stream
    records = bolt12.parse_tlv_stream(stream)
    cases = {
        # already signed: a signature record in 240..1000 is not part of what is signed
        stream + bolt12.encode_tlv_stream([(240, bytes(64))]): "signature record 240",
        stream + bolt12.encode_tlv_stream([(1000, b"")]): "signature record 1000",
        stream[:-1]: "tlv_stream: truncated",
        # payer_id is another key: the signature would not verify against it
        unsigned_request(path="m/9735h/1h").tlv_stream: "invreq_payer_id is not the key at",
        bolt12.encode_tlv_stream([r for r in records if r[0] != 88]): "invreq_payer_id",
        bolt12.encode_tlv_stream([r if r[0] != 82 else (82, b"\0\1") for r in records]): (
            "record 82 is not a minimal tu64"
        ),
        bolt12.encode_tlv_stream([r if r[0] != 10 else (10, b"\xff") for r in records]): (
            "record 10 is not valid UTF-8"
        ),
    }
    for tlv, message in cases.items():
        with pytest.raises(JadeError) as e:
            sign_bolt12(client, bolt12_params(tlv))
        assert e.value.code == -32602 and message in e.value.message, (tlv.hex(), e.value)
    # one past the signature range is an ordinary (odd, so ignorable) record: signed
    reply = sign_bolt12(client, bolt12_params(stream + bolt12.encode_tlv_stream([(1001, b"")])))
    assert len(reply["signature"]) == 64


def test_deny_refuses_everything(
    client_for: Callable[..., JadeClient], start_device: StartDevice
) -> None:
    dev = start_device("--approve", "deny")
    client = client_for()
    with pytest.raises(JadeError) as e:
        sign_bolt12(client, bolt12_params(unsigned_request().tlv_stream))
    assert (e.value.code, e.value.message) == (JadeError.USER_CANCELLED, "user declined")
    # hwilib maps the same code to its own exception on the HardwareWalletClient API
    with pytest.raises(ActionCanceledError):
        client.sign_message("hello", "m/44h/0h/0h/0/0")
    assert "refused: user declined" in dev.console()
    assert client.get_master_fingerprint().hex() == dev.fingerprint  # keys still readable


def test_max_msat_limit(client_for: Callable[..., JadeClient], start_device: StartDevice) -> None:
    start_device("--approve", "max-msat=1000")
    client = client_for()
    for amount in (1, 1000):
        unsigned = unsigned_request(amount)
        reply = sign_bolt12(client, bolt12_params(unsigned.tlv_stream))
        bolt12.verify_signature(unsigned.digest, reply["signature"], reply["pubkey"])
    with pytest.raises(JadeError) as e:
        sign_bolt12(client, bolt12_params(unsigned_request(1001).tlv_stream))
    assert e.value.code == -32000
    assert e.value.message == "amount 1001 msat is above the limit of 1000 msat"
    # without invreq_amount the device cannot see the amount: it refuses rather than guess
    records = bolt12.parse_tlv_stream(unsigned_request().tlv_stream)
    no_amount = bolt12.encode_tlv_stream([r for r in records if r[0] != 82])
    with pytest.raises(JadeError) as e:
        sign_bolt12(client, bolt12_params(no_amount))
    assert e.value.code == -32000 and "limit of 1000 msat" in e.value.message
    # a text message has no amount at all: the limit does not concern it
    assert client.sign_message("hello", "m/44h/0h/0h/0/0")


def test_prompt_signs_only_on_y(
    client_for: Callable[..., JadeClient], start_device: StartDevice
) -> None:
    dev = start_device("--approve", "prompt", stdin=subprocess.PIPE)
    assert dev.proc is not None and dev.proc.stdin is not None
    dev.proc.stdin.write(b"y\nn\nyes\n")
    dev.proc.stdin.close()  # then end of input: nobody left to approve
    client = client_for()
    unsigned = unsigned_request()
    assert sign_bolt12(client, bolt12_params(unsigned.tlv_stream))["signature"]
    for _ in ("n", "yes", "end of input"):
        with pytest.raises(JadeError) as e:
            sign_bolt12(client, bolt12_params(unsigned.tlv_stream))
        assert (e.value.code, e.value.message) == (-32000, "user declined")
    assert dev.console().count("approve? [y/n]") == 4


def test_slow_device_survives_a_host_that_gave_up(
    client_for: Callable[..., JadeClient], start_device: StartDevice
) -> None:
    start_device("--delay", "1.5")
    client = client_for()
    client.jade.jade.impl.tcp_sock.settimeout(0.3)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        client.sign_message("hello", "m/0h")
    assert time.monotonic() - t0 < 1.0
    client.close()
    # the next host waits for the device to finish, then gets served normally
    client = client_for()
    t0 = time.monotonic()
    unsigned = unsigned_request()
    reply = sign_bolt12(client, bolt12_params(unsigned.tlv_stream))
    bolt12.verify_signature(unsigned.digest, reply["signature"], reply["pubkey"])
    assert time.monotonic() - t0 >= 1.4


def test_second_client_and_garbage_do_not_stop_it(
    client_for: Callable[..., JadeClient], start_device: StartDevice
) -> None:
    dev = start_device()
    first = client_for()
    second = client_for()  # while the first is still connected
    assert first.get_master_fingerprint() == second.get_master_fingerprint()
    with (
        socket.create_connection(("127.0.0.1", DEFAULT_PORT), timeout=5) as s,
        s.makefile("rb") as stream,
    ):
        s.sendall(cbor2.dumps(["not", "a", "map"]) + b"\x1c")
        decoder = cbor2.CBORDecoder(stream)
        assert decoder.decode() == {
            "id": "00",
            "error": {"code": -32600, "message": "a request is a CBOR map"},
        }
        reply: Any = decoder.decode()  # 0x1c cannot start a CBOR item: answered, then hung up
        assert reply["id"] == "00" and reply["error"]["code"] == -32600
        assert s.recv(1) == b""
    with (
        socket.create_connection(("127.0.0.1", DEFAULT_PORT), timeout=5) as s,
        s.makefile("rb") as stream,
    ):
        s.sendall(b"\x81" * 100_000 + b"\x00")  # nested deeper than the decoder goes
        reply = cbor2.CBORDecoder(stream).decode()
        assert reply["id"] == "00" and reply["error"]["code"] == -32600
    with socket.create_connection(("127.0.0.1", DEFAULT_PORT), timeout=5):
        pass  # connects and leaves without a word
    assert second.get_master_fingerprint().hex() == dev.fingerprint
    assert first.sign_message("hello", "m/0h")


def test_other_port_takes_hwilibs_real_unit_branch(start_device: StartDevice) -> None:
    """Off the simulator path hwilib also sends add_entropy and auth_user: answered as by
    an unlocked unit, so the device serves any port (here one the system picks)."""
    dev = start_device("--port", "0")
    assert dev.port != DEFAULT_PORT
    client = get_client("jade", f"tcp:127.0.0.1:{dev.port}", chain=Chain.REGTEST)
    assert client is not None
    try:
        assert client.get_master_fingerprint().hex() == dev.fingerprint
        expected = key_at("m/84h/1h/0h").xpub(testnet=True)
        assert client.get_pubkey_at_path("m/84h/1h/0h").to_string() == expected
    finally:
        client.close()


def test_new_seed_file_and_clean_exit_on_sigint(tmp_path: Path) -> None:
    seed_file = tmp_path / "fresh-seed"
    dev = RefDevice(seed_file, tmp_path / "console.log").start()
    assert stat.S_IMODE(os.stat(seed_file).st_mode) == 0o600
    seed = bytes.fromhex(seed_file.read_text())
    assert len(seed) == 32
    assert dev.fingerprint == ExtendedPrivateKey.from_seed(seed).fingerprint.hex()
    assert dev.proc is not None
    dev.proc.send_signal(signal.SIGINT)
    assert dev.proc.wait(10) == 0, dev.console()
    dev.stop()  # closes the pipe


@pytest.mark.parametrize(("content", "message"), [("zz", "must be hex"), ("00" * 15, "16 to 64")])
def test_bad_seed_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    seed_file = tmp_path / "seed"
    seed_file.write_text(content)
    cmd = [sys.executable, "-m", "invreq.refdevice", "--seed-file", str(seed_file)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and message in done.stderr
