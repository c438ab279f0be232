"""A user of the shared ESXi host's registration (fixtures/shared_host.py) in a process of
its own, for tests/test_shared_host*.py: real processes and flock(2), no lab."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.support.labcli import REPO


class UserProcess:
    """Runs `script` (a `python -c` program: joins run argv[1] in directory argv[2] with the
    notes argv[3:], prints "joined", then on the stdin line "leave" prints what its leave
    said); returns once it joined."""

    def __init__(self, script: str, run: str, directory: Path, *notes: str):
        self.proc = subprocess.Popen([sys.executable, "-c", script, run, str(directory),
                                      *notes], cwd=REPO, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "joined"

    def leave(self) -> str:
        self.proc.stdin.write("leave\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdin.close()
        self.proc.stdout.close()
