"""Prints an apt sources.list with deb and deb-src lines for the machine's own Debian archives.

Reads /etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources} (one-line and deb822
formats) and keeps the entries whose suites belong to this release (VERSION_CODENAME of
/etc/os-release, e.g. bookworm, bookworm-updates, bookworm-security): third-party repositories
(cloud SDKs, nodesource) ship no source indexes. Used by build.sh; no mirror is hard-coded.
"""
import glob
import re
import sys


def codename() -> str:
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    sys.exit("debsrc: no VERSION_CODENAME in /etc/os-release")


def ours(suite: str, cn: str) -> bool:
    return suite == cn or suite.startswith(cn + "-") or suite.startswith(cn + "/")


def one_line(path: str, cn: str):
    for line in open(path):
        m = re.match(r"\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)", line)
        if m and ours(m.group(3), cn):
            rest = f"{m.group(1) or ''}{m.group(2)} {m.group(3)} {m.group(4).split('#')[0].strip()}"
            yield from (f"deb {rest}", f"deb-src {rest}")


def deb822(path: str, cn: str):
    for para in re.split(r"\n\s*\n", open(path).read()):
        fields = {}
        for line in para.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        opts = f"[signed-by={fields['signed-by']}] " if fields.get("signed-by", "").startswith("/") else ""
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                if ours(suite, cn):
                    rest = f"{opts}{uri} {suite} {fields.get('components', 'main')}"
                    yield from (f"deb {rest}", f"deb-src {rest}")


def main() -> None:
    cn = codename()
    lines = []
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            lines += one_line(path, cn)
        except FileNotFoundError:
            pass
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        lines += deb822(path, cn)
    if not lines:
        sys.exit(f"debsrc: no Debian {cn} entries in the machine's apt sources")
    print("\n".join(dict.fromkeys(lines)))


if __name__ == "__main__":
    main()
