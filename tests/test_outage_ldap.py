"""The outage machinery knows the LDAP directory Datera checks `remote_server` logins
against (fixtures/outage/probes.py `ldap` entry), without a lab: a directory that does not
answer is down for the probe; the lab's Datera refusal of a directory login it could not
check is read by fixtures/datera.py as the directory's outage (not wrong credentials), and
the classifier finds the LDAP probe by the URL that refusal names. A live case (slapd killed
mid-run, end to end) is not in the suite yet: see issue 13's note."""
import asyncio
import socket

import pytest

from fixtures.datera import DateraError, _DIRECTORY_DOWN
from fixtures.outage.classify import classify
from fixtures.outage.probes import Probe, probe_for_error, probes_of
from fixtures.target import Target
from lab.datera.ldapauth import Directory
from lab.datera.models import AuthFailed


@pytest.fixture
def closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"ldap://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def ldap_probe(tmp_path, closed_url):
    (tmp_path / "target.yaml").write_text(
        f"kind: real\nldap:\n  url: {closed_url}\n  base_dn: dc=example,dc=org\n"
        "  users: users.json\n")
    (tmp_path / "users.json").write_text("{}")
    probes = [p for p in probes_of(Target.load(tmp_path / "target.yaml"))
              if p.platform == "ldap"]
    assert len(probes) == 1
    return probes[0]


def test_a_directory_that_does_not_answer_is_down_for_the_probe(ldap_probe, closed_url):
    assert (ldap_probe.label, ldap_probe.endpoint) == ("LDAP directory", closed_url)
    assert ldap_probe.healthy() == (False, "connection refused")


def test_a_login_datera_could_not_check_is_the_directory_outage(ldap_probe, closed_url):
    directory = Directory({"corp": {"url": closed_url, "base_dn": "dc=example,dc=org"}})
    with pytest.raises(AuthFailed) as refused:
        asyncio.run(directory.authenticate("corp", "alice", "secret-pw"))
    m = _DIRECTORY_DOWN.search(str(refused.value))
    assert m and m.group(1) == closed_url, str(refused.value)
    # fixtures.datera.connect's one line for it; the classifier maps it to the LDAP probe.
    err = DateraError(f"directory {m.group(1)} is unreachable: Datera login as 'alice' "
                      "through directory 'corp' at 127.0.7.10 failed")
    found = classify(err)
    assert found is not None and found.reason == "connection failed"
    assert found.addresses[0] == ("127.0.0.1", int(closed_url.rsplit(":", 1)[1]))
    datera = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", lambda: None)
    assert probe_for_error([datera, ldap_probe], found.addresses) is ldap_probe


def test_wrong_directory_credentials_stay_a_failure():
    err = DateraError("Datera https://x:7718: login as 'alice' through directory 'corp' "
                      "refused (wrong credentials)")
    assert classify(err) is None


def test_a_directory_that_accepts_but_never_answers_is_down_for_the_probe(tmp_path):
    """A stopped slapd (SIGSTOP): the kernel completes the connection, the bind gets no
    answer. The probe's receive timeout must be whole seconds (ldap3 packs it for
    SO_RCVTIMEO as integers): a float made ldap3 raise struct.error, which the probe read as
    an answer, so a stopped directory was up."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)   # never accepted: no answer ever comes
        url = f"ldap://127.0.0.1:{listener.getsockname()[1]}"
        (tmp_path / "target.yaml").write_text(
            f"kind: real\nldap:\n  url: {url}\n  base_dn: dc=example,dc=org\n"
            "  users: users.json\n")
        (tmp_path / "users.json").write_text("{}")
        probe, = [p for p in probes_of(Target.load(tmp_path / "target.yaml"))
                  if p.platform == "ldap"]
        assert probe.healthy() == (False, "timed out")
