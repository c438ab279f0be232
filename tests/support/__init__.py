"""Helpers shared by the project's tests (their fixtures live in tests/conftest.py).

A test module imports from here, never from another test module:
- dsdk: dfs_sdk with the tests' safe settings, and the target's UDC file;
- labcli: `python -m lab` for tests that start a lab of their own on a net of their own;
- datera_lab: app instances of the session lab's Datera, seen from a host;
- openstack: the lab's clouds through openstacksdk, the CLI and raw requests;
- inner_run: generated inner pytest runs for the live views (dashboard, terminal view).
"""
