"""The Kubernetes piece runs only where the target has a cluster: against a target without a
`kubernetes` section (a Datera-only lab or site) its scenarios are deselected, not skipped, so
an endless run neither spins on skips nor reports them as outcomes."""
from fixtures.target import deselect_unless_target_has


def pytest_collection_modifyitems(config, items):
    deselect_unless_target_has("kubernetes", __file__, config, items)
