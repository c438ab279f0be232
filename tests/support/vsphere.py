"""A vCenter simulator of a test's own (lab/vsphere's Go main), and clients for it.

Each test module starts its own process on 127.0.0.1 and a free port, so tests that reconfigure
the one ESXi host (send targets, CHAP) never see another module's or another worker's changes,
nor the session lab's. Clients are the real ones: pyvmomi 9 and govc built from the same Debian
govmomi source (lab/vsphere/build.sh).
"""
import json
import os
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from lab.component_base import write_private
from lab.tls import TlsFiles, issue_server_cert
from lab.vsphere import buildhash

ADDRESS = "127.0.0.1"
USER = "administrator@vsphere.local"
START_TIMEOUT_S = 30.0


def binaries() -> Path:
    d = buildhash.bin_dir()
    if d is None:
        pytest.fail(f"lab/vsphere is not built in {buildhash.build_dir()}: run make vsphere")
    return d


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    """Polls predicate() until it returns a truthy value; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Vcsim:
    """One simulator process: start(), then si / fabric() / govc(); stop() sends SIGTERM."""
    work: Path
    task_gc_s: float = 10.0
    env: dict = field(default_factory=dict)
    password: str = "pw-" + os.urandom(6).hex()
    listen_port: int = 0   # 0: a free one; a fixed one keeps guests' guestinfo URLs across restarts
    proc: subprocess.Popen | None = None
    url: str = ""
    _si: object = None

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    @property
    def ca(self) -> Path:
        return self.work / "tls" / "ca.pem"

    def start(self) -> "Vcsim":
        self.work.mkdir(parents=True, exist_ok=True)
        # A restart on the same work dir keeps its certificate, as the lab's supervisor does
        # (a guest agent that outlives the process verifies the new one with the CA it has).
        tls = TlsFiles(self.work / "tls" / "ca.pem", self.work / "tls" / "localhost.pem",
                       self.work / "tls" / "localhost.key")
        if not all(p.exists() for p in (tls.ca, tls.cert, tls.key)):
            tls = issue_server_cert(self.work / "tls", ADDRESS, "localhost")
        config = {"address": ADDRESS, "port": self.listen_port, "user": USER, "password": self.password,
                  "tls_cert": str(tls.cert), "tls_key": str(tls.key), "ca_file": str(tls.ca),
                  "data_dir": str(self.data_dir), "url_file": str(self.work / "url"),
                  "task_gc_s": self.task_gc_s, "workdir": str(Path(__file__).parents[2])}
        write_private(self.work / "config.json", json.dumps(config))
        self.log = open(self.work / "vcsim.log", "wb")
        self.proc = subprocess.Popen(
            [str(binaries() / "vancouver-vcsim"), "-config", str(self.work / "config.json")],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
            start_new_session=True)
        url_file = self.work / "url"
        wait_for(lambda: url_file.exists() or self.proc.poll() is not None, START_TIMEOUT_S,
                 "the simulator's URL file")
        if self.proc.poll() is not None:
            pytest.fail(f"vancouver-vcsim exited {self.proc.returncode}: {self.log_text()[-500:]}")
        self.url = url_file.read_text().strip()          # https://127.0.0.1:<port>/sdk
        return self

    def log_text(self) -> str:
        return (self.work / "vcsim.log").read_text(errors="replace")

    @property
    def base(self) -> str:
        return self.url.removesuffix("/sdk")

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def connect(self, password: str | None = None):
        ctx = ssl.create_default_context(cafile=str(self.ca))
        return SmartConnect(host=ADDRESS, port=self.port, user=USER,
                            pwd=self.password if password is None else password, sslContext=ctx)

    @property
    def si(self):
        if self._si is None:
            self._si = self.connect()
        return self._si

    def host(self) -> vim.HostSystem:
        content = self.si.RetrieveContent()
        return content.rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]

    def http(self, method: str, path: str, auth=True, **kw) -> requests.Response:
        return requests.request(method, self.base + path, verify=str(self.ca), timeout=10,
                                auth=(USER, self.password) if auth else None, **kw)

    def fabric_put(self, lun: dict) -> requests.Response:
        return self.http("PUT", "/datera/luns", json=lun)

    def govc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "GOVC_URL": self.url, "GOVC_USERNAME": USER,
               "GOVC_PASSWORD": self.password, "GOVC_TLS_CA_CERTS": str(self.ca),
               "GOVMOMI_HOME": str(self.work / "govmomi")}
        r = subprocess.run([str(binaries() / "govc"), *args], env=env, capture_output=True,
                           text=True, timeout=60)
        if check and r.returncode != 0:
            pytest.fail(f"govc {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self._si is not None:
            try:
                Disconnect(self._si)
            except Exception:   # the server may be gone already; the process is what matters
                pass
            self._si = None
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"vancouver-vcsim ignored signal {sig} for {timeout} s")
        finally:
            self.log.close()


def wait_task(task) -> object:
    """The simulator runs tasks inside the call (reference §2.6): the state is final at once.
    Reads info.state/error only (task.info.entity trips pyvmomi 9 for some tasks, §2.4)."""
    state = task.info.state
    if state == vim.TaskInfo.State.error:
        raise task.info.error
    assert state == vim.TaskInfo.State.success, state
    return task.info.result


def lun_doc(n: int, **over) -> dict:
    """A Datera-style fabric LUN: naa.6001405 + 25 hex digits, two portals, 1 GiB."""
    doc = {"naa": f"naa.6001405{n:025x}", "capacity_bytes": 1 << 30, "vendor": "DATERA",
           "model": "IBLOCK", "target_iqn": f"iqn.2013-05.com.daterainc:tc:01:sn:{n:016x}",
           "portals": ["127.0.7.11:3260", "127.0.7.12:3260"], "lun_id": 0,
           "initiators": [], "chap_user": "", "chap_secret": ""}
    doc.update(over)
    return doc


def create_vm(si, name: str, datastore: str, disk_gb: int = 1, extra: dict | None = None):
    """A VM with a PVSCSI controller and one thin flat disk on `datastore`."""
    content = si.RetrieveContent()
    dc = content.rootFolder.childEntity[0]
    cluster = dc.hostFolder.childEntity[0]
    ctrl = vim.vm.device.VirtualDeviceSpec(
        operation="add", device=vim.vm.device.ParaVirtualSCSIController(
            key=1000, busNumber=0, sharedBus="noSharing"))
    disk = vim.vm.device.VirtualDeviceSpec(
        operation="add", fileOperation="create", device=vim.vm.device.VirtualDisk(
            key=-1, controllerKey=1000, unitNumber=0, capacityInKB=disk_gb << 20,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                diskMode="persistent", thinProvisioned=True, fileName="")))
    spec = vim.vm.ConfigSpec(
        name=name, guestId="otherGuest64", numCPUs=1, memoryMB=256,
        files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"), deviceChange=[ctrl, disk],
        extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in (extra or {}).items()])
    task = dc.vmFolder.CreateVM_Task(config=spec, pool=cluster.resourcePool)
    return wait_task(task)
