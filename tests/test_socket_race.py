"""The unix socket is never open to another user, not even for a moment at start-up.

The socket's file mode (owner only) is its only protection: whoever connects is trusted
with everything, rune minting included. Issue 25 found it listening before its chmod: with
``--rpc-file`` in a directory others can enter and a permissive umask, another local user
connected in 4 of 6 start-ups. Here a real second user (uid 65534, a forked child that
drops root with setuid) tries to connect in a tight loop while the service starts again
and again, single-process and with ``--workers``; it must never get in.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _service_fixtures import Server

OTHER_UID = 65534  # "nobody"
#: Processes of that user trying at once (the window, where there is one, is short).
ATTACKERS = 2


def other_user_connecting(path: Path) -> tuple[int, int, int]:
    """Fork a child that becomes OTHER_UID and connects to ``path`` in a loop until told to
    stop (its pipe closed); returns its pid, the pipe to close, the pipe to read its count
    from."""
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the other user
        code = 0
        try:
            os.close(go_w)
            os.close(out_r)
            # Only its own pipes: an earlier attacker's "stop" pipe held open here would
            # keep that one from ever seeing its end.
            for fd in (int(n) for n in os.listdir("/proc/self/fd")):
                if fd > 2 and fd not in (go_r, out_w):
                    with contextlib.suppress(OSError):
                        os.close(fd)
            os.setgroups([])
            os.setgid(OTHER_UID)
            os.setuid(OTHER_UID)
            os.set_blocking(go_r, False)
            connected = exposed = attempts = 0
            while True:
                try:
                    if os.read(go_r, 1) == b"":
                        break
                except BlockingIOError:
                    pass
                with socket.socket(socket.AF_UNIX) as s:
                    attempts += 1
                    try:
                        s.connect(str(path))
                        connected += 1
                    except OSError:
                        pass
                # Not even for a moment: the file is never seen open to others either.
                with contextlib.suppress(OSError):
                    if os.stat(path).st_mode & 0o077:
                        exposed += 1
            os.write(out_w, f"{connected} {exposed} {attempts}".encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(out_w)
    return pid, go_w, out_r


def stop_other(pid: int, go_w: int, out_r: int) -> tuple[int, int, int]:
    """Stop one attacker; (connections made, times the file was seen open, attempts)."""
    os.close(go_w)
    data = os.read(out_r, 100)
    os.close(out_r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    connected, exposed, attempts = (int(x) for x in data.split())
    return connected, exposed, attempts


class ServerAt(Server):
    """A server whose socket is at ``--rpc-file`` (an absolute path)."""

    def __init__(self, data_dir: Path, rpc_file: Path, args: list[str]) -> None:
        super().__init__(data_dir, extra_args=["--rpc-file", str(rpc_file), *args])
        self.rpc_file = rpc_file

    @property
    def socket_path(self) -> Path:
        return self.rpc_file


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may enter (mode 0755), outside pytest's root-only tmp tree."""
    d = Path(tempfile.mkdtemp(prefix="invreq-race-", dir="/tmp"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        for p in sorted(d.rglob("*"), reverse=True):
            with contextlib.suppress(OSError):
                p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()
        with contextlib.suppress(OSError):
            d.rmdir()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
@pytest.mark.timeout(400)
@pytest.mark.parametrize("workers", [0, 2])
def test_another_user_never_connects_during_many_start_ups(
    open_dir: Path, tmp_path: Path, workers: int
) -> None:
    rpc_file = open_dir / "invreq-rpc"
    starts = 5 if workers else 8
    server = ServerAt(tmp_path / "data", rpc_file, ["--workers", str(workers)] if workers else [])
    server.preexec_fn = lambda: os.umask(0)  # the permissive umask of the finding
    attackers = [other_user_connecting(rpc_file) for _ in range(ATTACKERS)]
    try:
        for _ in range(starts):
            server.start()
            assert server.rpc.call("getinfo")["network"] == "regtest"
            assert server.stop() == 0, server.output()[-2000:]
    finally:
        server.kill()
        results = [stop_other(*a) for a in attackers]
    connected = sum(r[0] for r in results)
    exposed = sum(r[1] for r in results)
    assert all(r[2] > starts for r in results)  # they really were trying throughout
    assert connected == 0, f"another user connected {connected} times in {starts} start-ups"
    assert exposed == 0, f"the socket was seen open to others {exposed} times"
    # And the socket it could not reach was the service's: its owner is served.
    assert not rpc_file.exists()


# --- deterministic: how the file appears (the kernel's own record, inotify) -------------

IN_ATTRIB = 0x00000004
IN_CREATE = 0x00000100
IN_MOVED_TO = 0x00000080
IN_NONBLOCK = 0o4000


def inotify_names(fd: int) -> list[tuple[int, str]]:
    """The (mask, name) of every event waiting on inotify ``fd``."""
    out = []
    try:
        data = os.read(fd, 1 << 16)
    except BlockingIOError:
        return out
    pos = 0
    while pos < len(data):
        _wd, mask, _cookie, size = struct.unpack_from("iIII", data, pos)
        name = data[pos + 16 : pos + 16 + size].rstrip(b"\0").decode()
        out.append((mask, name))
        pos += 16 + size
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_the_socket_appears_by_rename_already_owner_only(
    open_dir: Path, tmp_path: Path, workers: int
) -> None:
    """Whatever the scheduling, the path never exists with another mode: it is never
    created in place (IN_CREATE) nor has its mode changed there (IN_ATTRIB); it appears by
    rename (IN_MOVED_TO), 0600 from its first moment. Binding in place and then chmod (the
    finding) shows IN_CREATE then IN_ATTRIB here, every time."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK)
    assert fd >= 0
    try:
        assert (
            libc.inotify_add_watch(fd, str(open_dir).encode(), IN_CREATE | IN_ATTRIB | IN_MOVED_TO)
            >= 0
        )
        rpc_file = open_dir / "invreq-rpc"
        server = ServerAt(
            tmp_path / "data", rpc_file, ["--workers", str(workers)] if workers else []
        )
        server.preexec_fn = lambda: os.umask(0)
        try:
            server.start()
            assert (rpc_file.stat().st_mode & 0o777) == 0o600
            assert server.stop() == 0, server.output()[-2000:]
        finally:
            server.kill()
        events = [(mask, name) for mask, name in inotify_names(fd) if name == rpc_file.name]
        assert events and all(mask & IN_MOVED_TO for mask, _ in events), events
    finally:
        os.close(fd)
