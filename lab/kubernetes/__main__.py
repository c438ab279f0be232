"""python -m lab.kubernetes --config <file.json>: the lab's Kubernetes node.

Starts Debian's etcd and the three control-plane programs (children in this process group, so
the supervisor's signal to the group stops them too), waits until the apiserver is ready, then
runs what a cluster delegates: the Datera CSI controller side and the node agent. Writes
<work_dir>/ready when all of it serves. A control-plane program that dies is restarted alone
(processes.py: etcd keeps running across an apiserver restart); past its restart limit the
process exits 1 and the lab supervisor restarts the whole component.
"""
import argparse
import logging
import signal
import sys
import threading
import time

from . import controlplane
from .config import Config, ConfigError
from .processes import GaveUp, Processes

log = logging.getLogger("lab.kubernetes")
READY_TIMEOUT_S = 170   # within the component's health_timeout_s (lab/components.py)
# The node's initiator name (what /etc/iscsi/initiatorname.iscsi holds on a real node).
NODE_IQN = "iqn.1993-08.org.debian:01:vancouver-kubernetes"
STOP_TIMEOUT_S = 5
READY_POLL_S = 0.05     # /readyz is cheap; every poll saved is start time
CHECK_S = 0.2           # how soon a dead control-plane program is noticed


def _token(c: Config) -> str:
    return c.token_file.read_text().split(",", 1)[0]


def api_client(c: Config):
    from kubernetes import client
    conf = client.Configuration(host=c.server)
    conf.ssl_ca_cert = str(c.ca_file)
    conf.api_key = {"BearerToken": _token(c)}
    conf.api_key_prefix = {"BearerToken": "Bearer"}
    return client.ApiClient(conf)


def _wait_ready(c: Config, procs: Processes, stop: threading.Event) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not stop.is_set():
        for name, rc in procs.dead():
            raise SystemExit(f"lab.kubernetes: {name} exited with status {rc} "
                             f"while starting (see {c.work_dir}/logs/{name}.log)")
        if controlplane.readyz(c.server, str(c.ca_file), _token(c)):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"lab.kubernetes: kube-apiserver not ready after {READY_TIMEOUT_S}s "
                             f"(see {c.work_dir}/logs/kube-apiserver.log)")
        stop.wait(READY_POLL_S)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lab.kubernetes",
                                     description="The Vancouver lab's Kubernetes node")
    parser.add_argument("--config", required=True)
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        c = Config.load(args.config)
    except ConfigError as e:
        print(f"lab.kubernetes: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    (c.work_dir / "ready").unlink(missing_ok=True)
    t0 = time.monotonic()
    # etcd and the apiserver at once (it retries etcd); the controller-manager gives up
    # (exit 255) when the apiserver is not healthy soon enough, so it and the scheduler start
    # once the apiserver is ready.
    procs = Processes(c.work_dir / "logs", c.work_dir)
    procs.start("etcd", controlplane.etcd_argv(c))
    procs.start("kube-apiserver", controlplane.apiserver_argv(c))
    agents, runner = [], None
    try:
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
        _wait_ready(c, procs, stop)
        if stop.is_set():
            return 0
        log.info("kube-apiserver ready after %.2fs", time.monotonic() - t0)
        procs.start("kube-controller-manager", controlplane.controller_manager_argv(c))
        procs.start("kube-scheduler", controlplane.scheduler_argv(c))
        controller.register_driver()
        node.register()
        agents = [controller, node]
        controller.start()
        threading.Thread(target=node.run, name="node-heartbeat", daemon=True).start()
        threading.Thread(target=node.watch_pods, args=(runner.on_pod,), name="node-pods",
                         daemon=True).start()
        # The tenant is created once Datera answers (it may start after us).
        threading.Thread(target=_ensure_tenant, args=(csi, stop), daemon=True).start()
        (c.work_dir / "ready").write_text(f"{time.monotonic() - t0:.2f}\n")
        log.info("kubernetes node ready after %.2fs", time.monotonic() - t0)
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


def _ensure_tenant(csi, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            csi.ensure_tenant()
            return
        except Exception as e:
            log.info("Datera tenant %s not created yet: %s", csi.tenant, type(e).__name__)
            stop.wait(1.0)


if __name__ == "__main__":
    sys.exit(main())
