"""The chaos switch's shared control: rules in one small JSON file in the lab's run dir.

    <run dir>/chaos.json   {"rules": [Rule.as_dict(), ...]}

`python -m lab chaos ...` (chaos_cli.py) and the demo's `chaos` section write it; every lab
process reads it (the supervisor hands each component its path in VANCOUVER_LAB_CHAOS):
- the HTTP core (lab/http/chaos.py) injects errors, resets and latency per service;
- the Datera data plane stops serving a VIP that a `vip-down` rule names.
Readers stat the file per decision and reparse it only when it changed, so a rule takes
effect on the next request and costs a stat when nothing changed. Rules with `until` expire
by themselves; `clear` empties the file.

Rule kinds: errors (status, rate), reset (rate), latency (ms), vip-down (vip). `service`
names an API of the HTTP core (SERVICES); `cloud` narrows an OpenStack service to one cloud.
One rule per slot (kind + service + cloud, or kind + VIP): a new rule for a slot replaces the
active one (its `replaces` names it), as setting a knob again would, so the same command
twice never stacks into a higher rate or twice the latency.
"""
import json
import os
import random
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

CONTROL_ENV = "VANCOUVER_LAB_CHAOS"
KINDS = ("errors", "reset", "latency", "vip-down")
SERVICES = ("datera", "keystone", "glance", "cinder", "nova", "neutron")
CLOUDS = ("mitaka", "newton", "pike")
VIPS = ("VIP1", "VIP2")
ERROR_STATUSES = (500, 502, 503, 504)


def control_path(run_dir: Path) -> Path:
    return Path(run_dir) / "chaos.json"


@dataclass(frozen=True)
class Rule:
    kind: str
    service: str | None = None      # errors, reset, latency
    cloud: str | None = None
    status: int | None = None       # errors
    rate: float = 1.0               # errors, reset: the share of requests hit, 0..1
    ms: int = 0                     # latency: added to every matching request
    vip: str | None = None          # vip-down: VIP1 or VIP2
    until: float | None = None      # epoch seconds; None: until cleared
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    replaces: str | None = None     # the id of the rule of the same slot it replaced

    @property
    def slot(self) -> tuple:
        """What a rule acts on: a newer rule for the same slot replaces it."""
        return (self.kind, self.vip) if self.kind == "vip-down" else \
            (self.kind, self.service, self.cloud)

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until

    def matches(self, service: str, cloud: str | None) -> bool:
        return self.service == service and (self.cloud is None or self.cloud == cloud)

    def describe(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        what = {"errors": f"HTTP {self.status} on {self.rate:.0%} of requests",
                "reset": f"connection reset on {self.rate:.0%} of requests",
                "latency": f"+{self.ms} ms per request",
                "vip-down": "portal down (login and NBD)"}[self.kind]
        where = self.vip if self.kind == "vip-down" else \
            self.service + (f" ({self.cloud})" if self.cloud else "")
        left = "until cleared" if self.until is None else \
            f"{max(0.0, self.until - now):.0f}s left"
        again = f" (replaced {self.replaces})" if self.replaces else ""
        return f"{self.id}  {self.kind:<8} {where:<16} {what}, {left}{again}"

    @classmethod
    def from_dict(cls, d: dict) -> "Rule":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def validate(rule: Rule) -> Rule:
    """ValueError with one line naming the bad field."""
    if rule.kind not in KINDS:
        raise ValueError(f"kind {rule.kind!r}: expected one of {', '.join(KINDS)}")
    if rule.kind == "vip-down":
        if rule.vip not in VIPS:
            raise ValueError(f"vip {rule.vip!r}: expected VIP1 or VIP2")
    elif rule.service not in SERVICES:
        raise ValueError(f"service {rule.service!r}: expected one of {', '.join(SERVICES)}")
    if rule.cloud is not None and rule.cloud not in CLOUDS:
        raise ValueError(f"cloud {rule.cloud!r}: expected one of {', '.join(CLOUDS)}")
    if rule.cloud is not None and rule.service == "datera":
        raise ValueError("cloud: only an OpenStack service belongs to a cloud")
    if rule.kind == "errors" and rule.status not in ERROR_STATUSES:
        raise ValueError(f"status {rule.status!r}: expected one of "
                         f"{', '.join(map(str, ERROR_STATUSES))}")
    if not 0.0 < rule.rate <= 1.0:
        raise ValueError(f"rate {rule.rate!r}: expected a share above 0 and at most 1")
    if rule.kind == "latency" and not 0 < rule.ms <= 60_000:
        raise ValueError(f"ms {rule.ms!r}: expected 1..60000")
    return rule


# ---- the file ---------------------------------------------------------------------------------

def read_rules(path: Path) -> list[Rule]:
    try:
        doc = json.loads(Path(path).read_text())
        return [Rule.from_dict(r) for r in doc.get("rules", [])]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError, AttributeError):
        return []   # a half-written file cannot happen (atomic replace); a hand-edited one can


def write_rules(path: Path, rules: list[Rule]) -> None:
    """Atomic: readers see the old rules or the new ones, never half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # 0600 like everything in the run dir (runfiles.make_private), whoever's umask wrote it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"rules": [asdict(r) for r in rules]}, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def add_rule(path: Path, rule: Rule) -> Rule:
    """Adds a valid rule (ValueError otherwise); an active rule of the same slot is replaced.
    Returns the rule as written (`replaces` set when it replaced one)."""
    validate(rule)
    now = time.time()
    rules = [r for r in read_rules(path) if r.active(now)]
    old = [r for r in rules if r.slot == rule.slot]
    if old:
        rule = replace(rule, replaces=old[-1].id)
    write_rules(path, [r for r in rules if r.slot != rule.slot] + [rule])
    return rule


def remove_rules(path: Path, ids: set[str] | None = None) -> int:
    """Removes the rules with these ids (all when None); how many were active."""
    now = time.time()
    rules = read_rules(path)
    keep = [r for r in rules if ids is not None and r.id not in ids and r.active(now)]
    write_rules(path, keep)
    return sum(1 for r in rules if r.active(now)) - len(keep)


# ---- a reader in a lab process ------------------------------------------------------------------

@dataclass
class Fault:
    """What to do to one request: wait latency_s, then reset the connection or answer status."""
    latency_s: float = 0.0
    status: int | None = None
    reset: bool = False


class Control:
    """One process's view of the rules; cheap when nothing changed (one stat)."""

    def __init__(self, path: Path | None, rng: random.Random | None = None):
        self.path = Path(path) if path else None
        self._stamp = None
        self._rules: list[Rule] = []
        self._rng = rng or random.Random()

    @classmethod
    def from_env(cls) -> "Control":
        return cls(os.environ.get(CONTROL_ENV) or None)

    def rules(self) -> list[Rule]:
        if self.path is None:
            return []
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            self._stamp, self._rules = stamp, read_rules(self.path) if stamp else []
        now = time.time()
        return [r for r in self._rules if r.active(now)]

    def http_fault(self, service: str, cloud: str | None = None) -> Fault | None:
        fault = None
        for r in self.rules():
            if r.kind == "vip-down" or not r.matches(service, cloud):
                continue
            fault = fault or Fault()
            if r.kind == "latency":
                fault.latency_s += r.ms / 1000
            elif r.kind == "reset" and self._rng.random() < r.rate:
                fault.reset = True
            elif r.kind == "errors" and fault.status is None and self._rng.random() < r.rate:
                fault.status = r.status
        return fault

    def vips_down(self) -> set[str]:
        """The VIP names (VIP1, VIP2) whose portal is down now."""
        return {r.vip for r in self.rules() if r.kind == "vip-down"}
