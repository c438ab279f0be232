"""A pod's volumes other than PVCs and emptyDir, as kubelet 1.20's volume plugins set them up.

- configMap and secret (pkg/volume/configmap, pkg/volume/secret): one file per key of `data`
  (and a configMap's `binaryData`), or only the `items` listed (key -> path, mode), files
  mode `defaultMode` (0644); a missing object or key fails MountVolume.SetUp with kubelet's
  message unless `optional`. The files are written once, when the pod starts (kubelet also
  refreshes them later; the lab's pods are short).
- any other type (hostPath, nfs, projected, downwardAPI, ...): the lab's node has no plugin
  for it, so it answers as a kubelet without the plugin does: the volume manager's
  "failed to get Plugin from volumeSpec ... no volume plugin matched", reported as a
  FailedMount event "Unable to attach or mount volumes: ..." while the pod stays
  ContainerCreating.
"""
import base64
import os
from pathlib import Path

from kubernetes.client.exceptions import ApiException

DEFAULT_MODE = 0o644


class MountError(Exception):
    """A volume kubelet cannot set up; str() is the FailedMount event's message."""


def source_of(volume) -> str | None:
    """The volume's source type as the API names it (`hostPath`, `configMap`, ...)."""
    for attr, key in volume.attribute_map.items():
        if attr != "name" and getattr(volume, attr) is not None:
            return key
    return None


def check_supported(volume, supported: tuple[str, ...]) -> None:
    """Raises MountError when the node has no plugin for the volume's type."""
    kind = source_of(volume)
    if kind not in supported:
        raise MountError(
            f"Unable to attach or mount volumes: unmounted volumes=[{volume.name}], "
            f"unattached volumes=[{volume.name}]: failed to get Plugin from volumeSpec for "
            f'volume "{volume.name}" err=no volume plugin matched')


def project(core, namespace: str, volume, dest: Path) -> None:
    """Writes a configMap or secret volume's files into dest. Raises MountError."""
    if volume.config_map is not None:
        src, kind = volume.config_map, "configmap"
        read = core.read_namespaced_config_map
    else:
        src, kind = volume.secret, "secret"
        read = core.read_namespaced_secret
    name = src.name if kind == "configmap" else src.secret_name
    failed = f'MountVolume.SetUp failed for volume "{volume.name}" : '
    try:
        obj = read(name, namespace)
    except ApiException as e:
        if e.status != 404:
            raise
        if src.optional:
            obj = None
        else:
            raise MountError(f'{failed}{kind} "{name}" not found') from None
    files: dict[str, bytes] = {}
    if obj is not None:
        if kind == "configmap":
            files = {k: v.encode() for k, v in (obj.data or {}).items()}
            files.update({k: base64.b64decode(v) for k, v in (obj.binary_data or {}).items()})
        else:
            files = {k: base64.b64decode(v) for k, v in (obj.data or {}).items()}
    mode = src.default_mode if src.default_mode is not None else DEFAULT_MODE
    plan: list[tuple[str, bytes, int]] = []
    if src.items:
        for item in src.items:
            if item.key not in files:
                if src.optional:
                    continue
                what = "config" if kind == "configmap" else "secret"
                raise MountError(f"{failed}{kind} references non-existent {what} key: "
                                 f"{item.key}")
            plan.append((item.path, files[item.key],
                         item.mode if item.mode is not None else mode))
    else:
        plan = [(k, v, mode) for k, v in files.items()]
    dest.mkdir(parents=True, exist_ok=True)
    for rel, data, fmode in plan:
        path = dest / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise MountError(f"{failed}invalid path {rel!r}: must be relative, without '..'")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, fmode)
