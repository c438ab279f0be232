"""A Datera volume's SCSI identity as an ESXi host sees it (reference vsphere.md §5): NAA
`6001405` (the LIO OUI 00:14:05 Datera's targets use) + 25 hex digits of the volume uuid, so
the lab's fabric (lab/datera/fabric.py) and the demo's fixtures (fixtures/vmware.py) name a
LUN the same way. Stdlib only."""
import uuid as uuidlib

NAA_PREFIX = "naa.6001405"


def naa_for(volume_uuid: str) -> str:
    """naa.6001405 + the first 25 hex digits of the volume uuid (ValueError: not a uuid)."""
    return NAA_PREFIX + uuidlib.UUID(volume_uuid).hex[:25]
