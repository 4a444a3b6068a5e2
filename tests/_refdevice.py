"""A reference signing device process (`python -m invreq.refdevice`) for the tests.

It listens on hwilib's Jade simulator address, 127.0.0.1:30121, so only one can run at a
time; each is stopped (and its exit code checked) before the next starts.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from invreq.refdevice.listener import DEFAULT_PORT

START_TIMEOUT = 30.0


@dataclass
class RefDevice:
    """One `python -m invreq.refdevice` process on the simulator port."""

    seed_file: Path
    log_path: Path
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    fingerprint: str = ""
    port: int = 0

    def start(self, stdin: int = subprocess.DEVNULL) -> RefDevice:
        cmd = [sys.executable, "-m", "invreq.refdevice", "--seed-file", str(self.seed_file)]
        with open(self.log_path, "ab") as log:
            # stdout is a pipe for the ready line only (nothing else is printed there);
            # stderr, the device's console, goes to a file nobody has to drain.
            self.proc = subprocess.Popen(
                cmd + self.args, stdin=stdin, stdout=subprocess.PIPE, stderr=log
            )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("refdevice listening on "):
            self.stop()
            raise RuntimeError(f"device did not start: {line!r}\n{self.console()}")
        address, fingerprint = line.removeprefix("refdevice listening on ").split()
        self.port = int(address.removeprefix("127.0.0.1:"))
        assert "--port" in self.args or self.port == DEFAULT_PORT
        self.fingerprint = fingerprint.removeprefix("fingerprint=")
        return self

    def console(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
        return code


__all__ = ["START_TIMEOUT", "RefDevice"]
