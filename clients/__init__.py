"""Client-side code shared by the driver (fixtures/), the project's tests and the lab.

The lab must not import fixtures/ and scenarios must not import lab/, yet all three speak the
same client protocols: dfs_sdk (clients.dfs_compat), the lab's initiator login
(clients.initiator) and the protocols' well-known ports (clients.ports). Modules here import
only the standard library and client libraries, never fixtures/, lab/ or scenarios/.
"""
