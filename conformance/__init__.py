"""The Tempest conformance job: OpenStack's own API test suite against the lab's clouds.

tempest_conf.py writes a tempest.conf for one cloud of a target directory (clouds.yaml +
target.yaml); run.py starts or reuses a lab, runs Tempest per profile with the exclusion
lists in exclude/ and prints passed / failed / skipped / excluded per profile.
"""
import os
from pathlib import Path

# The Tempest release the job and the schema tests use (the Makefile's TEMPEST_VERSION):
# the newest on PyPI, and it still runs the volume v3 and identity v3 tests of Pike-era APIs.
TEMPEST_VERSION = "47.0.0"


def tempest_venv() -> Path:
    """$(VANCOUVER_CACHE)/tempest-<version>, as `make tempest-venv` makes it."""
    cache = os.environ.get("VANCOUVER_CACHE") or str(Path.home() / ".cache" / "vancouver")
    return Path(cache) / f"tempest-{TEMPEST_VERSION}"
