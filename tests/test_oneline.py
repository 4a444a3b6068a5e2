"""invreq.oneline: outside text becomes one printable, unambiguous, bounded line."""

from invreq.oneline import escape, oneline


def test_plain_text_is_unchanged() -> None:
    assert oneline("invoice 42 refused: amount") == "invoice 42 refused: amount"


def test_a_line_feed_esc_and_a_bidi_override_are_escaped_to_one_line() -> None:
    out = oneline("bad\nINFO forged line\x1b[31m\u202e")
    assert "\n" not in out and "\x1b" not in out and "\u202e" not in out
    assert out == "bad\\u{a}INFO forged line\\u{1b}[31m\\u{202e}"
    assert out.isprintable() and out.isascii()


def test_a_backslash_is_doubled_so_an_escape_cannot_be_forged() -> None:
    assert escape("\\u{a}") == "\\\\u{a}"


def test_long_text_is_cut_at_the_cap_without_splitting_an_escape() -> None:
    out = oneline("a" * 9 + "\n" * 10, cap=12)
    assert out == "aaaaaaaaa... (19 chars)"
    assert len(oneline("x" * 1000)) < 230


def test_non_strings_are_rendered_first() -> None:
    assert oneline(ValueError("x\ny")) == "x\\u{a}y"
