"""The cinder-scheduler: which backend a volume lands on, as Cinder's FilterScheduler with its
CapabilitiesFilter decides it (cinder/scheduler/filters/capabilities_filter.py and
extra_specs_ops.py, the same semantics in 8.0.0, 9.0.0 and 11.0.0).

Every backend reports its driver's stats (the driver's `volume_stats()`: volume_backend_name,
vendor_name, storage_protocol, QoS_support, ...). A volume type's extra specs are matched
against them: an unscoped key or a `capabilities:` key is a requirement, read with the
operators of extra_specs_ops (`<is> True`, `>=`, `<in>`, `<or>`, `s==`...; anything else is a
plain string compare); a key with another scope (`DF:replica_count`, `qos:...`) is a vendor
spec the filter ignores. No backend passing: NoValidBackend, the volume `error` with a user
message (messages.py). A volume from a snapshot or a clone may land only on its source's
backend (Cinder sends those to the source's host: `snapshot_same_host`, resource_backend).
"""
import operator

# strutils.bool_from_string's truthy words; everything else is False.
_TRUE = ("1", "t", "true", "on", "y", "yes")


def _bool(text) -> bool:
    return str(text).strip().lower() in _TRUE


_OPS = {"=": lambda x, y: float(x) >= float(y),
        "<in>": lambda x, y: y in x,
        "<is>": lambda x, y: _bool(x) is _bool(y),
        "==": lambda x, y: float(x) == float(y),
        "!=": lambda x, y: float(x) != float(y),
        ">=": lambda x, y: float(x) >= float(y),
        "<=": lambda x, y: float(x) <= float(y),
        "s==": operator.eq, "s!=": operator.ne, "s<": operator.lt, "s<=": operator.le,
        "s>": operator.gt, "s>=": operator.ge}


def match(value, req) -> bool:
    """extra_specs_ops.match: does a reported capability `value` satisfy the spec `req`?"""
    if req is None:
        return value is None
    words = str(req).split()
    op = words.pop(0) if words else None
    method = _OPS.get(op)
    if op != "<or>" and not method:
        return value == req                # strictly: a bool capability needs `<is> True`
    if value is None:
        return False
    if op == "<or>":                       # <or> v1 <or> v2 ...
        while words:
            if words.pop(0) == str(value):
                return True
            if not words:
                break
            words.pop(0)                   # the next <or>
        return False
    try:
        return bool(words) and bool(method(value, words[0]))
    except (ValueError, TypeError):
        return False


def satisfies(capabilities: dict, extra_specs: dict) -> bool:
    """CapabilitiesFilter._satisfies_extra_specs."""
    for key, req in (extra_specs or {}).items():
        scope = key.split(":")
        if len(scope) > 1 and scope[0] != "capabilities":
            continue                       # a vendor's scoped spec: not the filter's business
        if scope[0] == "capabilities":
            scope = scope[1:]
        cap = capabilities
        for part in scope:
            try:
                cap = cap[part]
            except (TypeError, KeyError):
                return False               # the backend does not report it
        if not any(match(v, req) for v in (cap if isinstance(cap, list) else [cap])):
            return False
    return True


class SchedulerMixin:
    def capabilities(self, backend: str) -> dict:
        """What the backend's cinder-volume reports to the scheduler (its driver's stats)."""
        stats = dict(self.drivers[backend].volume_stats())
        stats.setdefault("pool_name", self.drivers[backend].pool)
        return stats

    def _schedule(self, vt, size_gib: int, only: str | None = None) -> str | None:
        """The backend for a volume of type `vt` (None: untyped); None when no backend passes.
        `only` restricts the choice to one backend (a snapshot's or a source volume's)."""
        specs = vt.extra_specs if vt else {}
        candidates = [only] if only is not None else list(self.drivers)
        passing = []
        for name in candidates:
            caps = self.capabilities(name)
            if not satisfies(caps, specs):
                continue
            free = caps.get("free_capacity_gb")
            if isinstance(free, (int, float)) and not caps.get("thin_provisioning_support") \
                    and size_gib > free:
                continue                   # CapacityFilter, thick backends only
            passing.append(name)
        if not passing:
            return None
        # The lab's weigher: the default backend (ceph: the demo's "volume on ceph") when it
        # passes, else the first passing backend in the configured order.
        return self.default_backend if self.default_backend in passing else passing[0]
