"""Where the cached control-plane build lives: $VANCOUVER_CACHE/kubernetes-<Debian version>/.

build.sh (run by `make setup`) fills it; the lab only reads it.
"""
import os
from pathlib import Path

PROGRAMS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def cache_dir() -> Path:
    return Path(os.environ.get("VANCOUVER_CACHE") or Path.home() / ".cache" / "vancouver")


def build_dir() -> Path | None:
    """The newest complete build (its .complete marker is written last), or None."""
    builds = sorted(cache_dir().glob("kubernetes-*/.complete"), key=lambda p: p.stat().st_mtime)
    return builds[-1].parent if builds else None


def bin_dir() -> Path | None:
    d = build_dir()
    return d / "bin" if d else None


def kubectl() -> str | None:
    """Debian's kubectl 1.20 from the build (it matches the server; the machine's own kubectl
    may be another version or the gcloud dispatcher)."""
    d = bin_dir()
    return str(d / "kubectl") if d and (d / "kubectl").exists() else None
