"""A Pike server of a test lab's own whose guest runs fio on a Datera volume, for the fault
tests (tests/test_lab_restart.py: a Datera restart; tests/test_chaos.py: VIP1 down).

    with GuestFio(target_yaml, runtime_s=15) as g:   # booted, fio connected to its disk
        <the fault>
        job = g.report()     # fio's JSON job from the console; no error, no bad verify
"""
import base64
from contextlib import AbstractContextManager

from fixtures.target import Target
from fixtures.waiters import wait_until
from tests.support.openstack import (OpenStackTarget, boot_networks, console_until,
                                     fio_reports, unique_name)

CLOUD = "pike"


class GuestFio(AbstractContextManager):
    def __init__(self, target_yaml, runtime_s: int = 15):
        ost = OpenStackTarget(Target.load(target_yaml))
        self.conn, self.admin = ost.connect(CLOUD), ost.connect(CLOUD, admin=True)
        self.runtime_s = runtime_s
        self.made: list = []
        self.vtype = None
        self.server = None

    def __enter__(self):
        conn = self.conn
        self.vtype = self.admin.block_storage.create_type(name=unique_name("type"), extra_specs={
            "volume_backend_name": "datera", "DF:replica_count": "1"})
        for _ in range(2):
            v = conn.block_storage.create_volume(size=1, name=unique_name("vol"),
                                                 volume_type=self.vtype.name)
            self.made.append(conn.block_storage.wait_for_status(v, "available", wait=120))
        boot, data = self.made
        script = ("#!/bin/sh\nfio --name=fault --filename=/dev/vdb --rw=randwrite --bs=4k "
                  "--size=16m --iodepth=4 --verify=crc32c --verify_backlog=64 --time_based "
                  f"--runtime={self.runtime_s} --output-format=json\n")
        server = conn.compute.create_server(
            name=unique_name("srv"), flavor_id="1", **boot_networks(CLOUD),
            user_data=base64.b64encode(script.encode()).decode(),
            block_device_mapping=[
                {"boot_index": "0", "uuid": boot.id, "source_type": "volume",
                 "destination_type": "volume", "delete_on_termination": False},
                {"uuid": data.id, "source_type": "volume", "destination_type": "volume"}])
        self.server = server
        self.server = conn.compute.wait_for_server(server, wait=120)
        console_until(conn, self.server, until="connected to NBD server", timeout=60)
        return self

    def still_running(self) -> bool:
        return not fio_reports(self.conn.compute.get_server_console_output(self.server)
                               ["output"])

    def report(self) -> dict:
        log = console_until(self.conn, self.server, timeout=90)
        job = fio_reports(log)[0]["jobs"][0]
        assert job["error"] == 0 and "verify: bad" not in log, log[-2000:]
        assert job["write"]["io_bytes"] > 0
        return job

    def __exit__(self, *exc):
        conn = self.conn
        if self.server is not None:
            conn.compute.delete_server(self.server, ignore_missing=True)
            conn.compute.wait_for_delete(self.server, wait=120)
        for v in self.made:
            wait_until(lambda: conn.block_storage.get_volume(v.id).status == "available",
                       timeout=60, what=f"volume {v.id} detached")
            conn.block_storage.delete_volume(v.id, ignore_missing=True)
            conn.block_storage.wait_for_delete(v, wait=120)
        if self.vtype is not None:
            self.admin.block_storage.delete_type(self.vtype, ignore_missing=True)
