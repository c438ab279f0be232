"""Run Debian's fio against an NBD URI and read its JSON, for the project's own tests.

Follows reference pytest-fio §2.2: JSON goes to --output=FILE (the nbd engine prints a line on
stdout first), the text is decoded from its first "{", verify state files are never written
(--verify_state_save=0) and every run has a cwd of its own.
"""
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Direction:
    iops: float
    bw_kib: float
    total_ios: int
    io_bytes: int
    lat_mean_us: float

    @staticmethod
    def parse(d: dict) -> "Direction":
        return Direction(iops=float(d["iops"]), bw_kib=float(d["bw"]), total_ios=int(d["total_ios"]),
                         io_bytes=int(d["io_bytes"]), lat_mean_us=float(d["lat_ns"]["mean"]) / 1e3)


@dataclass(frozen=True)
class FioResult:
    returncode: int
    error: int                 # errno of the first job that failed (84 = EILSEQ: verify failed)
    read: Direction
    write: Direction
    started: float             # wall clock (time.time()) just before fio started
    ended: float               # and just after it exited
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.error == 0


def parse_output(text: str) -> dict:
    """fio's JSON document, wherever it starts in the file (pitfalls A and B)."""
    start = text.find("{")
    if start < 0:
        raise ValueError("fio wrote no JSON")
    return json.JSONDecoder().raw_decode(text[start:])[0]


def start(uri: str, workdir: Path, *, name: str = "job", rw: str = "randwrite", bs: str = "4k",
          iodepth: int = 16, size: str | None = None, runtime: float | None = None,
          options: dict | None = None) -> subprocess.Popen:
    """One fio job over the nbd engine, in the background; `options` adds --key=value pairs.
    Finish it with `wait`."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{name}.json"
    out.unlink(missing_ok=True)
    argv = ["fio", f"--name={name}", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}", f"--bs={bs}",
            f"--iodepth={iodepth}", "--lat_percentiles=1", "--verify_state_save=0",
            "--output-format=json", f"--output={out}"]
    if size:
        argv.append(f"--size={size}")
    if runtime:
        argv += [f"--runtime={runtime}", "--time_based"]
    argv += [f"--{k}={v}" for k, v in (options or {}).items()]
    proc = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    proc.fio_output, proc.fio_started = out, time.time()
    return proc


def wait(proc: subprocess.Popen, timeout: float = 120) -> FioResult:
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"fio still running after {timeout} s") from None
    ended = time.time()
    try:
        doc = parse_output(proc.fio_output.read_text())
    except (OSError, ValueError) as e:
        raise AssertionError(f"fio exited {proc.returncode} without a report ({e}): "
                             f"{stderr.strip()[-500:]}") from None
    jobs = doc["jobs"]
    error = next((j["error"] for j in jobs if j["error"]), 0)
    return FioResult(returncode=proc.returncode, error=error,
                     read=Direction.parse(jobs[0]["read"]), write=Direction.parse(jobs[0]["write"]),
                     started=proc.fio_started, ended=ended, stderr=stderr)


def run(uri: str, workdir: Path, timeout: float = 120, **job) -> FioResult:
    """`start` then `wait`."""
    return wait(start(uri, workdir, **job), timeout)


def steady_mean(points: list[dict], started: float, ended: float, skip: int = 1) -> float:
    """Mean of the per-second metric points that lie inside a run, leaving out its first
    `skip` whole seconds (connection set-up, burst credit) and the partial last second."""
    inner = [p["value"] for p in points if started + skip <= p["time"] and p["time"] + 1 <= ended]
    if not inner:
        raise AssertionError(f"no metric points inside the run {started:.0f}..{ended:.0f}: {points}")
    return sum(inner) / len(inner)
