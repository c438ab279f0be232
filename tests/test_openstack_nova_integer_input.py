"""Nova's integer fields with minimum -1 (quota sets; os-getConsoleOutput's length shares the
check, lab/openstack/nova/models/records.py integer_from_minus_one) answer bad input as Nova's
jsonschema validation does: 400 badRequest naming the field, the value and the rule; -1 (no
limit) is taken. Raw requests with the admin token of each cloud.
"""
import pytest
import requests



def _compute(token: dict) -> str:
    svc = next(s for s in token["catalog"] if s["type"] == "compute")
    return next(e["url"] for e in svc["endpoints"] if e["interface"] == "public").rstrip("/")


@pytest.mark.parametrize("cloud", ["pike", "mitaka"])
def test_quota_set_integer_fields_answer_as_nova(ost, cloud):
    token, body = ost.token(cloud, admin=True)
    url = f"{_compute(body)}/os-quota-sets/{body['project']['id']}"
    headers = {"X-Auth-Token": token}

    def put(value):
        return requests.put(url, json={"quota_set": {"key_pairs": value}}, headers=headers,
                            timeout=30)
    before = requests.get(url, headers=headers, timeout=30).json()["quota_set"]["key_pairs"]
    try:
        for value, rule in (("many", "'many' is not of type 'integer'"),
                            (-2, "-2 is less than the minimum of -1")):
            r = put(value)
            assert r.status_code == 400, r.text
            assert r.json()["badRequest"]["message"] == (
                f"Invalid input for field/attribute key_pairs. Value: {value}. {rule}")
        r = put(-1)
        assert r.status_code == 200 and r.json()["quota_set"]["key_pairs"] == -1, r.text
    finally:
        assert put(before).status_code == 200
