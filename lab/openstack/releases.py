"""Release profiles: what Mitaka, Newton and Pike advertise and where they behave differently.

One frozen `ReleaseProfile` per release holds every switch of reference openstack-api §(g) and
builds the version discovery documents of §(b.3). Services read switches from `cloud.profile`
and never test the release name themselves, so a behaviour difference is found here by name.
"""
from dataclasses import dataclass

from .microversion import Microversion

RELEASES = ("mitaka", "newton", "pike")

_DOCS_LINK = {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}


@dataclass(frozen=True)
class ReleaseProfile:
    name: str
    # service release numbers (reference §0), shown nowhere on the wire but in logs and docs
    service_versions: dict
    # keystone
    keystone_v3_id: str
    keystone_v3_updated: str
    keystone_v2_status: str
    keystone_v2_updated: str
    # nova
    nova_min: Microversion
    nova_max: Microversion
    nova_honours_new_header: bool        # OpenStack-API-Version arrived in 2.27 (Newton)
    nova_networks_required: bool         # `networks` in server create required from 2.37
    nova_network_quota_keys: bool        # fixed_ips, floating_ips, ... in quota sets (< 2.36)
    nova_quota_force_accepted: bool      # bug 1733886: the lab models the fixed point releases
    nova_embedded_flavor: bool           # server.flavor embedded from 2.47
    nova_bdm_tag: bool                   # BDM/network `tag` at the negotiated max (2.42+)
    nova_server_tags: bool               # 2.26
    nova_tags_at_create: bool            # 2.52
    # cinder
    cinder_min: Microversion
    cinder_max: Microversion
    cinder_v1_status: str
    cinder_v1_updated: str
    cinder_v2_status: str
    cinder_v2_updated: str
    # glance
    glance_versions: tuple               # (id, status), newest first
    glance_default_visibility: str
    glance_visibilities: tuple
    glance_members_need_shared: bool     # 14.0.0+: only `shared` images have members
    glance_disk_formats: tuple           # [image_format] disk_formats default (glance/common/config.py)
    # the in-tree Datera Cinder driver of the release
    datera_driver_version: str
    datera_fast_retype: bool
    # cinder-volume's start cleans up work of the workers table (Newton's HA A/A cleanup,
    # cinder/volume/manager.py _do_cleanup): a volume or snapshot `creating` goes to `error`;
    # Mitaka's init_host leaves it `creating`
    cinder_cleans_creating_on_start: bool

    # -- switches derived from microversions ----------------------------------------------

    @property
    def cinder_attachments_api(self) -> bool:
        return self.cinder_max >= Microversion(3, 27)

    # -- version discovery documents (§b.3); base = "http://host:port" as the client used ----

    def keystone_v3_entry(self, base: str) -> dict:
        return {"id": self.keystone_v3_id, "status": "stable", "updated": self.keystone_v3_updated,
                "links": [{"rel": "self", "href": f"{base}/v3/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.identity-v3+json"}]}

    def keystone_root(self, base: str) -> dict:
        v2 = {"id": "v2.0", "status": self.keystone_v2_status, "updated": self.keystone_v2_updated,
              "links": [{"rel": "self", "href": f"{base}/v2.0/"}, _DOCS_LINK],
              "media-types": [{"base": "application/json",
                               "type": "application/vnd.openstack.identity-v2.0+json"}]}
        return {"versions": {"values": [self.keystone_v3_entry(base), v2]}}

    def nova_v21_entry(self, base: str) -> dict:
        return {"id": "v2.1", "status": "CURRENT", "version": str(self.nova_max),
                "min_version": str(self.nova_min), "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": f"{base}/v2.1/"}]}

    @staticmethod
    def nova_v20_entry(base: str) -> dict:
        return {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
                "updated": "2011-01-21T11:33:21Z",
                "links": [{"rel": "self", "href": f"{base}/v2/"}]}

    def nova_root(self, base: str) -> dict:
        return {"versions": [self.nova_v20_entry(base), self.nova_v21_entry(base)]}

    def nova_v20(self, base: str) -> dict:
        """GET /v2/: the legacy v2 endpoint's document (Nova serves v2 through v2.1's code)."""
        entry = self.nova_v20_entry(base)
        entry["links"] = entry["links"] + [_DOCS_LINK]
        entry["media-types"] = [{"base": "application/json",
                                 "type": "application/vnd.openstack.compute+json;version=2"}]
        return {"version": entry}

    def nova_v21(self, base: str) -> dict:
        entry = self.nova_v21_entry(base)
        entry["links"] = entry["links"] + [_DOCS_LINK]
        entry["media-types"] = [{"base": "application/json",
                                 "type": "application/vnd.openstack.compute+json;version=2.1"}]
        return {"version": entry}

    def _cinder_entry(self, base: str, major: int) -> dict:
        status, updated, version, min_version = {
            1: (self.cinder_v1_status, self.cinder_v1_updated, "", ""),
            2: (self.cinder_v2_status, self.cinder_v2_updated, "", ""),
            3: ("CURRENT", "2016-02-08T12:20:21Z", str(self.cinder_max), str(self.cinder_min)),
        }[major]
        return {"id": f"v{major}.0", "status": status, "version": version,
                "min_version": min_version, "updated": updated,
                "links": [_DOCS_LINK, {"rel": "self", "href": f"{base}/v{major}/"}],
                "media-types": [{"base": "application/json",
                                 "type": f"application/vnd.openstack.volume+json;version={major}"}]}

    # The lab deploys Cinder as with enable_v1_api = False (a documented cinder.conf option;
    # Cinder's versions controller then drops v1.0 from the root document): v1 is neither
    # served nor advertised; v2 and v3 are both served (cinder/urls.py).
    CINDER_SERVED = (2, 3)

    def cinder_root(self, base: str) -> dict:
        return {"versions": [self._cinder_entry(base, m) for m in self.CINDER_SERVED]}

    def cinder_version(self, base: str, major: int) -> dict:
        """GET /v3/ (or /v2/): a one-element `versions` list, not a `version` object."""
        return {"versions": [self._cinder_entry(base, major)]}

    def glance_root(self, base: str) -> dict:
        return {"versions": [{"id": vid, "status": status,
                              "links": [{"rel": "self", "href": f"{base}/{vid.split('.')[0]}/"}]}
                             for vid, status in self.glance_versions]}

    @staticmethod
    def neutron_root(base: str) -> dict:
        return {"versions": [{"id": "v2.0", "status": "CURRENT",
                              "links": [{"rel": "self", "href": f"{base}/v2.0/"}]}]}


def _glance(current: int, v1_status: str) -> tuple:
    v2 = [(f"v2.{n}", "CURRENT" if n == current else "SUPPORTED") for n in range(current, -1, -1)]
    return tuple(v2 + [("v1.1", v1_status), ("v1.0", v1_status)])


# Glance's default disk formats: vhdx arrives in 13.0.0, ploop in 15.0.0 (glance/common/config.py)
GLANCE_DISK_FORMATS_12 = ("ami", "ari", "aki", "vhd", "vmdk", "raw", "qcow2", "vdi", "iso")
GLANCE_DISK_FORMATS_13 = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi",
                          "iso")
GLANCE_DISK_FORMATS_15 = GLANCE_DISK_FORMATS_13 + ("ploop",)

MV = Microversion.parse

PROFILES: dict[str, ReleaseProfile] = {
    "mitaka": ReleaseProfile(
        name="mitaka",
        service_versions={"keystone": "9.0.0", "nova": "13.0.0", "cinder": "8.0.0",
                          "glance": "12.0.0"},
        keystone_v3_id="v3.6", keystone_v3_updated="2016-04-04T00:00:00Z",
        keystone_v2_status="stable", keystone_v2_updated="2014-04-17T00:00:00Z",
        nova_min=MV("2.1"), nova_max=MV("2.25"), nova_honours_new_header=False,
        nova_networks_required=False, nova_network_quota_keys=True,
        nova_quota_force_accepted=True, nova_embedded_flavor=False, nova_bdm_tag=False,
        nova_server_tags=False, nova_tags_at_create=False,
        cinder_min=MV("3.0"), cinder_max=MV("3.0"),
        cinder_v1_status="SUPPORTED", cinder_v1_updated="2014-06-28T12:20:21Z",
        cinder_v2_status="SUPPORTED", cinder_v2_updated="2014-06-28T12:20:21Z",
        glance_versions=_glance(3, "SUPPORTED"), glance_default_visibility="private",
        glance_visibilities=("public", "private"),
        glance_disk_formats=GLANCE_DISK_FORMATS_12, glance_members_need_shared=False,
        datera_driver_version="2.0", datera_fast_retype=False,
        cinder_cleans_creating_on_start=False,
    ),
    "newton": ReleaseProfile(
        name="newton",
        service_versions={"keystone": "10.0.0", "nova": "14.0.0", "cinder": "9.0.0",
                          "glance": "13.0.0"},
        keystone_v3_id="v3.7", keystone_v3_updated="2016-10-06T00:00:00Z",
        keystone_v2_status="deprecated", keystone_v2_updated="2016-08-04T00:00:00Z",
        nova_min=MV("2.1"), nova_max=MV("2.38"), nova_honours_new_header=True,
        nova_networks_required=True, nova_network_quota_keys=False,
        nova_quota_force_accepted=True, nova_embedded_flavor=False, nova_bdm_tag=False,
        nova_server_tags=True, nova_tags_at_create=False,
        cinder_min=MV("3.0"), cinder_max=MV("3.15"),
        cinder_v1_status="DEPRECATED", cinder_v1_updated="2016-05-02T20:25:19Z",
        cinder_v2_status="SUPPORTED", cinder_v2_updated="2014-06-28T12:20:21Z",
        glance_versions=_glance(4, "DEPRECATED"), glance_default_visibility="private",
        glance_visibilities=("public", "private"),
        glance_disk_formats=GLANCE_DISK_FORMATS_13, glance_members_need_shared=False,
        datera_driver_version="2.2", datera_fast_retype=False,
        cinder_cleans_creating_on_start=True,
    ),
    "pike": ReleaseProfile(
        name="pike",
        service_versions={"keystone": "12.0.0", "nova": "16.0.0", "cinder": "11.0.0",
                          "glance": "15.0.0"},
        keystone_v3_id="v3.8", keystone_v3_updated="2017-02-22T00:00:00Z",
        keystone_v2_status="deprecated", keystone_v2_updated="2016-08-04T00:00:00Z",
        nova_min=MV("2.1"), nova_max=MV("2.53"), nova_honours_new_header=True,
        nova_networks_required=True, nova_network_quota_keys=False,
        nova_quota_force_accepted=True, nova_embedded_flavor=True, nova_bdm_tag=True,
        nova_server_tags=True, nova_tags_at_create=True,
        cinder_min=MV("3.0"), cinder_max=MV("3.43"),
        cinder_v1_status="DEPRECATED", cinder_v1_updated="2016-05-02T20:25:19Z",
        cinder_v2_status="DEPRECATED", cinder_v2_updated="2017-02-25T12:00:00Z",
        glance_versions=_glance(5, "DEPRECATED"), glance_default_visibility="shared",
        glance_visibilities=("community", "public", "private", "shared"),
        glance_disk_formats=GLANCE_DISK_FORMATS_15, glance_members_need_shared=True,
        datera_driver_version="2.4.0", datera_fast_retype=True,
        cinder_cleans_creating_on_start=True,
    ),
}
