"""User messages (the messages API, microversion 3.3, Newton on): what a tenant may read about
an asynchronous failure, written by the scheduler and the volume manager.

Sources: Newton (9.0.0) cinder/message/defined_messages.py, event ids of 6 digits
with the text looked up by event id; Pike (11.0.0) cinder/message/message_field.py, event ids
`VOLUME_<resource>_<action>_<detail>` and user_message "<action>:<detail>"
(api/v3/messages.py _build_user_message). Messages live message_ttl (2592000 s) by default.
Mitaka has no messages API: nothing is recorded there.
"""
import time
import uuid

from lab.openstack import errors
from lab.openstack.caller import Caller
from lab.openstack.microversion import Microversion

from .records import now_iso

MESSAGE_TTL_S = 2592000
# kind -> (Newton's event id and text, Pike's (action id, text), (detail id, text)). The lab
# writes the one message both releases write: the scheduler's NoValidHost/NoValidBackend.
_EVENTS = {
    "no_valid_backend": (
        ("000002", "No storage could be allocated for this volume request. You may be able to "
                   "try another size or volume type."),
        ("001", "schedule allocate volume"),
        ("003", "Could not find any available weighted backend.")),
    # volume/manager.py copy_volume_to_image's failure: Pike only (Newton writes none)
    "upload_failed": (
        None,
        ("003", "copy volume to image"),
        ("004", "Failed to upload volume to image at image service.")),
}


class MessagesMixin:
    def _user_message(self, project_id: str, resource_uuid: str, kind: str) -> None:
        """Records the message Cinder's service writes for `kind` (call under the lock)."""
        if self.profile.cinder_max < Microversion(3, 3):
            return
        newton, action, detail = _EVENTS[kind]
        if self.profile.cinder_max < Microversion(3, 16):      # Newton's defined_messages
            if newton is None:
                return
            event_id, text = newton
        else:
            event_id = f"VOLUME_VOLUME_{action[0]}_{detail[0]}"
            text = f"{action[1]}:{detail[1]}"
        now = time.time()
        msg = {"id": str(uuid.uuid4()), "project_id": project_id, "event_id": event_id,
               "user_message": text, "message_level": "ERROR", "resource_type": "VOLUME",
               "resource_uuid": resource_uuid, "created_at": now_iso(now),
               "expires_at": now_iso(now + MESSAGE_TTL_S),
               "request_id": f"req-{uuid.uuid4()}"}
        self.messages[msg["id"]] = msg

    def list_messages(self, caller: Caller) -> list[dict]:
        with self.lock:
            return sorted((m for m in self.messages.values()
                           if caller.is_admin or m["project_id"] == caller.project_id),
                          key=lambda m: m["created_at"], reverse=True)

    def get_message(self, caller: Caller, message_id: str) -> dict:
        with self.lock:
            m = self.messages.get(message_id)
            if m is None or (not caller.is_admin and m["project_id"] != caller.project_id):
                raise errors.NotFound(f"Message {message_id} could not be found.",
                                      kind="MessageNotFound")
            return m

    def delete_message(self, caller: Caller, message_id: str) -> None:
        with self.lock:
            self.get_message(caller, message_id)
            del self.messages[message_id]
