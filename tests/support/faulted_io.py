"""fio through the driver's lab transport (fixtures/transport.py LabTransport: login + NBD
relay with multipath) while a fault happens, for tests/test_lab_restart.py (a Datera
restart) and tests/test_chaos.py (VIP1 down).

    with FioThroughFault(lab_dir, api, tenant) as job:
        job.wait_for_writes()      # the job is under way (bytes reached the volume's file)
        <the fault>
        result = job.finish()      # fio's JSON; fio exited 0 and verified every block
"""
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from fixtures.transport import LabTransport
from fixtures.waiters import wait_until
from tests.support.datera_lab import drop_tenant, make_lab_volume

HOST = "iqn.1993-08.org.debian:01:vdp-faulted-io"
SIZE_MIB = 32
RATE_IOPS = 1500      # 8192 writes + 8192 verify reads: about 11 s, long enough for a fault


class FioThroughFault:
    def __init__(self, datera_dir: Path, api, *, portal_index: int = 0):
        self.datera_dir, self.api, self.portal_index = Path(datera_dir), api, portal_index
        self.tenant = f"/root/vdp-{uuid.uuid4().hex[:8]}"
        self.transport = LabTransport()
        self.proc = None

    def __enter__(self):
        self.api.tenants.create(name=self.tenant.rsplit("/", 1)[1])
        self.vol = make_lab_volume(self.api, self.tenant, initiators=[HOST])
        portals = list(self.vol.ips)
        self.device = self.transport.connect(
            portal=portals[self.portal_index], initiator=HOST, target=self.vol.iqn,
            label="faulted", alt_portals=tuple(portals))
        self.proc = subprocess.Popen(
            ["fio", "--name=faulted", *self.device.fio_args(), "--rw=randwrite", "--bs=4k",
             f"--size={SIZE_MIB}m", "--iodepth=8", "--verify=crc32c", "--do_verify=1",
             "--verify_fatal=1", "--verify_state_save=0", f"--rate_iops={RATE_IOPS}",
             "--output-format=json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self

    def wait_for_writes(self, nbytes: int = 2 << 20) -> None:
        path = self.datera_dir / "data" / "volumes" / f"{self.vol.uuid}.img"
        wait_until(lambda: path.exists() and os.stat(path).st_blocks * 512 >= nbytes
                   or self.proc.poll() is not None, timeout=60, interval=0.05,
                   what="fio's first writes on the volume")
        assert self.proc.poll() is None, "fio ended before the fault: " + self.proc.stderr.read()

    def finish(self, timeout: float = 120) -> dict:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, f"fio failed ({self.proc.returncode}): {err[-2000:]}"
        job = json.loads(out[out.index("{"):])["jobs"][0]
        assert job["error"] == 0, job["error"]
        assert job["write"]["io_bytes"] >= SIZE_MIB << 20
        assert job["read"]["io_bytes"] >= SIZE_MIB << 20, "fio did not verify every block"
        return job

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.transport.disconnect(self.device, portal="", target=self.vol.iqn)
        t0 = time.monotonic()
        # The target may still be coming back from the fault: cleanup waits for it.
        wait_until(lambda: _try(lambda: drop_tenant(self.api, self.tenant)), timeout=60,
                   what=f"tenant {self.tenant} dropped after {time.monotonic() - t0:.0f}s")


def _try(fn) -> bool:
    try:
        fn()
        return True
    except Exception:   # the API still restarting: the caller retries until its deadline
        return False
