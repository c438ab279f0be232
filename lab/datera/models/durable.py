"""What of the Datera model survives a restart, and how it comes back (issue 13 item 1).

Saved (lab/store.py, <data_dir>/datera.db): tenants (with the lab's tenant QoS), users other
than the configured admin (whose password comes from the config each start), app instances
with everything under them (storage instances, IQNs, ACLs, CHAP, volumes, performance
policies, snapshots), initiators, initiator groups, IP pools, the event log, and the ids of the
system and node. Not saved: sessions — a restarted DSP forgets its logins, clients get 401 and
log in again (dfs_sdk does so by itself). Volume and snapshot bytes already live in files under
the data directory; on load the data plane reopens them (contract.DataPlaneHooks), with each
volume's online state and QoS, and each tenant's cap.
"""
import itertools

from .events import EventLog

SEQ_WIDTH = 12   # event keys: zero-padded sequence numbers, so "below the floor" is a string test


def _by_tenant(store: dict) -> dict:
    return {f"{t}\n{k}": x for t, objs in store.items() for k, x in objs.items()}


def _tenant_keyed(saved: dict) -> dict:
    out: dict = {}
    for key, obj in saved.items():
        tenant, name = key.split("\n", 1)
        out.setdefault(tenant, {})[name] = obj
    return out


class DurableState:
    """Binds one DateraModel to one Store: load() once before serving, sync() after every
    request that may change state (and now and then for changes no request made)."""

    def __init__(self, model, store):
        self.model = model
        self.store = store
        self._event_seq = -1   # the newest event already written

    def snapshot(self) -> dict:
        m = self.model
        return {
            "system": {"ids": {"system_uuid": m.system_uuid, "node_uuid": m.node_uuid,
                               "last_ts": m._last_ts}},
            "tenants": dict(m.tenants),
            "users": {k: u for k, u in m.users.items() if k != m.config.admin_user},
            "app_instances": {ai.id: ai for ais in m._ais.values() for ai in ais.values()},
            "initiators": _by_tenant(m._initiators),
            "initiator_groups": _by_tenant(m._groups),
            "ip_pools": _by_tenant(m._pools),
        }

    def _new_events(self) -> tuple[dict, str]:
        log: EventLog = self.model.events
        new, oldest = {}, None
        for dq in log._by_kind.values():
            if dq:
                oldest = dq[0].seq if oldest is None else min(oldest, dq[0].seq)
            for e in reversed(dq):   # newest first: stop at the first one already written
                if e.seq <= self._event_seq:
                    break
                new[f"{e.seq:0{SEQ_WIDTH}d}"] = e
        floor = f"{oldest:0{SEQ_WIDTH}d}" if oldest is not None else ""
        return new, floor

    def sync(self) -> int:
        new, floor = self._new_events()
        n = self.store.sync(self.snapshot(), {"events": (new, floor)})
        if new:
            self._event_seq = max(e.seq for e in new.values())
        return n

    def load(self) -> int:
        """Restores what the store holds into a freshly built model; returns the number of
        app instances restored. The data plane (hooks) must be bound already."""
        saved = self.store.load()
        if not saved:
            return 0
        m = self.model
        ids = saved.get("system", {}).get("ids")
        if ids:
            m.system_uuid, m.node_uuid = ids["system_uuid"], ids["node_uuid"]
            m._last_ts = ids["last_ts"]
        m.tenants.update(saved.get("tenants", {}))
        for key, user in saved.get("users", {}).items():
            m.users.setdefault(key, user)
        m._initiators = _tenant_keyed(saved.get("initiators", {}))
        m._groups = _tenant_keyed(saved.get("initiator_groups", {}))
        m._pools.update(_tenant_keyed(saved.get("ip_pools", {})))
        events = list(saved.get("events", {}).values())
        for e in sorted(events, key=lambda e: e.seq):
            m.events._by_kind[e.kind].append(e)
        if events:
            top = max(e.seq for e in events)
            m.events._seq = itertools.count(top + 1)
            self._event_seq = top
        ais = list(saved.get("app_instances", {}).values())
        for ai in ais:
            m._register_ai(ai)   # indexes (IQN, volume uuid) and the data plane's files + QoS
        for t in m.tenants.values():
            if any(t.qos.values()):
                m._hook("tenant_qos", t.path, dict(t.qos))
        return len(ais)
