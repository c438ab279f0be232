"""The minimal Neutron of the lab's clouds through openstacksdk 4.22 and the openstack CLI:
one network with a subnet per project, ports with a fixed address, quotas, and Neutron's
error bodies."""
import uuid

import openstack
import pytest
import requests

from tests.support.openstack import CLOUDS


@pytest.mark.parametrize("cloud", CLOUDS)
def test_each_project_has_exactly_one_network_with_a_subnet(ost, cloud):
    conn = ost.connect(cloud)
    nets = list(conn.network.networks())
    assert len(nets) == 1          # Nova's networks='auto' needs exactly one
    net = nets[0]
    assert net.status == "ACTIVE" and net.project_id == conn.current_project_id
    uuid.UUID(net.id)              # server create --nic net-id= needs a real UUID
    subnets = list(conn.network.subnets(network_id=net.id))
    assert [s.id for s in subnets] == net.subnet_ids
    assert subnets[0].ip_version == 4 and subnets[0].cidr.endswith("/24")
    assert conn.network.find_network(net.name).id == net.id
    # the cloud layer's create_server looks these up
    assert conn.list_networks()[0]["id"] == net.id
    assert conn.list_subnets()[0]["id"] == subnets[0].id


@pytest.mark.parametrize("cloud", CLOUDS)
def test_osc_network_list_and_quota(ost, cloud):
    nets = ost.osc(cloud, "network", "list", "-f", "json")
    assert len(nets) == 1 and nets[0]["Name"].endswith("-net")
    shown = ost.osc(cloud, "network", "show", nets[0]["Name"], "-f", "json")
    assert shown["id"] == nets[0]["ID"]
    conn = ost.connect(cloud)
    quota = conn.network.get_quota(conn.current_project_id)
    assert quota.ports > 0 and quota.networks > 0


def test_ports_get_fixed_addresses_and_release_them(ost):
    conn = ost.connect("pike")
    net = next(conn.network.networks())
    device = str(uuid.uuid4())
    a = conn.network.create_port(network_id=net.id, device_id=device, device_owner="compute:nova")
    b = conn.network.create_port(network_id=net.id, device_id=device, device_owner="compute:nova")
    try:
        addrs = [p.fixed_ips[0]["ip_address"] for p in (a, b)]
        assert len(set(addrs)) == 2 and all(x.startswith("10.0.0.") for x in addrs)
        assert a.mac_address.startswith("fa:16:3e:")
        found = sorted(p.id for p in conn.network.ports(device_id=device))
        assert found == sorted([a.id, b.id])
    finally:
        conn.network.delete_port(a)
        conn.network.delete_port(b)
    assert list(conn.network.ports(device_id=device)) == []


def test_admin_sees_every_project_network_tenant_only_its_own(ost):
    admin = ost.connect("newton", admin=True)
    tenant = ost.connect("newton")
    all_nets = {n.project_id for n in admin.network.networks()}
    assert tenant.current_project_id in all_nets and len(all_nets) >= 2
    admin_net = next(n for n in admin.network.networks()
                     if n.project_id == admin.current_project_id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        tenant.network.get_network(admin_net.id)


def test_bad_input_answers_with_neutron_errors(ost):
    conn = ost.connect("mitaka")
    base = ost.endpoint("mitaka", "network")
    headers = {"X-Auth-Token": conn.session.get_token()}
    missing_id = str(uuid.uuid4())
    missing = requests.get(f"{base}/v2.0/networks/{missing_id}", headers=headers, timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {"NeutronError": {"type": "NetworkNotFound", "detail": "",
                                               "message": f"Network {missing_id} could not "
                                                          "be found."}}
    malformed = requests.post(f"{base}/v2.0/ports", data=b"[", headers=headers, timeout=10)
    assert malformed.status_code == 400 and "NeutronError" in malformed.json()
    no_net = requests.post(f"{base}/v2.0/ports", json={"port": {"name": "x"}}, headers=headers,
                           timeout=10)
    assert no_net.status_code == 400
    assert "network_id" in no_net.json()["NeutronError"]["message"]
    assert requests.get(f"{base}/v2.0/networks", timeout=10).status_code == 401
    denied = requests.put(f"{base}/v2.0/quotas/{conn.current_project_id}",
                          json={"quota": {"port": 1}}, headers=headers, timeout=10)
    assert denied.status_code == 403
    assert len(list(conn.network.networks())) == 1     # still serving
