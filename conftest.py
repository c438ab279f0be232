# Root conftest: registers the harness plugins and nothing else, in dependency order (each
# only uses plugins above it). Dependencies are explicit calls (get_demo, ensure_demo,
# get_target), not hook order; what crosses to xdist workers: fixtures/endless/__init__.py.
pytest_plugins = [
    "fixtures.without_xdist",     # xdist's worker_id, testrun_uid when -p no:xdist
    "fixtures.config",            # demo.yaml, validated once; scenario keys = module names
    "fixtures.target",            # target.yaml parsed once, lab started; asks config first
    "fixtures.chaos",             # demo.yaml's timed fault injections on the lab; needs target
    "fixtures.endless",           # --count=0, --duration: scheduler, pacing (needs config), stop
    "fixtures.reporting.plugin",  # run events, report, results.jsonl; reads round, demo, target
    "fixtures.outage.plugin",     # rides out an unreachable platform; needs endless, reporting
    "fixtures.datera",            # Datera helpers and fixtures; needs target and reporting
    "fixtures.openstack.plugin",  # OpenStack clouds, Tenants setup, factories; needs datera
    "fixtures.platform_checks",   # start check of vCenter, Kubernetes; needs target, reporting
    "fixtures.dashboard.plugin",  # live channel, dashboard, terminal view; reads the bus
]
