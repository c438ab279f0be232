"""The ports between the lab's OpenStack services (lab/openstack/ports.py): each model offers
every call the other declares it needs, with the same parameters, so a port is a contract and
not a wish. No lab is started."""
import inspect

import pytest

from lab.openstack import ports
from lab.openstack.cinder.models import CinderModel
from lab.openstack.nova.models import ComputeModel


def declared(port) -> list[str]:
    return [n for n, f in vars(port).items() if inspect.isfunction(f) and not n.startswith("_")]


@pytest.mark.parametrize("port, model", [(ports.Volumes, CinderModel),
                                         (ports.Compute, ComputeModel),
                                         (ports.ImageSource, None)])
def test_each_port_call_is_offered_with_its_parameters(port, model):
    names = declared(port)
    assert names, f"{port.__name__} declares no call"
    if model is None:
        return   # ImageSource is an ABC: its adapters cannot be built without the call
    for name in names:
        offered = getattr(model, name, None)
        assert callable(offered), f"{model.__name__} has no {name}() for {port.__name__}"
        want = list(inspect.signature(getattr(port, name)).parameters)
        have = list(inspect.signature(offered).parameters)
        assert have[:len(want)] == want or "kwargs" in want, (name, want, have)
