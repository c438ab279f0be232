"""Cinder's image -> volume step, as the volume manager does it on the host (cinder
image_utils.fetch_to_volume_format, Mitaka..Pike): `qemu-img info` gives the image's *virtual*
size (Glance of these releases reports none for a plain upload), an image that does not fit is
refused with ImageUnacceptable, and `qemu-img convert -O raw -n` writes it onto the volume as
attached: a Ceph pool's file, or a Datera volume's nbd:// URI after the host's initiator
login (os-brick's iSCSI attach). `-n`: the volume exists already; qemu-img must not create it.

Raw images keep the plain extent copy (backends/copy.py): there is nothing to convert.
"""
import json
import math
import subprocess

from lab.openstack.cinder.backends import BackendError

GiB = 1 << 30
QEMU_IMG_TIMEOUT_S = 900
# disk_format (Glance) -> qemu-img's format name
QEMU_FORMATS = {"qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx",
                "raw": "raw"}


class ImageUnacceptable(BackendError):
    """cinder.exception.ImageUnacceptable: 'Image %(image_id)s is unacceptable: %(reason)s'."""

    def __init__(self, image_id: str, reason: str):
        super().__init__(f"Image {image_id} is unacceptable: {reason}")


def needs_conversion(disk_format: str | None) -> bool:
    return (disk_format or "raw") != "raw"


def _qemu_format(image_id: str, disk_format: str | None) -> str:
    fmt = QEMU_FORMATS.get(disk_format or "raw")
    if fmt is None:
        raise ImageUnacceptable(image_id, f"disk format {disk_format} is not supported")
    return fmt


def virtual_size(image_id: str, path: str, disk_format: str | None) -> int:
    """The image's virtual size in bytes, from `qemu-img info` (as Cinder's qemu_img_info)."""
    fmt = _qemu_format(image_id, disk_format)
    proc = subprocess.run(["qemu-img", "info", "--output=json", "-f", fmt, path],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise ImageUnacceptable(image_id, f"qemu-img info failed: {last}")
    info = json.loads(proc.stdout)
    if info.get("backing-filename"):   # Cinder refuses images with a backing file
        raise ImageUnacceptable(image_id, "fmt=qcow2 backed by: "
                                          f"{info['backing-filename']}")
    return int(info["virtual-size"])


def check_fits(image_id: str, virtual_bytes: int, volume_gib: int) -> None:
    """Cinder's words when the image's virtual size does not fit the volume (Mitaka..Pike
    image_utils.fetch_to_volume_format / check_virtual_size)."""
    virt_gib = math.ceil(virtual_bytes / GiB)
    if virt_gib > volume_gib:
        raise ImageUnacceptable(image_id, f"Size is {virt_gib}GB and doesn't fit in a volume of "
                                          f"size {volume_gib}GB.")


def convert_to_volume(image_id: str, path: str, disk_format: str | None, dst: str,
                      volume_gib: int) -> None:
    """Checks the virtual size against the volume, then converts the image onto `dst` (a file
    or an nbd:// URI) as raw. Raises ImageUnacceptable or BackendError (one line)."""
    check_fits(image_id, virtual_size(image_id, path, disk_format), volume_gib)
    fmt = _qemu_format(image_id, disk_format)
    proc = subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", "-n", path, dst],
                          capture_output=True, text=True, timeout=QEMU_IMG_TIMEOUT_S)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise BackendError(f"Failed to copy image to volume: {last}")
