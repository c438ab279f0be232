"""What every lab component is made of: the run (its directory and secrets), the Component
record the supervisor reads (lab/components.py holds the table of them) and the helpers their
entries share (secrets, Debian programs, private files, `python -m` argv)."""
import os
import secrets
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lab.ldap import directory

REPO_ROOT = Path(__file__).resolve().parent.parent
DATERA_SW_VERSION = "3.3.5.0"
DATERA_ADMIN = "admin"
DATERA_SESSION_TTL_S = 900


class LabError(Exception):
    """A one-line, user-facing reason the lab cannot do what was asked."""


@dataclass
class LabRun:
    """One lab run: its directory and the secrets generated for it (empty for `status`)."""
    run_dir: Path
    secrets: dict[str, str] = field(default_factory=dict)
    # The names of the components this run starts, so one can configure itself for another
    # (Datera pushes its LUNs to the vCenter's fabric only when the lab has one).
    components: tuple[str, ...] = ()

    def dir(self, component: str) -> Path:
        return self.run_dir / component

    @property
    def target_dir(self) -> Path:
        return self.run_dir / "target"


@dataclass(frozen=True)
class Component:
    name: str
    address: str                                  # shown by `status`
    binds: tuple[tuple[str, int], ...]            # every (address, port) it listens on
    depends_on: tuple[str, ...]                   # healthy before this one starts (*)
    binaries: tuple[str, ...]                     # system programs (Debian packages) it needs
    prepare: Callable[[LabRun], None]             # writes its config under run.dir(name)
    argv: Callable[[LabRun], list[str]]
    healthy: Callable[[LabRun], bool]             # quick, never raises
    contribute: Callable[[LabRun, dict], None]    # adds files and a section to the target dir
    # (*) False: the component uses its dependencies only while serving requests, never while it
    # starts, so the supervisor starts it as soon as they are started instead of waiting for
    # them to be healthy (its Python start overlaps theirs). The lab is still reported ready
    # only when every component is healthy, and stops in reverse start order.
    needs_deps_to_start: bool = True
    # Seconds it may take to become healthy (None: the supervisor's default). Kubernetes'
    # apiserver starts in ~3 s on an idle machine but takes minutes on a loaded one.
    health_timeout_s: float | None = None
    # What a user points a client at, as (what, URL or host:port) rows: `lab status` shows
    # them (and `--json` gives them to scripts). `address` stays the supervisor's one line.
    endpoints: tuple[tuple[str, str], ...] = ()


def new_password() -> str:
    # Starts with a letter and uses only [A-Za-z0-9_-]: Datera's login schema rejects others.
    return "p" + secrets.token_urlsafe(18)


def new_secrets() -> dict[str, str]:
    s = {uid: new_password() for uid in directory.all_uids()}
    s["datera-admin"] = new_password()
    return s


def find_binary(name: str) -> str | None:
    """Looks on PATH and in the sbin next to each bin on it: Debian puts slapd in /usr/sbin,
    which an ordinary user's PATH lacks."""
    dirs = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d:
            dirs.append(d)
            if Path(d).name == "bin":
                dirs.append(str(Path(d).parent / "sbin"))
    return shutil.which(name, path=os.pathsep.join(dirs))


def require_binary(name: str) -> str:
    """find_binary, or LabError naming the missing program."""
    path = find_binary(name)
    if path is None:
        raise LabError(f"{name} is not installed: run make setup")
    return path


def write_private(path: Path, text: str) -> None:
    """Writes a file only its owner can read (configs and anything holding a secret)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def answers_200(url: str, context=None) -> bool:
    """GET `url` answers 200 within 1 s (a component's health check; never raises)."""
    try:
        with urllib.request.urlopen(url, timeout=1, context=context) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def python_module(module: str, config: Path) -> list[str]:
    return [sys.executable, "-m", module, "--config", str(config)]
