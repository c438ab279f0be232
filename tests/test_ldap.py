"""The lab's slapd, proved with Debian's own clients (ldapsearch, ldapwhoami) and with ldap3
the way the Datera lab uses it (anonymous search for the uid, then bind as its DN)."""
import base64
import json
import shutil
import stat
import subprocess

import ldap3
import pytest
import yaml

from lab.topology import TENANTS
from tests.support.labcli import LabCli, per_worker_net

BASE = "dc=vancouver,dc=lab"


@pytest.fixture(scope="module")
def ldap_lab(tmp_path_factory):
    lab = LabCli(per_worker_net("127.202"), tmp_path_factory.mktemp("ldap") / "lab")
    up = lab.up()
    assert up.returncode == 0, up.stderr
    try:
        yield lab
    finally:
        lab.run("down")


@pytest.fixture(scope="module")
def url(ldap_lab) -> str:
    return yaml.safe_load(ldap_lab.target.read_text())["ldap"]["url"]


@pytest.fixture(scope="module")
def users(ldap_lab) -> dict:
    return json.loads((ldap_lab.target.parent / "ldap-users.json").read_text())


def ldap_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def test_users_file_maps_each_tenant_and_the_admin(ldap_lab, users):
    assert stat.S_IMODE((ldap_lab.target.parent / "ldap-users.json").stat().st_mode) == 0o600
    expected = {t.lower().replace("-", "_"): f"/root/{t}" for t in TENANTS}
    expected["vancouver_admin"] = "/root"
    assert {uid: u["tenant"] for uid, u in users.items()} == expected
    assert users["vancouver_ku"]["dn"] == f"uid=vancouver_ku,ou=Vancouver-KU,ou=people,{BASE}"
    assert users["vancouver_admin"]["dn"] == f"uid=vancouver_admin,ou=admins,{BASE}"
    assert len({u["password"] for u in users.values()}) == len(users)   # one per user


def test_ldapwhoami_right_password_binds(url, users):
    for user in users.values():
        who = ldap_tool("ldapwhoami", "-x", "-H", url, "-D", user["dn"], "-w", user["password"])
        assert who.returncode == 0, who.stderr
        assert who.stdout.strip() == f"dn:{user['dn']}"


def test_ldapwhoami_wrong_password_is_refused(url, users):
    user = users["vancouver_ku"]
    who = ldap_tool("ldapwhoami", "-x", "-H", url, "-D", user["dn"], "-w", "not-the-password")
    assert who.returncode == 49 and "Invalid credentials" in who.stderr


def test_anonymous_search_reads_uids_but_never_passwords(url, users):
    found = ldap_tool("ldapsearch", "-x", "-LLL", "-H", url, "-b", BASE, "(uid=*)",
                      "uid", "ou", "cn", "userPassword")
    assert found.returncode == 0, found.stderr
    assert sorted(ln.split(": ")[1] for ln in found.stdout.splitlines()
                  if ln.startswith("uid: ")) == sorted(users)
    assert "userPassword" not in found.stdout
    # Not even by filtering on it: the attribute is usable only to bind.
    probe = ldap_tool("ldapsearch", "-x", "-LLL", "-H", url, "-b", BASE, "(userPassword=*)")
    assert probe.returncode == 0 and probe.stdout.strip() == ""


def test_bound_user_cannot_read_passwords_either(url, users):
    user = users["vancouver_ku"]
    found = ldap_tool("ldapsearch", "-x", "-LLL", "-H", url, "-D", user["dn"], "-w",
                      user["password"], "-b", BASE, "(uid=*)", "userPassword")
    assert found.returncode == 0, found.stderr
    assert "userPassword" not in found.stdout


def test_tenant_ous_hold_one_user_each(url):
    for tenant in TENANTS:
        found = ldap_tool("ldapsearch", "-x", "-LLL", "-H", url, "-s", "one",
                          "-b", f"ou={tenant},ou=people,{BASE}", "(objectClass=*)", "uid")
        assert found.returncode == 0, found.stderr
        assert [ln for ln in found.stdout.splitlines() if ln.startswith("uid: ")] == [
            f"uid: {tenant.lower().replace('-', '_')}"]


def test_passwords_are_stored_salted_and_hashed(ldap_lab, users):
    slapcat = shutil.which("slapcat", path="/usr/sbin:/usr/bin:/sbin:/bin")
    dump = ldap_tool(slapcat, "-o", "ldif_wrap=no",
                     "-f", str(ldap_lab.run_dir / "ldap" / "slapd.conf"))
    assert dump.returncode == 0, dump.stderr
    hashes = [ln for ln in dump.stdout.splitlines() if ln.startswith("userPassword")]
    assert len(hashes) == len(users)
    # slapcat may base64-encode values ("attr:: ..."), so decode before looking.
    decoded = [base64.b64decode(h.split(":: ")[1]).decode() if ":: " in h else h.split(": ")[1]
               for h in hashes]
    assert all(v.startswith("{SSHA}") for v in decoded)
    for user in users.values():
        assert user["password"] not in dump.stdout
        assert user["password"] not in (ldap_lab.run_dir / "ldap" / "directory.ldif").read_text()


def test_login_as_datera_does_it_with_ldap3(url, users):
    """Anonymous search maps the login name to a DN; a bind with that DN checks the password."""
    server = ldap3.Server(url, connect_timeout=5)
    with ldap3.Connection(server, auto_bind=True) as anon:
        assert anon.search(BASE, "(uid=vancouver_vm)", attributes=["uid"])
        dn = anon.entries[0].entry_dn
    assert dn == users["vancouver_vm"]["dn"]
    assert ldap3.Connection(server, dn, users["vancouver_vm"]["password"]).bind()
    assert not ldap3.Connection(server, dn, "wrong-password").bind()
