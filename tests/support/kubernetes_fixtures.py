"""The lab cluster fixtures the Kubernetes tests share (import them into a test module)."""
import pytest

from fixtures import kubernetes as k8s


@pytest.fixture(scope="module")
def cluster(target) -> k8s.Cluster:
    if "kubernetes" not in target.doc:
        pytest.skip("the target has no kubernetes section (lab: python -m lab up with kubernetes)")
    return k8s.connect(target)


@pytest.fixture(scope="module")
def dtenant(cluster) -> str:
    """The cluster's Datera tenant path."""
    return f"/root/{cluster.datera_tenant}"
