"""The lab cluster fixtures the Kubernetes tests share (import them into a test module)."""
import uuid

import pytest
from kubernetes.client.exceptions import ApiException

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


@pytest.fixture
def ns(cluster):
    """A namespace of the test's own, deleted (and waited for) after it."""
    name = f"vkt-{uuid.uuid4().hex[:8]}"
    k8s.ensure_namespace(cluster.core, name)
    yield name
    k8s.delete_namespace(cluster.core, name)


@pytest.fixture
def storage_class(cluster):
    """make(parameters, reclaim="Delete") -> a fresh StorageClass name of the Datera CSI
    provisioner; deleted after the test."""
    made = []

    def make(parameters: dict, reclaim: str = "Delete") -> str:
        name = f"vkt-{uuid.uuid4().hex[:8]}"
        k8s.ensure_storage_class(cluster.storage, k8s.storage_class_body(
            name, cluster.provisioner, parameters, reclaim))
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            cluster.storage.delete_storage_class(name)
        except ApiException:
            pass
