"""Fuzzing at length: how many hostile requests each lab API and the data plane were sent, and how
many got the right error (tests/support/fuzz.py and nbd_fuzz.py say what is right), with the
latency a neighbouring NBD client saw meanwhile. A measurement, not a test: it prints figures;
its exit status is 1 when any answer was wrong (the first wrong one is printed).

    .venv/bin/python bench/bench_fuzz.py [--examples 2000] [--release pike] [--seed N]

Everything runs in this process on 127.0.0.1 and spare lab addresses (VANCOUVER_LAB_NET), as the
fuzz tests do; no lab is started or touched.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import given, settings, seed as hseed
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab import topology  # noqa: E402
from lab.datera.dataplane import DataPlane  # noqa: E402
from lab.datera.metrics import Metrics  # noqa: E402
from tests.support import fuzz  # noqa: E402
from tests.support import nbd_fuzz as nf  # noqa: E402
from tests.support.fuzz_apis import LoopThread, datera_api, openstack_apis  # noqa: E402
from tests.support.nbd import AclTestDouble, InProc  # noqa: E402
from _table import print_table  # noqa: E402


def run(name: str, strategy, body, examples: int, seed: int) -> tuple[int, int, str]:
    """(tried, right, first problem) of `examples` drawn from `strategy` through `body`."""
    tally = {"tried": 0, "right": 0, "problem": ""}

    @hseed(seed)
    @settings(settings.get_profile("long"), max_examples=examples, phases=["generate"])
    @given(x=strategy)
    def prop(x):
        tally["tried"] += 1
        try:
            body(x)
        except Exception as e:   # counted and shown, then the run goes on
            tally["problem"] = tally["problem"] or f"{type(e).__name__}: {str(e)[:300]}"
            return
        tally["right"] += 1

    t0 = time.monotonic()
    prop()
    dt = time.monotonic() - t0
    print(f"{name:<22} {tally['tried']:>6} tried {tally['right']:>6} right "
          f"{tally['tried'] / dt:>7.1f}/s", flush=True)
    return tally["tried"], tally["right"], tally["problem"]


def http_apis(lt, tmp: Path, release: str, examples: int, seed: int) -> list:
    results = []
    datera, served = datera_api(lt, tmp / "datera")
    results.append(("datera", *run("datera", fuzz.requests(datera),
                                   lambda r: fuzz.exercise(datera, r), examples, seed)))
    served.close()
    apis, served = openstack_apis(lt, tmp / release, release)
    for name, api in apis.items():
        results.append((f"{name} ({release})", *run(
            f"{name} ({release})", fuzz.requests(api),
            lambda r, api=api: fuzz.exercise(api, r), examples, seed)))
    served.close()
    return results


def data_plane(lt, tmp: Path, examples: int, seed: int) -> tuple[list, dict]:
    vips = [f"{topology.NET}.70.61", f"{topology.NET}.70.62"]
    dp = DataPlane(data_dir=tmp / "data", metrics=Metrics(), vips=vips, nbd_port=0,
                   login_port=0)
    auth = AclTestDouble()
    dp.bind(auth)
    lt.run(dp.start())
    inproc = InProc(dp, auth, Metrics(), lt, vips, tmp)
    iqn, _vols = inproc.add_target(size=nf.SIZE)
    chap, _ = inproc.add_target(chap=("fuzz-user", "fuzz-secret-123"))
    export = inproc.login(iqn)[0].export
    neighbour = nf.Neighbour(vips[1], dp.nbd_port, export)
    results = []
    try:
        results.append(("nbd", *run("nbd", nf.nbd_sessions(export), lambda s: nf.nbd_session(
            dp.nbd_port, vips[0], export, s), examples, seed)))
        logins = st.tuples(st.sampled_from([iqn, chap]), st.booleans()).flatmap(
            lambda t: st.tuples(nf.login_lines(t[0], "iqn.test:host1"), st.just(t[1])))
        results.append(("login", *run("login", logins, lambda x: nf.login_session(
            dp.login_port, vips[0], x[0], x[1]), examples, seed)))
    finally:
        figures = neighbour.stop()
        lt.run(dp.stop())
    if neighbour.error is not None:
        figures["error"] = repr(neighbour.error)
    return results, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="per API (default 2000)")
    parser.add_argument("--release", default="pike", choices=("mitaka", "newton", "pike"))
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    lt = LoopThread()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
            results = http_apis(lt, Path(tmp), args.release, args.examples, args.seed)
            more, figures = data_plane(lt, Path(tmp), args.examples, args.seed)
            results += more
    finally:
        lt.close()
    total = sum(r[1] for r in results)
    ok = sum(r[2] for r in results)
    print()
    print_table(["target", "tried", "right", "first wrong answer"],
                [[name, tried, right, problem or "-"] for name, tried, right, problem in results]
                + [["all", total, ok, ""]])
    print(f"neighbour NBD reads during the data-plane fuzz: {figures['reads']} reads, "
          f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, "
          f"max {figures['max_ms']:.1f} ms" + (f", FAILED: {figures['error']}"
                                                if "error" in figures else ""))
    return 0 if total == ok and "error" not in figures else 1


if __name__ == "__main__":
    sys.exit(main())
