"""Volume types (with extra specs and private-type access) and QoS specs with their type
associations: admin-only writes under Cinder's default policy; what a type means to a
driver (extra specs, back-end QoS) and to Nova (front-end QoS)."""
import uuid

from lab.openstack import errors
from lab.openstack.caller import Caller

from .helpers import _boolish
from .records import QOS_CONSUMERS, QosSpec, VolumeType


class TypesMixin:
    def _type(self, caller: Caller, ref: str) -> VolumeType:
        """By id (or, for the volume API, by name): VolumeTypeNotFound otherwise."""
        vt = self.types.get(ref) or next((t for t in self.types.values() if t.name == ref), None)
        if vt is None or not self._type_visible(caller, vt):
            raise errors.NotFound(f"Volume type {ref} could not be found.",
                                  kind="VolumeTypeNotFound")
        return vt

    def _type_visible(self, caller: Caller, vt: VolumeType) -> bool:
        return vt.is_public or caller.is_admin or caller.project_id in vt.projects

    def get_type(self, caller: Caller, type_id: str) -> VolumeType:
        with self.lock:
            vt = self.types.get(type_id)     # shown by id only (reference §a.3)
            if vt is None or not self._type_visible(caller, vt):
                raise errors.NotFound(f"Volume type {type_id} could not be found.",
                                      kind="VolumeTypeNotFound")
            return vt

    def list_types(self, caller: Caller, is_public: str | None = None) -> list[VolumeType]:
        with self.lock:
            types = [t for t in self.types.values() if self._type_visible(caller, t)]
            if caller.is_admin and is_public is not None and is_public.lower() != "none":
                want = is_public.lower() in ("true", "1", "yes")
                types = [t for t in types if t.is_public == want]
            return sorted(types, key=lambda t: t.name)

    def create_type(self, caller: Caller, name, description=None, is_public=True,
                    extra_specs=None) -> VolumeType:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:types_manage")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise errors.BadRequest("Invalid input received: Volume type name can not be "
                                    "empty.", kind="InvalidInput")
        specs = self._check_specs(extra_specs or {})
        with self.lock:
            if any(t.name == name for t in self.types.values()):
                raise errors.Conflict(f"Volume Type {name} already exists.",
                                      kind="VolumeTypeExists")
            vt = VolumeType(id=str(uuid.uuid4()), name=name, description=description,
                            is_public=_boolish(is_public, "is_public"), extra_specs=specs)
            self.types[vt.id] = vt
            return vt

    @staticmethod
    def _check_specs(specs) -> dict:
        if not isinstance(specs, dict):
            raise errors.BadRequest("Invalid input received: extra_specs must be a dict",
                                    kind="InvalidInput")
        for k, v in specs.items():
            if not isinstance(v, (str, int, float, bool)) or not k or len(k) > 255:
                raise errors.BadRequest(f"Invalid input received: Invalid extra_spec {k}",
                                        kind="InvalidInput")
        return {k: str(v) for k, v in specs.items()}

    def update_type(self, caller: Caller, type_id: str, name=None, description=None,
                    is_public=None) -> VolumeType:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:types_manage")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if name is not None:
                vt.name = name
            if description is not None:
                vt.description = description
            if is_public is not None:
                vt.is_public = _boolish(is_public, "is_public")
            return vt

    def delete_type(self, caller: Caller, type_id: str) -> None:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:types_manage")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if any(v.volume_type_id == vt.id for v in self.volumes.values()):
                raise errors.BadRequest("Target volume type is still in use.",
                                        kind="VolumeTypeInUse")
            del self.types[vt.id]

    def set_extra_specs(self, caller: Caller, type_id: str, specs) -> dict:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:types_extra_specs")
        specs = self._check_specs(specs)
        with self.lock:
            vt = self.get_type(caller, type_id)
            vt.extra_specs.update(specs)
            return dict(specs)

    def delete_extra_spec(self, caller: Caller, type_id: str, key: str) -> None:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:types_extra_specs")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if key not in vt.extra_specs:
                raise errors.NotFound(f"Volume Type {type_id} has no extra specs with key "
                                      f"{key}.", kind="VolumeTypeExtraSpecsNotFound")
            del vt.extra_specs[key]

    def add_type_access(self, caller: Caller, type_id: str, project: str, add: bool) -> None:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:volume_type_access:addProjectAccess")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if vt.is_public:
                raise errors.BadRequest("Invalid volume type: Type access modification is not "
                                        "applicable to public volume type.",
                                        kind="InvalidVolumeType")
            if add:
                if project in vt.projects:
                    raise errors.Conflict(f"Volume type access for {type_id} / {project} "
                                          "combination already exists.")
                vt.projects.add(project)
            else:
                if project not in vt.projects:
                    raise errors.NotFound(f"Volume type access not found for {type_id} / "
                                          f"{project} combination.")
                vt.projects.discard(project)

    # ---- QoS specs ---------------------------------------------------------------------------
    def _admin_qos(self, caller: Caller) -> None:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:qos_specs_manage")

    def get_qos(self, caller: Caller, qos_id: str) -> QosSpec:
        self._admin_qos(caller)
        with self.lock:
            q = self.qos.get(qos_id)
            if q is None:
                raise errors.NotFound(f"Quality of service specification {qos_id} could not "
                                      "be found.", kind="QoSSpecsNotFound")
            return q

    def list_qos(self, caller: Caller) -> list[QosSpec]:
        self._admin_qos(caller)
        with self.lock:
            return sorted(self.qos.values(), key=lambda q: q.name)

    def create_qos(self, caller: Caller, body: dict) -> QosSpec:
        """The flat body of POST /qos-specs: every key but name and consumer is a spec."""
        self._admin_qos(caller)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise errors.BadRequest("Please specify a name for QoS specs.", kind="InvalidInput")
        consumer = body.get("consumer", "back-end")
        if consumer not in QOS_CONSUMERS:
            raise errors.BadRequest(f"Invalid input received: Valid consumer of QoS specs are: "
                                    f"{list(QOS_CONSUMERS)}", kind="InvalidQoSSpecs")
        specs = {k: v for k, v in body.items() if k not in ("name", "consumer")}
        self._check_qos_values(specs)
        with self.lock:
            if any(q.name == name for q in self.qos.values()):
                raise errors.Conflict(f"QoS Specs {name} already exists.", kind="QoSSpecsExists")
            q = QosSpec(id=str(uuid.uuid4()), name=name, consumer=consumer, specs=specs)
            self.qos[q.id] = q
            return q

    @staticmethod
    def _check_qos_values(specs: dict) -> None:
        for k, v in specs.items():
            if not isinstance(v, str):
                raise errors.BadRequest(f"Invalid input for field/attribute {k}. Value: {v}. "
                                        f"{v!r} is not of type 'string'", kind="ValidationError")

    def set_qos_keys(self, caller: Caller, qos_id: str, specs: dict) -> dict:
        if not isinstance(specs, dict):
            raise errors.BadRequest("Missing required element 'qos_specs' in request body.")
        q = self.get_qos(caller, qos_id)
        specs = dict(specs)
        consumer = specs.pop("consumer", None)
        if consumer is not None and consumer not in QOS_CONSUMERS:
            raise errors.BadRequest(f"Invalid input received: Valid consumer of QoS specs are: "
                                    f"{list(QOS_CONSUMERS)}", kind="InvalidQoSSpecs")
        self._check_qos_values(specs)
        with self.lock:
            if consumer:
                q.consumer = consumer
            q.specs.update(specs)
        return dict(specs, **({"consumer": consumer} if consumer else {}))

    def delete_qos_keys(self, caller: Caller, qos_id: str, keys) -> None:
        q = self.get_qos(caller, qos_id)
        if not isinstance(keys, list):
            raise errors.BadRequest("Missing required element 'keys' in request body.")
        with self.lock:
            for k in keys:
                if k not in q.specs:
                    raise errors.NotFound(f"QoS spec {qos_id} has no key {k}.",
                                          kind="QoSSpecsKeyNotFound")
            for k in keys:
                del q.specs[k]

    def delete_qos(self, caller: Caller, qos_id: str, force: bool = False) -> None:
        q = self.get_qos(caller, qos_id)
        with self.lock:
            users = [t for t in self.types.values() if t.qos_specs_id == q.id]
            if users and not force:
                raise errors.BadRequest(f"QoS Specs {qos_id} is still associated with entities.",
                                        kind="QoSSpecsInUse")
            for t in users:
                t.qos_specs_id = None
            del self.qos[q.id]

    def associate_qos(self, caller: Caller, qos_id: str, type_id: str | None) -> None:
        q = self.get_qos(caller, qos_id)
        if not type_id:
            raise errors.BadRequest("Volume Type id must not be None.")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if vt.qos_specs_id and vt.qos_specs_id != q.id:
                raise errors.BadRequest(f"Type {vt.id} is already associated with another qos "
                                        f"specs: {vt.qos_specs_id}",
                                        kind="InvalidVolumeType")
            vt.qos_specs_id = q.id

    def disassociate_qos(self, caller: Caller, qos_id: str, type_id: str | None) -> None:
        q = self.get_qos(caller, qos_id)
        if not type_id:
            raise errors.BadRequest("Volume Type id must not be None.")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if vt.qos_specs_id == q.id:
                vt.qos_specs_id = None

    def disassociate_all_qos(self, caller: Caller, qos_id: str) -> None:
        q = self.get_qos(caller, qos_id)
        with self.lock:
            for t in self.types.values():
                if t.qos_specs_id == q.id:
                    t.qos_specs_id = None

    def qos_associations(self, caller: Caller, qos_id: str) -> list[VolumeType]:
        q = self.get_qos(caller, qos_id)
        with self.lock:
            return [t for t in self.types.values() if t.qos_specs_id == q.id]

    def _specs_of(self, type_id: str | None) -> tuple[dict, dict, VolumeType | None]:
        """(extra specs, back-end QoS keys, type) the driver sees for a type."""
        vt = self.types.get(type_id) if type_id else None
        if vt is None:
            return {}, {}, None
        q = self.qos.get(vt.qos_specs_id) if vt.qos_specs_id else None
        qos = dict(q.specs) if q and q.consumer in ("back-end", "both") else {}
        return dict(vt.extra_specs), qos, vt

    def front_end_qos(self, type_id: str | None) -> dict | None:
        vt = self.types.get(type_id) if type_id else None
        q = self.qos.get(vt.qos_specs_id) if vt and vt.qos_specs_id else None
        return dict(q.specs) if q and q.consumer in ("front-end", "both") else None

    def _qos_of(self, type_id: str | None) -> QosSpec | None:
        vt = self.types.get(type_id) if type_id else None
        return self.qos.get(vt.qos_specs_id) if vt and vt.qos_specs_id else None
