"""CLN-style config files, read from real files: comments, includes, errors at file:line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from invreq import conffile
from invreq.conffile import ConfFileError, Setting, apply_settings, read_settings

KNOWN = {
    "network": "value",
    "http-port": "value",
    "http-host": "value",
    "db": "value",
    "log-level": "value",
    "offline": "flag",
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def pairs(settings: list[Setting]) -> list[tuple[str, str | None]]:
    return [(s.key, s.value) for s in settings]


def test_comments_blank_lines_and_whitespace_are_ignored(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "invreq.conf",
        "# a comment\n"
        "\n"
        "   \n"
        "  network=regtest  \n"
        "    # an indented comment\n"
        "http-port = 3011\n"
        "offline\n"
        "db=sqlite:///x#not-a-comment\n",
    )
    settings = read_settings(conf)
    assert pairs(settings) == [
        ("network", "regtest"),
        ("http-port", "3011"),
        ("offline", None),
        ("db", "sqlite:///x#not-a-comment"),
    ]
    assert [s.lineno for s in settings] == [4, 6, 7, 8]
    assert all(s.path == conf for s in settings)


def test_crlf_line_endings_and_byte_order_mark(tmp_path: Path) -> None:
    conf = tmp_path / "invreq.conf"
    conf.write_bytes(b"\xef\xbb\xbfnetwork=signet\r\n\r\noffline\r\n")
    assert pairs(read_settings(conf)) == [("network", "signet"), ("offline", None)]


def test_value_keeps_later_equals_signs(tmp_path: Path) -> None:
    conf = write(tmp_path / "c.conf", "db=postgresql://u@h/d?sslmode=require\n")
    assert pairs(read_settings(conf)) == [("db", "postgresql://u@h/d?sslmode=require")]


def test_include_is_relative_to_the_including_file_and_read_in_place(tmp_path: Path) -> None:
    write(tmp_path / "conf.d" / "net.conf", "network=testnet\ninclude deeper/port.conf\n")
    write(tmp_path / "conf.d" / "deeper" / "port.conf", "http-port=4000\n")
    top = write(tmp_path / "invreq.conf", "log-level=debug\ninclude conf.d/net.conf\ndb=x\n")
    settings = read_settings(top)
    assert pairs(settings) == [
        ("log-level", "debug"),
        ("network", "testnet"),
        ("http-port", "4000"),
        ("db", "x"),
    ]
    assert settings[1].path == tmp_path / "conf.d" / "net.conf" and settings[1].lineno == 1
    assert settings[2].path == tmp_path / "conf.d" / "deeper" / "port.conf"


def test_include_with_absolute_path(tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere" / "o.conf", "offline\n")
    top = write(tmp_path / "sub" / "invreq.conf", f"include {other}\n")
    assert pairs(read_settings(top)) == [("offline", None)]


def test_the_same_file_may_be_included_twice_without_a_cycle(tmp_path: Path) -> None:
    write(tmp_path / "common.conf", "log-level=warn\n")
    write(tmp_path / "a.conf", "include common.conf\n")
    top = write(tmp_path / "top.conf", "include a.conf\ninclude common.conf\n")
    assert pairs(read_settings(top)) == [("log-level", "warn"), ("log-level", "warn")]


def test_include_cycle_is_an_error_at_the_line_that_closes_it(tmp_path: Path) -> None:
    write(tmp_path / "a.conf", "network=regtest\n# b comes back to a\ninclude b.conf\n")
    write(tmp_path / "b.conf", "\n\ninclude ./a.conf\n")
    with pytest.raises(ConfFileError) as e:
        read_settings(tmp_path / "a.conf")
    assert str(e.value).startswith(f"{tmp_path / 'b.conf'}:3: include cycle: ")
    assert e.value.path == tmp_path / "b.conf" and e.value.lineno == 3


def test_a_file_including_itself_is_a_cycle(tmp_path: Path) -> None:
    conf = write(tmp_path / "self.conf", "include self.conf\n")
    with pytest.raises(ConfFileError, match=r"self\.conf:1: include cycle"):
        read_settings(conf)


def test_missing_top_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_settings(tmp_path / "nope.conf")


def test_missing_include_names_the_include_line(tmp_path: Path) -> None:
    top = write(tmp_path / "invreq.conf", "network=regtest\ninclude missing.conf\n")
    with pytest.raises(ConfFileError) as e:
        read_settings(top)
    assert str(e.value).startswith(f"{top}:2: cannot read included file ")
    assert "missing.conf" in str(e.value)


def test_include_without_a_path_or_with_equals_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfFileError, match=r"a\.conf:1: include needs a file name"):
        read_settings(write(tmp_path / "a.conf", "include   \n"))
    with pytest.raises(ConfFileError, match=r"b\.conf:2: write 'include PATH'"):
        read_settings(write(tmp_path / "b.conf", "\ninclude=x.conf\n"))


def test_invalid_utf8_is_reported_at_its_line(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_bytes(b"network=regtest\n\ndb=\xff\n")
    with pytest.raises(ConfFileError, match=r"bad\.conf:3: not valid UTF-8"):
        read_settings(conf)


def test_missing_option_name(tmp_path: Path) -> None:
    with pytest.raises(ConfFileError, match=r"c\.conf:1: missing option name"):
        read_settings(write(tmp_path / "c.conf", "=3010\n"))


def test_unknown_option_names_file_and_line(tmp_path: Path) -> None:
    conf = write(tmp_path / "invreq.conf", "network=regtest\n\nhttp-prot=3010\n")
    with pytest.raises(ConfFileError) as e:
        apply_settings(read_settings(conf), KNOWN)
    assert str(e.value) == f"{conf}:3: unknown option 'http-prot'"


def test_unknown_option_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.conf", "# first\nfoo\n")
    top = write(tmp_path / "invreq.conf", "include inc.conf\n")
    with pytest.raises(ConfFileError) as e:
        apply_settings(read_settings(top), KNOWN)
    assert str(e.value) == f"{inc}:2: unknown option 'foo'"


@pytest.mark.parametrize("line", ["http-port", "http-port=", "http-port =  "])
def test_value_option_without_value(tmp_path: Path, line: str) -> None:
    conf = write(tmp_path / "invreq.conf", f"network=regtest\n{line}\n")
    with pytest.raises(ConfFileError) as e:
        apply_settings(read_settings(conf), KNOWN)
    assert str(e.value) == f"{conf}:2: option 'http-port' needs a value"


def test_flag_takes_no_value(tmp_path: Path) -> None:
    conf = write(tmp_path / "invreq.conf", "offline\n")
    assert apply_settings(read_settings(conf), KNOWN) == {"offline": None}
    bad = write(tmp_path / "bad.conf", "offline=true\n")
    with pytest.raises(ConfFileError, match=r"bad\.conf:1: option 'offline' is a flag"):
        apply_settings(read_settings(bad), KNOWN)


def test_later_settings_override_earlier_ones_across_includes(tmp_path: Path) -> None:
    write(tmp_path / "defaults.conf", "network=testnet\nhttp-port=1\nlog-level=warn\n")
    top = write(
        tmp_path / "invreq.conf",
        "http-port=2\ninclude defaults.conf\nnetwork=regtest\nhttp-port=3\n",
    )
    assert apply_settings(read_settings(top), KNOWN) == {
        "http-port": "3",
        "network": "regtest",
        "log-level": "warn",
    }


def test_unknown_kind_in_known_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        apply_settings([], {"x": "number"})


def test_empty_file_gives_no_settings(tmp_path: Path) -> None:
    conf = write(tmp_path / "empty.conf", "")
    assert read_settings(conf) == []
    assert apply_settings([], KNOWN) == {}


# --- bounds on reading (issue 25) -----------------------------------------------------


def test_an_include_of_a_device_or_a_fifo_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    for target in ("/dev/zero", str(fifo)):
        top = tmp_path / "invreq.conf"
        top.write_text(f"network=regtest\ninclude {target}\n")
        with pytest.raises(ConfFileError) as e:
            read_settings(top)
        assert e.value.lineno == 2 and "is not a regular file" in e.value.problem


def test_exponential_includes_stop_at_the_file_count(tmp_path: Path) -> None:
    # f0 includes f1 twice, f1 includes f2 twice ... (2**8 reads without a bound).
    for i in range(8):
        (tmp_path / f"f{i}.conf").write_text(f"include f{i + 1}.conf\ninclude f{i + 1}.conf\n")
    (tmp_path / "f8.conf").write_text("network=regtest\n")
    with pytest.raises(ConfFileError) as e:
        read_settings(tmp_path / "f0.conf")
    assert f"more than {conffile.MAX_FILES_READ} config files read" in str(e.value)


def test_includes_nest_at_most_the_depth_bound(tmp_path: Path) -> None:
    depth = conffile.MAX_INCLUDE_DEPTH
    for i in range(depth + 2):
        (tmp_path / f"d{i}.conf").write_text(f"include d{i + 1}.conf\n")
    (tmp_path / f"d{depth + 2}.conf").write_text("network=regtest\n")
    with pytest.raises(ConfFileError) as e:
        read_settings(tmp_path / "d0.conf")
    assert f"nested deeper than {depth}" in str(e.value)
    # One level less is read.
    (tmp_path / f"d{depth}.conf").write_text("network=regtest\n")
    assert [s.key for s in read_settings(tmp_path / "d0.conf")] == ["network"]


def test_config_files_larger_than_the_byte_bound_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.conf"
    big.write_text("# " + "x" * conffile.MAX_TOTAL_BYTES + "\n")
    top = tmp_path / "invreq.conf"
    top.write_text("include big.conf\n")
    with pytest.raises(ConfFileError) as e:
        read_settings(top)
    assert e.value.lineno == 1 and "larger than" in e.value.problem
