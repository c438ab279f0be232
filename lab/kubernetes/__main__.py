"""python -m lab.kubernetes --config <file.json>: the lab's Kubernetes node.

Starts Debian's etcd and the three control-plane programs, each in a session of its own and
recorded in <work_dir>/detached/ (processes.py), so a `kill -9` of this process leaves them
serving as a kubelet crash leaves a node's units: the restarted process adopts them. Waits
until the apiserver is ready, then runs what a cluster delegates: the Datera CSI controller
side and the node agent. Writes <work_dir>/ready (JSON: this process's pid, seconds from its
start to each phase, and which programs it adopted) when the API serves, the Node is
registered Ready and the provisioner's informers have listed. A control-plane program that dies is restarted
alone; past its restart limit the process exits 1 and the lab supervisor restarts the whole
component. SIGTERM stops everything, programs included.
"""
import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from clients.signals import StopFlag
from lab import logsetup

from . import controlplane
from .config import Config, ConfigError
from .processes import GaveUp, Processes

log = logging.getLogger("lab.kubernetes")
READY_TIMEOUT_S = 170   # within the component's health_timeout_s (lab/components.py)
# The node's initiator name (what /etc/iscsi/initiatorname.iscsi holds on a real node).
NODE_IQN = "iqn.1993-08.org.debian:01:vancouver-kubernetes"
STOP_TIMEOUT_S = 3.5    # the control plane's share, inside the supervisor's 5 s (lab/runfiles.py)
READY_POLL_S = 0.05     # /readyz is cheap; every poll saved is start time
CHECK_S = 0.2           # how soon a dead control-plane program is noticed
# How much nicer the agents' imports run while kube-apiserver starts (see _import_agents).
IMPORT_NICE = 10


def _token(c: Config) -> str:
    return c.token_file.read_text().split(",", 1)[0]


def api_client(c: Config):
    from kubernetes import client
    conf = client.Configuration(host=c.server)
    conf.ssl_ca_cert = str(c.ca_file)
    conf.api_key = {"BearerToken": _token(c)}
    conf.api_key_prefix = {"BearerToken": "Bearer"}
    return client.ApiClient(conf)


def _since_exec() -> float | None:
    """Seconds from this process's exec to now (the interpreter's start and imports), from
    /proc/self/stat's starttime in clock ticks since boot; None where /proc says otherwise."""
    try:
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return round(uptime - start / os.sysconf("SC_CLK_TCK"), 3)


def _import_agents(behind_apiserver: bool) -> None:
    """Imports what the node runs (the kubernetes client's ~700 model modules, dfs_sdk):
    1.5-2 s of CPU. While a kube-apiserver this process started builds its OpenAPI spec
    (another 2-3 s of CPU, the restart's critical path), they share two cores: measured, an
    apiserver with these imports beside it at equal priority took 4.05 s to /readyz, at nice
    +10 3.21 s, alone 2.74 s (p50 of 4, load 3.9). So the imports run in a thread of their own
    at a lower priority (Linux keeps a nice value per thread; the thread ends with the
    imports, so nothing the node starts later inherits it). An adopted apiserver is already
    serving: then the imports are the critical path and keep their priority."""
    def work() -> None:
        if behind_apiserver:
            try:
                tid = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, tid,
                               min(19, os.getpriority(os.PRIO_PROCESS, tid) + IMPORT_NICE))
            except OSError:   # not allowed here: the imports keep the caller's priority
                pass
        from . import csi_controller, datera_csi, logserver, node_agent, pods  # noqa: F401
    t = threading.Thread(target=work, name="import-agents")
    t.start()
    t.join()


def _etcd_healthy(c: Config) -> bool:
    """etcd's /health answers {"health":"true"} (it has a leader and serves reads)."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://{c.address}:{c.etcd_port}/health",
                                    timeout=1.0) as resp:
            return json.loads(resp.read()).get("health") == "true"
    except (urllib.error.URLError, OSError, ValueError):
        return False


class _Readiness(threading.Thread):
    """Polls from the programs' start until /readyz answers 200, recording in `phases` when
    etcd and then the apiserver became ready; runs beside the node's own imports and setup
    so the figures are the programs', not the Python start's. `error`: one line, or None."""

    def __init__(self, c: Config, procs: Processes, stop: StopFlag, t0: float,
                 phases: dict):
        super().__init__(name="readiness", daemon=True)
        self.c, self.procs, self.stop_ev, self.t0, self.phases = c, procs, stop, t0, phases
        self.error: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self._poll()
        finally:
            self.done.set()

    def _poll(self) -> None:
        c, phases = self.c, self.phases
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.stop_ev.is_set():
            for name, how in self.procs.dead():
                self.error = (f"lab.kubernetes: {name} exited with {how} while starting "
                              f"(see {c.work_dir}/logs/{name}.log)")
                return
            if "etcd" not in phases and _etcd_healthy(c):
                phases["etcd"] = round(time.monotonic() - self.t0, 3)
            if "etcd" in phases and controlplane.readyz(c.server, str(c.ca_file), _token(c)):
                phases["apiserver"] = round(time.monotonic() - self.t0, 3)
                return
            if time.monotonic() > deadline:
                self.error = (f"lab.kubernetes: kube-apiserver not ready after "
                              f"{READY_TIMEOUT_S}s (see {c.work_dir}/logs/kube-apiserver.log)")
                return
            self.stop_ev.wait(READY_POLL_S)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lab.kubernetes",
                                     description="The Vancouver lab's Kubernetes node")
    parser.add_argument("--config", required=True)
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    logsetup.configure(args.log_level, config_path=args.config)   # masked: lab/logsetup.py
    try:
        c = Config.load(args.config)
    except ConfigError as e:
        print(f"lab.kubernetes: {e}", file=sys.stderr)
        return 2
    stop = StopFlag()   # set from the handlers through a relay thread (clients/signals.py)
    signal.signal(signal.SIGTERM, stop.request)
    signal.signal(signal.SIGINT, stop.request)
    (c.work_dir / "ready").unlink(missing_ok=True)
    t0 = time.monotonic()
    exec_s = _since_exec()
    # etcd and the apiserver at once (it retries etcd); the controller-manager gives up
    # (exit 255) when the apiserver is not healthy soon enough, so it and the scheduler start
    # once the apiserver is ready. After a kill -9 of this process they are still running:
    # adopted when they are the recorded processes and healthy.
    procs = Processes(c.work_dir / "logs", c.work_dir)
    phases: dict = {"pid": os.getpid(), "adopted": [], "python": exec_s}

    def adopt_or_start(name, argv, healthy=lambda: True):
        if procs.adopt_or_start(name, argv, healthy):
            phases["adopted"].append(name)
    adopt_or_start("etcd", controlplane.etcd_argv(c), lambda: _etcd_healthy(c))
    adopt_or_start("kube-apiserver", controlplane.apiserver_argv(c),
                   lambda: controlplane.readyz(c.server, str(c.ca_file), _token(c)))
    readiness = _Readiness(c, procs, stop, t0, phases)
    readiness.start()
    agents, runner = [], None
    try:
        _import_agents(behind_apiserver="kube-apiserver" not in phases["adopted"])
        from .csi_controller import CsiController
        from .datera_csi import DateraCsi
        from .logserver import serve_logs
        from .node_agent import NodeAgent
        from .pods import PodRunner
        api = api_client(c)
        # What needs no apiserver is set up while it starts: the driver, the node's sweep of
        # mounts a killed node left, and the kubelet's log endpoint.
        csi = DateraCsi(c.datera)
        controller = CsiController(api, csi, c.driver)
        node = NodeAgent(api, c.node_name, c.address, c.driver, c.kubelet_port)
        # Pods and staged volumes live beside the work dir, which the supervisor clears
        # before a start: a mount left by a killed node must be swept, not deleted through.
        runner = PodRunner(node.core, csi, c.node_name, c.address, c.driver,
                           c.work_dir.with_name(c.work_dir.name + "-node"), NODE_IQN)
        runner.start()
        serve_logs(c.address, c.kubelet_port, str(c.tls_cert), str(c.tls_key), runner.log_file)
        readiness.done.wait()
        if stop.is_set():
            return 0
        if readiness.error:
            raise SystemExit(readiness.error)
        log.info("kube-apiserver ready after %.2fs", time.monotonic() - t0)
        adopt_or_start("kube-controller-manager", controlplane.controller_manager_argv(c))
        adopt_or_start("kube-scheduler", controlplane.scheduler_argv(c))
        agents = [controller, node]
        controller.start()   # its first lists run while the node registers
        controller.register_driver()
        node.register()
        node.record_start()   # before the pod sync marks what this restart lost
        phases["node"] = round(time.monotonic() - t0, 3)
        while not all(e.wait(0.01) for e in controller.synced):
            if stop.is_set():
                return 0
            procs.check()   # an apiserver dying now must not leave the lists waiting forever
        phases["csi"] = round(time.monotonic() - t0, 3)
        threading.Thread(target=node.run, name="node-heartbeat", daemon=True).start()
        threading.Thread(target=node.watch_pods, args=(runner.on_pod,), name="node-pods",
                         daemon=True).start()
        # The tenant is created once Datera answers (it may start after us).
        threading.Thread(target=_ensure_tenant, args=(csi, stop), daemon=True).start()
        (c.work_dir / "ready").write_text(json.dumps(phases) + "\n")
        log.info("kubernetes node ready after %.2fs: %s", time.monotonic() - t0,
                 json.dumps(phases))
        while not stop.wait(CHECK_S):
            procs.check()
        return 0
    except GaveUp as e:
        log.error("%s", e)
        return 1
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 1
    finally:
        for a in agents:
            a.stop.set()
        if runner is not None:
            runner.shutdown()
        procs.stop(STOP_TIMEOUT_S)


def _ensure_tenant(csi, stop: StopFlag) -> None:
    while not stop.is_set():
        try:
            csi.ensure_tenant()
            return
        except Exception as e:
            log.info("Datera tenant %s not created yet: %s", csi.tenant, type(e).__name__)
            stop.wait(1.0)


if __name__ == "__main__":
    sys.exit(main())
