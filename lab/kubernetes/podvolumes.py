"""A pod's volumes other than PVCs and emptyDir, as kubelet 1.20's volume plugins set them up.

- configMap and secret (pkg/volume/configmap, pkg/volume/secret): one file per key of `data`
  (and a configMap's `binaryData`), or only the `items` listed (key -> path, mode), files
  mode `defaultMode` (0644); a missing object or key fails MountVolume.SetUp with kubelet's
  message unless `optional`. The files are laid out as kubelet's AtomicWriter lays them out
  (atomicwriter.py: `..data` -> a timestamped directory, one symlink per top-level name),
  and refreshed while the pod runs when the object changes (podrefresh.py).
- any other type (hostPath, nfs, projected, downwardAPI, ...): the lab's node has no plugin
  for it, so it answers as a kubelet without the plugin does: the volume manager's
  "failed to get Plugin from volumeSpec ... no volume plugin matched", reported as a
  FailedMount event "Unable to attach or mount volumes: ..." while the pod stays
  ContainerCreating.
"""
import base64
import shutil
from pathlib import Path

from kubernetes.client.exceptions import ApiException

from . import atomicwriter

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


def source(volume) -> tuple[str, str, object]:
    """A configMap or secret volume -> ("configmap" | "secret", the object's name, its source
    spec)."""
    if volume.config_map is not None:
        return "configmap", volume.config_map.name, volume.config_map
    return "secret", volume.secret.secret_name, volume.secret


def read(core, namespace: str, volume):
    """The volume's ConfigMap or Secret, None when it is missing and `optional`.
    Raises MountError (missing, not optional) or ApiException."""
    kind, name, src = source(volume)
    fn = core.read_namespaced_config_map if kind == "configmap" else core.read_namespaced_secret
    try:
        return fn(name, namespace)
    except ApiException as e:
        if e.status != 404:
            raise
        if src.optional:
            return None
        raise MountError(f'MountVolume.SetUp failed for volume "{volume.name}" : '
                         f'{kind} "{name}" not found') from None


def payload(volume, obj) -> atomicwriter.Payload:
    """The files of a configMap/secret volume given its object (None: missing and optional,
    no files): every key, or only `items` (key -> path, mode), mode `defaultMode` (0644)
    otherwise (configmap.MakePayload / secret.MakePayload). Raises MountError."""
    kind, _name, src = source(volume)
    failed = f'MountVolume.SetUp failed for volume "{volume.name}" : '
    files: dict[str, bytes] = {}
    if obj is not None:
        if kind == "configmap":
            files = {k: v.encode() for k, v in (obj.data or {}).items()}
            files.update({k: base64.b64decode(v) for k, v in (obj.binary_data or {}).items()})
        else:
            files = {k: base64.b64decode(v) for k, v in (obj.data or {}).items()}
    mode = src.default_mode if src.default_mode is not None else DEFAULT_MODE
    out: atomicwriter.Payload = {}
    if src.items:
        for item in src.items:
            if item.key not in files:
                if src.optional:
                    continue
                what = "config" if kind == "configmap" else "secret"
                raise MountError(f"{failed}{kind} references non-existent {what} key: "
                                 f"{item.key}")
            out[item.path] = (files[item.key], item.mode if item.mode is not None else mode)
    else:
        out = {k: (v, mode) for k, v in files.items()}
    try:
        for rel in out:
            atomicwriter.validate_path(rel)
    except atomicwriter.PayloadError as e:
        raise MountError(f"{failed}{e}") from None
    return out


def project(core, namespace: str, volume, dest: Path):
    """Writes a configMap or secret volume's files into dest (kubelet's atomic layout)
    -> the object written from (None: missing and optional). Raises MountError."""
    obj = read(core, namespace, volume)
    atomicwriter.write(dest, payload(volume, obj))
    return obj


def subpath_copy(pod_dir: Path, container: str, volume: str, index: int, path: Path) -> Path:
    """A subPath of a configMap/secret volume as the container gets it: kubelet
    bind-mounts the path as resolved at container start (volume-subpaths/<volume>/
    <container>/<index>), so later refreshes of the volume do not reach it; the lab's guest
    gets a copy of it."""
    dst = pod_dir / "volume-subpaths" / volume / container / str(index)
    if dst.is_dir():
        shutil.rmtree(dst)
    else:
        dst.unlink(missing_ok=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    real = path.resolve()
    if real.is_dir():
        shutil.copytree(real, dst, symlinks=True)
    elif real.exists():
        shutil.copy2(real, dst)
    else:
        dst.mkdir()   # kubelet creates a missing subPath as a directory
    return dst
