"""The Kubernetes piece runs only where the target has a cluster: against a target without a
`kubernetes` section (a Datera-only lab or site) its scenarios are deselected, not skipped, so
an endless run neither spins on skips nor reports them as outcomes."""
from fixtures.target import get_target


def pytest_collection_modifyitems(config, items):
    target = get_target(config)
    if target is None or "kubernetes" in target.doc:   # None: --collect-only, no target
        return
    here = __file__.rsplit("/", 1)[0] + "/"
    dropped = [i for i in items if str(i.fspath).startswith(here)]
    if dropped:
        items[:] = [i for i in items if i not in dropped]
        config.hook.pytest_deselected(items=dropped)
