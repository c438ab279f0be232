"""tempest.conf for one cloud of a lab (or real) target directory.

    conf = tempest_conf(target_dir, "pike")        # configparser.ConfigParser
    write_conf(target_dir, "pike", path)

Facts from Tempest 47.0.0's tempest/config.py (option names and defaults) and the lab's
release profiles (lab/openstack/releases.py: the max microversions of each release). The
admin credentials are the `<cloud>-admin` entry of clouds.yaml; Tempest creates its own
users and projects with them (dynamic credentials). Features are on only where the lab has
them: backups (the lab's posix driver), no manage/unmanage, no replication, no swift, no isolated networks.
"""
import configparser
from pathlib import Path

import yaml

# Release -> (Cinder max, Nova max) microversion: reference openstack-api §0, the same numbers
# the lab's ReleaseProfile serves (kept here so a real target needs no lab import).
MAX_MICROVERSIONS = {"mitaka": ("3.0", "2.25"), "newton": ("3.15", "2.38"),
                     "pike": ("3.43", "2.53")}
# Keystone v3 API minor version per release (the discovery document's id).
IDENTITY_V3 = {"mitaka": "3.6", "newton": "3.7", "pike": "3.8"}


class ConfError(Exception):
    """The target directory does not describe the cloud (one line naming what is missing)."""


def _load(target_dir: Path, cloud: str) -> tuple[dict, dict, str]:
    target = yaml.safe_load((target_dir / "target.yaml").read_text())
    clouds_file = target_dir / target["openstack"].get("clouds_yaml", "clouds.yaml")
    clouds = yaml.safe_load(clouds_file.read_text())["clouds"]
    entry = target["openstack"]["clouds"].get(cloud)
    if entry is None:
        raise ConfError(f"{target_dir}/target.yaml: openstack.clouds has no cloud {cloud!r}")
    admin = clouds.get(entry["admin_cloud"])
    if admin is None:
        raise ConfError(f"{clouds_file}: no cloud {entry['admin_cloud']!r}")
    return admin, entry, entry["release"]


def tempest_conf(target_dir: Path, cloud: str, *, log_dir: Path | None = None,
                 extra: dict | None = None) -> configparser.ConfigParser:
    """extra: {section: {option: value}} the job found on the cloud (image_ref, ...)."""
    admin, entry, release = _load(Path(target_dir), cloud)
    auth = admin["auth"]
    cinder_max, nova_max = MAX_MICROVERSIONS[release]
    region = admin.get("region_name", "RegionOne")
    c = configparser.ConfigParser(interpolation=None)
    c["DEFAULT"] = {"debug": "false", "use_stderr": "false"}
    if log_dir is not None:
        c["DEFAULT"]["log_dir"] = str(log_dir)
        c["DEFAULT"]["log_file"] = "tempest.log"
    c["auth"] = {
        "use_dynamic_credentials": "true",
        "create_isolated_networks": "false",          # the lab's Neutron is minimal
        "admin_username": auth["username"], "admin_password": auth["password"],
        "admin_project_name": auth["project_name"],
        "admin_domain_name": auth.get("user_domain_name", "Default"),
        "default_credentials_domain_name": auth.get("project_domain_name", "Default"),
        "admin_system": "false",
    }
    c["identity"] = {
        "uri_v3": auth["auth_url"], "auth_version": "v3", "region": region,
        "v3_endpoint_type": "public", "disable_ssl_certificate_validation": "true",
    }
    c["identity-feature-enabled"] = {
        "api_v2": "false", "api_v3": "true",
        # API pieces newer than the release's Keystone are off (Tempest skips their tests).
        "application_credentials": "false", "access_rules": "false",
        "project_tags": "false", "security_compliance": "false",
        "trust": "true", "domain_specific_drivers": "false",
        "api_extensions": "all",
    }
    c["service_available"] = {"cinder": "true", "nova": "true", "glance": "true",
                              "neutron": "true", "swift": "false", "horizon": "false"}
    c["volume"] = {
        "catalog_type": "volumev3", "endpoint_type": "publicURL", "region": region,
        "min_microversion": "3.0", "max_microversion": cinder_max,
        "backend_names": "datera,ceph", "build_interval": "1", "build_timeout": "30",
        "storage_protocol": "iSCSI", "vendor_name": "Datera",
    }
    c["volume-feature-enabled"] = {
        "multi_backend": "true", "backup": "true", "snapshot": "true", "clone": "true",
        "manage_snapshot": "false", "manage_volume": "false", "replication": "false",
        "extend_attached_volume": "false", "extend_attached_encrypted_volume": "false",
        "api_extensions": "all",
    }
    c["compute"] = {
        "catalog_type": "compute", "region": region,
        "min_microversion": "2.1", "max_microversion": nova_max,
        "build_interval": "1", "build_timeout": "60",
    }
    c["compute-feature-enabled"] = {
        "attach_encrypted_volume": "false", "swap_volume": "false",
        "volume_multiattach": "false", "console_output": "true",
        "live_migration": "false", "resize": "false", "snapshot": "false",
        "shelve": "false", "suspend": "false", "pause": "false", "vnc_console": "false",
    }
    c["image"] = {"catalog_type": "image", "region": region}
    c["image"].update(build_timeout="30", build_interval="1")
    # Glance pieces newer than these releases are off (Tempest skips their tests): the
    # interoperable import (v2.6, experimental and off by default in Pike), the os_glance_*
    # reserved namespace and os_hash_* (Rocky), format enforcement (2023.x).
    c["image-feature-enabled"] = {"api_v1": "false", "api_v2": "true",
                                  "import_image": "false", "os_glance_reserved": "false",
                                  "do_secure_hash": "false",
                                  "image_format_enforcement": "false"}
    c["network"] = {"catalog_type": "network", "region": region}
    c["network-feature-enabled"] = {"api_extensions": "", "ipv6": "false"}
    c["validation"] = {"run_validation": "false"}
    for section, values in (extra or {}).items():
        c[section].update(values)
    return c


def write_conf(target_dir: Path, cloud: str, path: Path, *, log_dir: Path | None = None,
               extra: dict | None = None) -> None:
    conf = tempest_conf(target_dir, cloud, log_dir=log_dir, extra=extra)
    with open(path, "w") as f:
        conf.write(f)


if __name__ == "__main__":   # python -m conformance.tempest_conf TARGET_DIR CLOUD > tempest.conf
    import sys
    tempest_conf(Path(sys.argv[1]), sys.argv[2]).write(sys.stdout)
