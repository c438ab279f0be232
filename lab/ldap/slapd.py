"""Debian's slapd as a lab component: its config, its database, its command line, its health.

slapd runs in the foreground (`-d 0`), so the lab supervisor owns the process and its log; the
mdb database lives in the run dir and is rebuilt with slapadd on every start.
"""
import os
import subprocess
from pathlib import Path

from lab import topology
from lab.ldap.directory import LdapUser, ldif

SCHEMAS = ("core", "cosine", "inetorgperson")
MODULE_DIR = "/usr/lib/ldap"

# Anonymous clients may find users (to map a login name to a DN) but never see a password;
# a password is usable only to bind as its own entry. Nobody may write: the directory is
# loaded offline with slapadd.
ACL = """\
access to attrs=userPassword
    by anonymous auth
    by * none
access to attrs=entry,objectClass,uid,ou,cn,dc
    by * read
access to *
    by * none
"""


def url(address: str) -> str:
    return f"ldap://{address}:{topology.LDAP_PORT}"


def slapd_conf(work: Path) -> str:
    includes = "".join(f"include /etc/ldap/schema/{s}.schema\n" for s in SCHEMAS)
    return (f"{includes}"
            f"modulepath {MODULE_DIR}\n"
            "moduleload back_mdb\n"
            f"pidfile {work / 'slapd.pid'}\n"
            f"argsfile {work / 'slapd.args'}\n"
            "database mdb\n"
            # mdb maps its whole maximum size; the files stay sparse, 16 MiB is plenty.
            "maxsize 16777216\n"
            f'suffix "{topology.LDAP_BASE_DN}"\n'
            f"directory {work / 'db'}\n"
            "index uid eq\n"
            f"{ACL}")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def prepare(work: Path, users: list[LdapUser], slapadd: str) -> Path:
    """Writes slapd.conf and loads a fresh database; returns the config path."""
    (work / "db").mkdir(parents=True, exist_ok=True)
    conf = work / "slapd.conf"
    _write_private(conf, slapd_conf(work))
    data = work / "directory.ldif"
    _write_private(data, ldif(users))
    proc = subprocess.run([slapadd, "-q", "-f", str(conf), "-l", str(data)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}")
        raise RuntimeError(f"slapadd failed: {last.splitlines()[-1]}")
    return conf


def argv(slapd: str, conf: Path, address: str) -> list[str]:
    # -d 0: stay in the foreground without debug output; -s 0: nothing to syslog.
    return [slapd, "-f", str(conf), "-h", url(address) + "/", "-d", "0", "-s", "0"]


def healthy(address: str) -> bool:
    """An anonymous base search answers."""
    import ldap3  # only the supervisor and `status` need it, and only here
    server = ldap3.Server(url(address), connect_timeout=1)
    try:
        with ldap3.Connection(server, auto_bind=True, receive_timeout=2) as conn:
            return conn.search(topology.LDAP_BASE_DN, "(objectClass=*)",
                               search_scope=ldap3.BASE, attributes=["dc"])
    except ldap3.core.exceptions.LDAPException:
        return False
