"""Where the vSphere build lives: $VANCOUVER_CACHE/vsphere-<hash>/bin/{vancouver-vcsim,govc}.

The hash covers this directory's Go sources, go.mod and build.sh, so editing any of them makes
`make setup` build afresh while an unchanged checkout (a second clone too) reuses the cache.
build.sh calls source_hash(); the lab and the tests call bin_dir().
"""
import hashlib
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def source_files(src: Path = HERE) -> list[Path]:
    return sorted([*src.glob("*.go"), src / "go.mod", src / "build.sh"], key=lambda p: p.name)


def source_hash(src: Path | str = HERE) -> str:
    h = hashlib.sha256()
    for p in source_files(Path(src)):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("VANCOUVER_CACHE") or Path.home() / ".cache" / "vancouver")


def build_dir() -> Path:
    return cache_dir() / f"vsphere-{source_hash()}"


def bin_dir() -> Path | None:
    """The complete build for these sources, or None (run make setup)."""
    d = build_dir()
    return d / "bin" if (d / ".complete").exists() else None
