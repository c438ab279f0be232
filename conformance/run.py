"""The conformance job: unmodified Tempest against the lab's Pike and Mitaka clouds.

    python -m conformance.run --tempest-venv ~/.cache/vancouver/tempest-47.0.0
        [--target DIR]   an already running lab (or real target) instead of a lab of our own
        [--profiles pike:volume,mitaka:volume,pike:identity,pike:image,pike:compute]
        [--min-ratio 0.95]
        [--workdir reports/conformance]

Without --target it starts a lab of its own (openstack-pike and openstack-mitaka with what
they need) on a free loopback net (VANCOUVER_LAB_NET if set) and stops it afterwards.
Per profile it writes a Tempest workspace (tempest init + a tempest.conf from the target's
clouds.yaml: conformance/tempest_conf.py), runs `tempest run --regex <suite>
--exclude-list conformance/exclude/<suite>-<release>.txt --concurrency 2`, and prints
passed / failed / skipped / excluded and the pass ratio passed / (passed + failed) of the
non-excluded methods that ran. Exit status 1 when a profile is under --min-ratio (or ran
nothing), 2 on a usage or setup error. A class whose setUpClass fails counts each of its
selected methods as failed (Tempest reports the class once).

Cloud preparation (what a deployer of such an old cloud does for today's Tempest): the
`reader` role Tempest 47's volume tests ask for (Keystone creates it by default from Rocky
on) is created through Keystone's API if missing.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .tempest_conf import ConfError, write_conf

REPO = Path(__file__).resolve().parent.parent
EXCLUDE_DIR = Path(__file__).resolve().parent / "exclude"
# identity: the v3 API tests, admin (tempest.api.identity.admin.v3) and not
# compute: the API tests that need no server booted from an image (the lab's hosts have no
# local disks): flavors, keypairs, limits, quotas, availability zones, versions, extensions,
# and servers booted from a volume (ServersTestBootFromVolume)
SUITES = {"volume": r"tempest\.api\.volume\.",
          "identity": r"tempest\.api\.identity\.(admin\.)?v3\.",
          "image": r"tempest\.api\.image\.v2\.",
          "network": r"tempest\.api\.network\.",
          "compute": r"tempest\.api\.compute\.(admin\.)?(flavors|keypairs|limits|test_quotas|"
                     r"test_availability_zone|test_versions|test_extensions|test_keypairs_v210|"
                     r"servers\.test_availability_zone|"
                     r"servers\.test_create_server\.ServersTestBootFromVolume)"}
DEFAULT_PROFILES = "pike:volume,mitaka:volume,pike:identity,pike:image,pike:compute"
RESULTS_SCRIPT = Path(__file__).resolve().parent / "subunit_results.py"


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    excluded: int = 0
    failures: list = field(default_factory=list)

    @property
    def ratio(self) -> float:
        ran = self.passed + self.failed
        return self.passed / ran if ran else 0.0


def _strip(test_id: str) -> str:
    """'tempest.api...test_x[id-...,smoke]' -> 'tempest.api...test_x'."""
    return test_id.split("[", 1)[0]


def exclusions(path: Path) -> list[re.Pattern]:
    """The exclude file's regexes (Tempest's --exclude-list format: `regex  # reason`)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(re.compile(line))
    return out


def count(listed: list[str], results: dict[str, str], excludes: list[re.Pattern]) -> Counts:
    """listed: every test id the suite's regex selects; results: id -> success|fail|skip
    from the subunit stream (class fixtures as 'setUpClass (module.Class)')."""
    c = Counts()
    by_method = {_strip(k): v for k, v in results.items()}
    class_status = {}
    for key, status in results.items():
        m = re.match(r"(setUpClass|tearDownClass) \((.+)\)", key)
        if m and m.group(1) == "setUpClass" and status in ("fail", "skip"):
            class_status[m.group(2)] = status
    for test_id in listed:
        method = _strip(test_id)
        if any(x.search(test_id) for x in excludes):
            c.excluded += 1
            continue
        status = by_method.get(method) or class_status.get(method.rsplit(".", 1)[0])
        if status == "success":
            c.passed += 1
        elif status == "skip":
            c.skipped += 1
        else:   # failed, its class's setup failed, or it never reported
            c.failed += 1
            c.failures.append(method)
    return c


def free_net() -> str:
    """A 127.N net with nothing listening on its OpenStack or Datera addresses."""
    for n in range(150, 200):
        busy = False
        for host, port in ((f"127.{n}.1.1", 5000), (f"127.{n}.3.1", 5000),
                           (f"127.{n}.7.10", 7717)):
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex((host, port)) == 0:
                    busy = True
                    break
        if not busy and not Path(f"/tmp/vancouver-lab-127.{n}").exists():
            return f"127.{n}"
    raise SystemExit("conformance: no free lab net in 127.150-127.199")


class OwnLab:
    """A lab of the job's own: `python -m lab up --only ...` on its net, `down` after."""

    def __init__(self, net: str, clouds: set[str]):
        self.net = net
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"conformance-lab-{net}-"))
        self.only = ",".join(f"openstack-{c}" for c in sorted(clouds))

    def _lab(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        env = dict(os.environ, VANCOUVER_LAB_NET=self.net)
        return subprocess.run([sys.executable, "-m", "lab", *args, "--run-dir", str(self.run_dir)],
                              cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout)

    def up(self) -> Path:
        r = self._lab("up", "--only", self.only)
        if r.returncode != 0:
            raise SystemExit(f"conformance: lab up on {self.net} failed: "
                             f"{(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        return Path(r.stdout.strip().splitlines()[-1]).parent

    def down(self) -> None:
        self._lab("down", timeout=120)
        shutil.rmtree(self.run_dir, ignore_errors=True)


IMAGE_NAME = "tempest-conformance-raw"


def prepare_cloud(target_dir: Path, cloud: str) -> dict:
    """Creates what Tempest needs on the cloud and returns the tempest.conf values it names:
    Keystone's `reader` role if missing (Tempest 47's project_reader credentials), a public
    1 MiB raw image for the volume-from-image tests ([compute] image_ref) and the smallest
    flavor ([compute] flavor_ref)."""
    import yaml
    entry = yaml.safe_load((target_dir / "target.yaml").read_text())["openstack"]["clouds"][cloud]
    conn = _connect(target_dir, entry["admin_cloud"])
    try:
        if conn.identity.find_role("reader") is None:
            conn.identity.create_role(name="reader")
        image = conn.image.find_image(IMAGE_NAME)
        if image is None:
            image = conn.image.create_image(name=IMAGE_NAME, disk_format="raw",
                                            container_format="bare", visibility="public",
                                            data=b"\0" * (1 << 20))
        flavors = sorted(conn.compute.flavors(), key=lambda f: (f.ram, f.disk, f.id))
        extra = {"compute": {"image_ref": image.id, "image_ref_alt": image.id}}
        if flavors:
            extra["compute"].update(flavor_ref=flavors[0].id, flavor_ref_alt=flavors[0].id)
        return extra
    finally:
        conn.close()


def _connect(target_dir: Path, cloud: str):
    import openstack.config
    import openstack.connection
    config = openstack.config.OpenStackConfig(config_files=[str(target_dir / "clouds.yaml")])
    return openstack.connection.Connection(config=config.get_one(cloud))


def tempest(venv: Path, workspace: Path, *args: str, log=None, timeout: float = 1800
            ) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env["OS_LOG_CAPTURE"] = "0"
    env["TEMPEST_CONFIG_DIR"] = str(workspace / "etc")
    env["TEMPEST_CONFIG"] = "tempest.conf"
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=workspace, env=env,
                          stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


def make_workspace(venv: Path, path: Path) -> Path:
    """What `tempest init` makes, without its global workspace registry (a name registered
    by another checkout would refuse ours): etc/, logs/, tempest_lock/ and .stestr.conf."""
    site = next((venv / "lib").glob("python3*/site-packages"))
    for sub in ("etc", "logs", "tempest_lock"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    (path / ".stestr.conf").write_text(
        "[DEFAULT]\n"
        f"test_path={site / 'tempest' / 'test_discover'}\n"
        f"top_dir={site / 'tempest'}\n"
        "group_regex=([^\\.]*\\.)*\n")
    return path


def run_profile(venv: Path, target_dir: Path, cloud: str, suite: str, workdir: Path,
                concurrency: int) -> tuple[Counts, float]:
    workspace = make_workspace(venv, workdir / f"{cloud}-{suite}")
    if not (workspace / ".stestr").exists():
        tempest(venv, workspace, "stestr", "init")
    extra = prepare_cloud(target_dir, cloud)
    write_conf(target_dir, cloud, workspace / "etc" / "tempest.conf",
               log_dir=workspace / "logs", extra=extra)
    import yaml
    release = yaml.safe_load((target_dir / "target.yaml").read_text()
                             )["openstack"]["clouds"][cloud]["release"]
    exclude = EXCLUDE_DIR / f"{suite}-{release}.txt"
    regex = SUITES[suite]
    listing = tempest(venv, workspace, "stestr", "list", regex)
    listed = [line for line in listing.stdout.splitlines() if line.startswith("tempest.")]
    start = time.monotonic()
    args = ["tempest", "run", "--regex", regex, "--concurrency", str(concurrency)]
    if exclude.exists():
        args += ["--exclude-list", str(exclude)]
    with open(workspace / "run.log", "w") as log:
        tempest(venv, workspace, *args, log=log)
    wall = time.monotonic() - start
    stream = tempest(venv, workspace, "python", str(RESULTS_SCRIPT))
    try:
        results = json.loads(stream.stdout)
    except ValueError:
        results = {}
    return count(listed, results, exclusions(exclude)), wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m conformance.run", description=__doc__.split("\n")[0])
    ap.add_argument("--tempest-venv", type=Path, required=True)
    ap.add_argument("--target", type=Path, help="target directory of a running lab or real target")
    ap.add_argument("--profiles", default=DEFAULT_PROFILES)
    ap.add_argument("--min-ratio", type=float, default=0.95)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=REPO / "reports" / "conformance")
    a = ap.parse_args(argv)
    if not (a.tempest_venv / "bin" / "tempest").exists():
        print(f"conformance: no Tempest in {a.tempest_venv} (make tempest-venv)",
              file=sys.stderr)
        return 2
    profiles = [tuple(p.split(":")) for p in a.profiles.split(",") if p]
    for cloud, suite in profiles:
        if suite not in SUITES:
            print(f"conformance: unknown suite {suite!r} (one of {', '.join(SUITES)})",
                  file=sys.stderr)
            return 2
    # identity on Pike runs only when its exclusion list exists (keystone8's part)
    profiles = [(c, s) for c, s in profiles
                if s != "identity" or (EXCLUDE_DIR / f"identity-{c}.txt").exists()]
    lab = None
    target = a.target
    if target is None:
        lab = OwnLab(os.environ.get("VANCOUVER_LAB_NET") or free_net(), {c for c, _ in profiles})
        print(f"conformance: starting a lab on {lab.net} ({lab.only})", flush=True)
        target = lab.up()
    rc = 0
    try:
        for cloud, suite in profiles:
            try:
                c, wall = run_profile(a.tempest_venv, target, cloud, suite,
                                      a.workdir.resolve(), a.concurrency)
            except ConfError as e:
                print(f"conformance: {e}", file=sys.stderr)
                return 2
            ok = c.ratio >= a.min_ratio and c.passed > 0
            rc = rc or (0 if ok else 1)
            print(f"{cloud:7} {suite:8} passed {c.passed:4}  failed {c.failed:3}  "
                  f"skipped {c.skipped:3}  excluded {c.excluded:3}  "
                  f"pass ratio {c.ratio:6.1%}  {wall:5.0f}s  {'OK' if ok else 'BELOW ' + format(a.min_ratio, '.0%')}",
                  flush=True)
            for name in c.failures:
                print(f"    failed: {name}")
    finally:
        if lab is not None:
            lab.down()
    return rc


if __name__ == "__main__":
    sys.exit(main())
