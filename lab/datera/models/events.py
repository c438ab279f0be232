"""The event log (/events/system and /events/user): bounded, so an endless demo stays small."""
import itertools
import time
import uuid
from collections import deque
from dataclasses import dataclass

SYSTEM = "system"
USER = "user"
MAX_EVENTS = 5000   # per kind; the oldest are dropped first


@dataclass
class Event:
    uuid: str
    kind: str
    code: str
    message: str
    severity: str
    tenant: str
    object_path: str
    time: float
    seq: int

    @property
    def path(self) -> str:
        return f"/events/{self.uuid}"

    def to_dict(self) -> dict:
        ts = int(self.time * 1000)
        return {"path": self.path, "uuid": self.uuid, "id": self.uuid, "type": self.kind,
                "code": self.code, "message": self.message, "description": self.message,
                "severity": self.severity, "tenant": self.tenant,
                "object_path": self.object_path, "time": ts, "timestamp": ts,
                "last_seen_ts": ts, "repeat_count": 1, "context": "", "debug": ""}


class EventLog:
    def __init__(self, clock=time.time):
        self._clock = clock
        self._seq = itertools.count()
        self._by_kind = {SYSTEM: deque(maxlen=MAX_EVENTS), USER: deque(maxlen=MAX_EVENTS)}

    def record(self, kind: str, code: str, message: str, *, tenant: str, object_path: str = "",
               severity: str = "info") -> Event:
        ev = Event(uuid=str(uuid.uuid4()), kind=kind, code=code, message=message,
                   severity=severity, tenant=tenant, object_path=object_path,
                   time=self._clock(), seq=next(self._seq))
        self._by_kind[kind].append(ev)
        return ev

    def list(self, kind: str | None = None) -> list[Event]:
        kinds = [kind] if kind else list(self._by_kind)
        out = [e for k in kinds for e in self._by_kind[k]]
        out.sort(key=lambda e: e.seq)
        return out

    def find(self, event_uuid: str) -> Event | None:
        return next((e for e in self.list() if e.uuid == event_uuid), None)
