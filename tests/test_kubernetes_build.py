"""lab/kubernetes/build.sh's cache rule: a complete build for the version apt would install is
reused without network or compiler (a second clone, CI and later runs skip the ~5 min build),
and the lab finds the newest complete build (lab/kubernetes/binaries.py)."""
import os
import subprocess
import time
from pathlib import Path

import pytest

from lab.kubernetes import binaries

BUILD = Path(__file__).resolve().parent.parent / "lab" / "kubernetes" / "build.sh"


def _apt_version() -> str:
    out = subprocess.run(["apt-cache", "show", "--no-all-versions", "kubernetes-client"],
                         capture_output=True, text=True).stdout
    return next((line.split(": ", 1)[1] for line in out.splitlines()
                 if line.startswith("Version: ")), "")


def test_a_complete_cached_build_is_reused(tmp_path):
    version = _apt_version()
    if not version:
        pytest.skip("apt has no kubernetes-client entry here (apt-get update never ran)")
    done = tmp_path / f"kubernetes-{version}"
    done.mkdir()
    (done / ".complete").write_text("built in 1 s\n")
    out = subprocess.run(["bash", str(BUILD), str(tmp_path)], capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"kubernetes {version}: cached in {done}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [done.name]   # no build dir made


def test_the_lab_uses_the_newest_complete_build(tmp_path, monkeypatch):
    monkeypatch.setenv("VANCOUVER_CACHE", str(tmp_path))
    assert binaries.build_dir() is None
    old, new, partial = (tmp_path / n for n in ("kubernetes-1", "kubernetes-2", "kubernetes-3"))
    for d in (old, new, partial):
        (d / "bin").mkdir(parents=True)
    (old / ".complete").write_text("")
    (new / ".complete").write_text("")
    os.utime(old / ".complete", (time.time() - 60, time.time() - 60))
    assert binaries.build_dir() == new            # kubernetes-3 has no .complete: unfinished
    assert binaries.kubectl() is None             # no kubectl in it
    (new / "bin" / "kubectl").write_text("")
    assert binaries.kubectl() == str(new / "bin" / "kubectl")
