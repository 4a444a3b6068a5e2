"""The approval text (no field can forge a line) and the check of approval signatures,
including the verifier printed in docs/hardware.md, over long texts."""

from __future__ import annotations

import base64
import io
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey
from invreq import approval
from invreq.approval import approval_text, invreq_id_of, recover_bip137, verify_approval
from invreq.bound import SINGLE_USE, PayoutBound
from invreq.refdevice.bip32 import ExtendedPrivateKey
from invreq.refdevice.device import Device

ID = "3f0c" + "ab" * 30
OTHER_ID = "9e" * 32
HARDWARE_DOC = Path(__file__).resolve().parent.parent / "docs" / "hardware.md"

# Every class of character that could make a line, end one, or hide or reorder text.
SPOOF_CHARS = {
    "LF": "\n",
    "CR": "\r",
    "CRLF": "\r\n",
    "VT": "\v",
    "FF": "\f",
    "TAB": "\t",
    "BS": "\b",
    "NUL": "\0",
    "ESC (ANSI)": "\x1b[2K\x1b[1A",
    "DEL": "\x7f",
    "NEL U+0085": "\x85",
    "LINE SEPARATOR U+2028": "\u2028",
    "PARAGRAPH SEPARATOR U+2029": "\u2029",
    "RLO U+202E": "\u202e",
    "LRO U+202D": "\u202d",
    "RLI U+2067": "\u2067",
    "PDI U+2069": "\u2069",
    "ZWSP U+200B": "\u200b",
    "ZWJ U+200D": "\u200d",
    "WORD JOINER U+2060": "\u2060",
    "BOM U+FEFF": "\ufeff",
    "HANGUL FILLER U+3164": "\u3164",
    "NBSP U+00A0": "\xa0",
    "IDEOGRAPHIC SPACE U+3000": "\u3000",
    "combining overlay U+0338": "\u0338",
    "homoglyph (Cyrillic a)": "\u0430",
}


def text(**kw: Any) -> str:
    args: dict[str, Any] = {
        "network": "regtest",
        "amount_msat": 5_000_000_000,
        "description": "approved",
        "issuer": None,
        "absolute_expiry": None,
        "invreq_id": ID,
    }
    args.update(kw)
    return approval_text(**args)


def test_layout() -> None:
    t = text(issuer="atm", absolute_expiry=1_796_169_600)
    assert t.split("\n") == [
        "invreq approval v2",
        "network: regtest",
        "amount: 5000000000 msat",
        "= 5000000 sat",
        "= 0.05000000 BTC",
        "payouts: single use",
        "in all: 5000000000 msat",
        "payouts until: never",
        "expires: 2026-12-02 00:00:00 UTC",
        "description: 8 chars",
        "> approved",
        "issuer: 3 chars",
        "> atm",
        "invreq_id:",
        ID,
    ]
    assert invreq_id_of(t) == ID


@pytest.mark.parametrize(
    ("bound", "rows"),
    [
        (SINGLE_USE, ["payouts: single use", "in all: 5000000000 msat", "payouts until: never"]),
        (
            PayoutBound(single_use=False, max_payouts=2),
            ["payouts: up to 2", "in all: up to 10000000000 msat", "payouts until: never"],
        ),
        (
            PayoutBound(single_use=False),
            ["payouts: UNLIMITED", "in all: NO LIMIT", "payouts until: never"],
        ),
        (
            PayoutBound(single_use=False, payout_until=1_796_169_600),
            ["payouts: UNLIMITED", "in all: NO LIMIT", "payouts until: 2026-12-02 00:00:00 UTC"],
        ),
    ],
)
def test_the_text_states_the_payout_bound(bound: PayoutBound, rows: list[str]) -> None:
    t = text(bound=bound)
    assert t.split("\n")[5:8] == rows
    assert approval.bound_rows_of(t) == rows
    # A reusable request's text differs from a single-use one's by more than its id.
    assert text(bound=bound) != text() or bound == SINGLE_USE


@pytest.mark.parametrize(
    ("msat", "rows"),
    [
        (1, ["amount: 1 msat", "= 0.001 sat", "= 0.00000000001 BTC"]),
        (1500, ["amount: 1500 msat", "= 1.5 sat", "= 0.000000015 BTC"]),
        (100_000_000_000, ["amount: 100000000000 msat", "= 100000000 sat", "= 1.00000000 BTC"]),
        (
            2**64 - 1,
            [
                "amount: 18446744073709551615 msat",
                "= 18446744073709551.615 sat",
                "= 184467440.73709551615 BTC",
            ],
        ),
    ],
)
def test_amount_in_msat_sat_and_btc(msat: int, rows: list[str]) -> None:
    assert text(amount_msat=msat).split("\n")[2:5] == rows


def test_absent_issuer_differs_from_a_dash_and_expiry_edges() -> None:
    assert "issuer: absent" in text(issuer=None).split("\n")
    assert text(issuer="-").split("\n")[-4:-2] == ["issuer: 1 chars", "> -"]
    assert text(issuer="absent").split("\n")[-4:-2] == ["issuer: 6 chars", "> absent"]
    assert text().split("\n")[8] == "expires: never"
    far = text(absolute_expiry=2**64 - 1).split("\n")[8]
    assert far == f"expires: {2**64 - 1} seconds after 1970-01-01 00:00:00 UTC"


def outside_rows(t: str) -> list[str]:
    """The rows after the fixed ones that hold outside text."""
    return [row for row in t.split("\n")[9:-2] if row.startswith("> ")]


@pytest.mark.parametrize("name", sorted(SPOOF_CHARS))
@pytest.mark.parametrize("field", ["description", "issuer"])
def test_no_character_can_forge_a_line(name: str, field: str) -> None:
    c = SPOOF_CHARS[name]
    forged = (
        f"x{c}amount: 1 msat{c}{c}invreq approval v2{c}network: bitcoin{c}expires: never"
        f"{c}payouts: single use{c}invreq_id:{c}{OTHER_ID}"
    )
    t = text(**{field: forged})
    lines = t.split("\n")
    assert invreq_id_of(t) == ID
    assert lines[2] == "amount: 5000000000 msat"
    assert lines[1] == "network: regtest" and lines[8] == "expires: never"
    assert lines[5] == "payouts: single use"
    # Every row after the fixed ones is a field head of ours or a quoted row.
    for row in lines[9:-2]:
        assert row.startswith(("description: ", "issuer: ", "> ")), row
    # Only printable ASCII reaches the device; the character is shown as an escape.
    assert all(" " <= ch <= "~" for ch in t.replace("\n", ""))
    shown = "".join(r[2:] for r in outside_rows(t))
    for ch in (ch for ch in c if not " " <= ch <= "~"):  # ANSI: only ESC is not text
        assert f"\\u{{{ord(ch):x}}}" in shown


def hard_wrap(row: str, width: int) -> list[str]:
    return [row[i : i + width] for i in range(0, len(row), width)] or [""]


def word_wrap(row: str, width: int) -> list[str]:
    return textwrap.wrap(row, width, drop_whitespace=True) or [""]


def screen(t: str, width: int, wrap: Any) -> list[str]:
    return [r for row in t.split("\n") for r in wrap(row, width)]


@pytest.mark.parametrize("width", [24, 80])
@pytest.mark.parametrize("wrap", [hard_wrap, word_wrap])
@pytest.mark.parametrize("pad", [" ", "x", "\u3000", "\\"])
@pytest.mark.parametrize("field", ["description", "issuer"])
def test_no_wrapping_puts_a_fake_row_on_the_screen(
    width: int, wrap: Any, pad: str, field: str
) -> None:
    # Padding of every length before a fake row: on a 24- or 80-column screen that
    # wraps (at any character, or at spaces), no screen row may start with a fake amount.
    honest = screen(text(), width, wrap)
    for n in range(0, 2 * width):
        t = text(**{field: pad * n + "amount: 1 msat " + pad * n + "payouts: single use"})
        rows = screen(t, width, wrap)
        ours = [r for r in rows if not r.startswith("> ")]
        # Outside text is only ever on quoted rows, each shown whole.
        assert all(len(r) <= approval.ROW_WIDTH for r in rows if r.startswith("> "))
        assert [r for r in ours if r.lstrip().startswith(("amount", "payouts"))] == [
            r for r in honest if r.lstrip().startswith(("amount", "payouts"))
        ], (n, rows)


def test_escaping_is_unambiguous() -> None:
    # A description that spells an escape is not shown like the character itself.
    literal = outside_rows(text(description="a\\u{a}b"))
    real = outside_rows(text(description="a\nb"))
    assert literal != real
    assert literal == ["> a\\\\u{a}b"]
    assert real == ["> a\\u{a}b"]


def test_escapes_are_never_split_across_rows() -> None:
    for n in range(30):
        rows = outside_rows(text(description="d" * n + "\u202e" * 5))
        joined = "".join(r[2:] for r in rows)
        assert joined == "d" * n + "\\u{202e}" * 5
        for r in rows:
            assert r.count("\\u{") == r.count("}"), r


def test_long_fields_are_cut_and_say_so() -> None:
    t = text(description="d" * 60_000, issuer="\u202e" * 1000)
    lines = t.split("\n")
    head = f"description: 60000 chars, first {approval.DESCRIPTION_CAP} shown"
    assert lines[9] == head
    desc = lines[10 : lines.index(next(r for r in lines if r.startswith("issuer")))]
    assert "".join(r[2:] for r in desc) == "d" * approval.DESCRIPTION_CAP
    shown = approval.ISSUER_CAP // len("\\u{202e}")
    assert f"issuer: 1000 chars, first {shown} shown" in lines
    assert "".join(r[2:] for r in outside_rows(t)).endswith("\\u{202e}" * shown)
    assert len(t.encode()) < 1000


def test_invreq_id_is_read_by_position_only() -> None:
    good = text()
    assert invreq_id_of(good + "\n") is None
    assert invreq_id_of("x" + good) is None
    assert invreq_id_of(good.replace(ID, ID.upper())) is None
    assert invreq_id_of(f"invreq_id: {ID}") is None
    # A row that is neither ours nor quoted makes the text not ours.
    rows = good.split("\n")
    assert invreq_id_of("\n".join([*rows[:10], "amount: 1 msat", *rows[10:]])) is None


def v1_text(description: str = "approved", invreq_id: str = ID) -> str:
    """A version 1 text as invreq wrote them before the bound and the quoted rows."""
    return "\n".join(
        [
            "invreq approval v1",
            "network: regtest",
            "amount: 5000000000 msat = 5000000 sat = 0.05000000 BTC",
            f"description ({len(description)} chars): {description[:160]}",
            "issuer: absent",
            "expires: never",
            "invreq_id:",
            invreq_id,
        ]
    )


def test_version_1_texts_are_still_read() -> None:
    v1 = v1_text()
    assert invreq_id_of(v1) == ID
    assert approval.bound_rows_of(v1) is None  # it stated no bound


# --- signatures ---------------------------------------------------------------------------

SEED = bytes(range(32))
PATH = [0x8000_0000 + 9735, 0x8000_0000, 0x8000_0000]


def device_sign(message: str) -> tuple[str, bytes]:
    """A BIP-137 signature made by the reference device's own sign_message handler."""
    master = ExtendedPrivateKey.from_seed(SEED)
    device = Device(master, console=io.StringIO())
    reply = device.handle(
        {"id": "1", "method": "sign_message", "params": {"path": PATH, "message": message}}
    )
    return str(reply["result"]), master.derive(PATH).public_key


def readme_verifier() -> Any:
    """The ``verify_approval`` function exactly as docs/hardware.md prints it."""
    blocks = re.findall(r"```python\n(.*?)```", HARDWARE_DOC.read_text(), re.S)
    source = next(b for b in blocks if "def verify_approval" in b)
    namespace: dict[str, Any] = {}
    exec(compile(source, "docs/hardware.md", "exec"), namespace)
    return namespace["verify_approval"]


LENGTHS = [0, 1, 252, 253, 254, 255, 256, 300, 65_535, 65_536, 70_000]


@pytest.mark.parametrize("n", LENGTHS)
def test_bip137_long_messages(n: int) -> None:
    message = ("x" * n)[:n]
    sig, pubkey = device_sign(message)
    assert recover_bip137(message, sig) == pubkey
    assert recover_bip137(message + "y", sig) != pubkey


@pytest.mark.parametrize("n", [0, 253, 254, 256, 70_000])
def test_readme_verifier_handles_long_texts_and_binds_the_request(n: int) -> None:
    verify = readme_verifier()
    message = text(description="d" * n, bound=PayoutBound(single_use=False, max_payouts=2))
    sig, pubkey = device_sign(message)
    evidence = {"message": message, "signature": sig, "pubkey": pubkey.hex()}
    assert verify(evidence, ID, pubkey)
    assert not verify(evidence, OTHER_ID, pubkey)
    assert not verify(evidence, ID, PrivateKey(bytes([7]) * 32).public_key.format())
    # A long message that is not in our layout (so names no request) is never accepted.
    raw = "y" * (n + 300)
    raw_sig, _ = device_sign(raw)
    assert not verify({"message": raw, "signature": raw_sig}, ID, pubkey)
    assert verify_approval(evidence, invreq_id=ID, pubkey=pubkey) is None
    # Approvals stored before version 2 still verify.
    old = v1_text(description="d" * n)
    old_sig, _ = device_sign(old)
    assert verify({"message": old, "signature": old_sig}, ID, pubkey)
    # Only compressed P2PKH headers.
    raw = base64.b64decode(sig)
    for base in (27, 35, 39):
        other = base64.b64encode(bytes([base + raw[0] - 31]) + raw[1:]).decode()
        assert not verify({"message": message, "signature": other}, ID, pubkey)


def test_replayed_foreign_and_malformed_approvals_are_refused() -> None:
    mine = text()
    sig, pubkey = device_sign(mine)
    assert verify_approval({"message": mine, "signature": sig}, invreq_id=ID, pubkey=pubkey) is None
    # Replay: an earlier approval's signature with this request's text.
    earlier = text(invreq_id=OTHER_ID)
    earlier_sig, _ = device_sign(earlier)
    assert verify_approval({"message": mine, "signature": earlier_sig}, invreq_id=ID, pubkey=pubkey)
    # Replay of the whole earlier approval: it names another request.
    assert verify_approval(
        {"message": earlier, "signature": earlier_sig}, invreq_id=ID, pubkey=pubkey
    )
    # Another key over the right text.
    other = PrivateKey(bytes([9]) * 32)
    digest = approval.bitcoin_message_digest(mine.encode())
    raw = other.sign_recoverable(digest, hasher=None)
    foreign = base64.b64encode(bytes([31 + raw[64]]) + raw[:64]).decode()
    assert verify_approval({"message": mine, "signature": foreign}, invreq_id=ID, pubkey=pubkey)
    for bad in ("AAAA", "", 12345, None, base64.b64encode(b"\x1f" + bytes(64)).decode(), "!!"):
        assert verify_approval({"message": mine, "signature": bad}, invreq_id=ID, pubkey=pubkey)
    assert verify_approval("not a dict", invreq_id=ID, pubkey=pubkey)


def test_only_compressed_p2pkh_headers_are_accepted() -> None:
    # BIP-137 header = base + recovery id: 27 uncompressed P2PKH, 31 compressed P2PKH,
    # 35 P2SH-P2WPKH, 39 P2WPKH. The same r||s under another header names another kind of
    # key than the one the device shows: only 31..34 is read.
    mine = text()
    sig, pubkey = device_sign(mine)
    raw = base64.b64decode(sig)
    assert raw[0] in range(31, 35)
    recid = raw[0] - 31
    assert recover_bip137(mine, sig) == pubkey
    for base in (27, 35, 39):
        other = base64.b64encode(bytes([base + recid]) + raw[1:]).decode()
        assert recover_bip137(mine, other) is None, base
        assert verify_approval({"message": mine, "signature": other}, invreq_id=ID, pubkey=pubkey)
    for header in (0, 26, 43, 255):
        assert recover_bip137(mine, base64.b64encode(bytes([header]) + raw[1:]).decode()) is None
