"""Ports fixed by the protocols the clients speak: the one place each number is written.

Stdlib only, so every lab process may import it cheaply (lab/topology.py binds these).
Facts: dfs_sdk has no port argument and always dials 7717 (http) or 7718 (https) (reference
datera-api §0.2; clients.dfs_compat checks these against dfs_sdk's own constants at import).
3260 is the iSCSI portal port (RFC 7143); the Datera lab's initiator login stands in for iSCSI
on it. 10809 is NBD's IANA port.
"""
DATERA_HTTP = 7717
DATERA_HTTPS = 7718
ISCSI = 3260
NBD = 10809


def datera_rest(secure: bool) -> int:
    """The port dfs_sdk dials for `secure=` (it has no port argument)."""
    return DATERA_HTTPS if secure else DATERA_HTTP
