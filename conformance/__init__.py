"""The Tempest conformance job: OpenStack's own API test suite against the lab's clouds.

tempest_conf.py writes a tempest.conf for one cloud of a target directory (clouds.yaml +
target.yaml); run.py starts or reuses a lab, runs Tempest per profile with the exclusion
lists in exclude/ and prints passed / failed / skipped / excluded per profile.
"""
