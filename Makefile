# Setup is idempotent: each step is skipped when its result is already there.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := fio slapd ldap-utils libnbd-bin nbdkit openssl
# qemu-img: the demo images (qcow2), the lab Cinder's image -> volume conversion, and images
# converted onto lab volumes over NBD (tests/test_nbd_zeroes.py, bench)
DEB_PACKAGES += qemu-utils
PYTEST_ARGS ?=
# Expensive downloads and builds live outside the clone, so a second clone skips them.
VANCOUVER_CACHE ?= $(HOME)/.cache/vancouver
export VANCOUVER_CACHE
# The live dashboard (issue 12): headless Chromium for its browser test; npm (for the chart
# library) is installed by dashboard-assets only when no npm is there (a NodeSource nodejs
# ships its own and conflicts with Debian's npm package).
DEB_PACKAGES += chromium chromium-driver
DASHBOARD ?= 127.0.0.1:8050
UPLOT_VERSION := 1.6.32
DASHBOARD_ASSETS := $(VANCOUVER_CACHE)/dashboard-assets/node_modules/uplot/dist/uPlot.iife.min.js
# xdist workers for the parallel phase of `make test` (most tests wait on labs, not on a CPU).
TEST_WORKERS ?= 4

.PHONY: dashboard-assets
.PHONY: setup deb venv test demo lab-up lab-down lab-status clean-demo bench clean

setup: deb venv
setup: dashboard-assets

# Debian packages the lab and its tests need (fio with the nbd engine, slapd, libnbd tools).
deb:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $$missing >/dev/null; \
	fi

# ---- Kubernetes (lab/kubernetes): Debian's etcd, and Go + rsync + jq to build the control plane
DEB_PACKAGES += golang-go etcd-server rsync jq
# Filesystem PVCs on the lab node: mkfs.xfs, mkfs.ext4 and debugfs (losetup, mount: util-linux)
DEB_PACKAGES += xfsprogs e2fsprogs
setup: kubernetes
.PHONY: kubernetes kubectl-deb
# kube-apiserver, -controller-manager, -scheduler from Debian's `kubernetes` source package
# into $(VANCOUVER_CACHE)/kubernetes-<version>/ (~5 min once; skipped when cached).
kubernetes: deb kubectl-deb
	@bash lab/kubernetes/build.sh "$(VANCOUVER_CACHE)"
# Debian's kubectl (kubernetes-client), unless /usr/bin/kubectl is already there (the gcloud
# image's kubectl package owns that path): the build unpacks Debian's kubectl into the cache.
kubectl-deb: deb
	@if dpkg-query -W -f='$${Status}\n' kubernetes-client 2>/dev/null | grep -q 'install ok installed'; then :; \
	elif [ -e /usr/bin/kubectl ]; then \
	  echo "kubectl: keeping /usr/bin/kubectl ($$(dpkg -S /usr/bin/kubectl 2>/dev/null | cut -d: -f1 || echo no package)); Debian's kubectl goes to $(VANCOUVER_CACHE)"; \
	else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 kubernetes-client >/dev/null; \
	fi

# The virtualenv lives in the cache, keyed by requirements.txt and python3's version, so a clean
# clone links it (.venv -> $(VENV_CACHED)) in a second instead of installing ~100 packages; a
# changed requirements.txt gets a new one. A .venv directory of your own, or VENV=dir, is kept
# and installed into as before.
VENV_CACHED := $(VANCOUVER_CACHE)/venv-$(shell { python3 -V; cat requirements.txt; } | sha256sum | cut -c1-16)
venv:
	@if [ "$(VENV)" = .venv ] && { [ -L .venv ] || [ ! -e .venv ]; }; then \
	  if [ ! -e $(VENV_CACHED)/.installed ]; then \
	    mkdir -p $(VANCOUVER_CACHE) && flock $(VENV_CACHED).lock bash -c '[ -e $(VENV_CACHED)/.installed ] || { \
	      echo "venv: installing requirements.txt into $(VENV_CACHED)"; rm -rf $(VENV_CACHED) && \
	      python3 -m venv $(VENV_CACHED) && \
	      $(VENV_CACHED)/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt && \
	      touch $(VENV_CACHED)/.installed; }' || exit 1; \
	  fi; \
	  ln -sfn $(VENV_CACHED) .venv; \
	else $(MAKE) --no-print-directory $(VENV)/.installed; fi

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

# Phases, each with a report folder of its own (reports/<phase>/):
# 0. the session lab: started here once for phases 1-3 and stopped at the end (on failure and
#    Ctrl-C too), unless one runs already (then it is used and left running) or PYTEST_ARGS
#    has --target;
# 1. every test not `slow` or `serial`, on TEST_WORKERS xdist workers (reports/tests/);
# 2. the `slow` and `serial` tests that do not measure IOPS, in two lanes side by side:
#    a. `sweeps` (they sweep the session lab, tests/conftest.py), one at a time
#       (reports/sweeps/; its console output is printed when both lanes are done);
#    b. the rest, which start labs of their own on fixed nets (tests/support/labcli.py) or
#       none, on SLOW_WORKERS xdist workers, one module per worker (--dist loadfile: a
#       module's labs start once), modules in collection order rather than by test count, so
#       test_demo_e2e (the longest: one lab, ten demo runs in a row) starts at once
#       (reports/measured/);
#    (not --dist loadgroup: pytest 9.2's node ids drop xdist 3.8's group suffix, xdist #1386);
# 3. the `measures` tests (fio IOPS against QoS limits), alone (reports/measures/);
# 4. the Tempest conformance job (`make conformance`, below), after the session lab is down.
# Status: the recipe exits with pytest's (make itself then exits 2 and names it in its last
# line, `make: *** [Makefile:NNN: test] Error N`). Status 2 of a phase (interrupted, usage
# error) stops at once with 2; otherwise every phase runs and the recipe fails with the last
# failing phase's status; 5 ("nothing selected") only when phases 1-3 all select nothing. Lane a ignores no Ctrl-C:
# `env --default-signal=INT` undoes the SIGINT-ignore that background jobs get.
SLOW_WORKERS ?= 3
test: setup
	@rc=0; \
	if [ -z "$(findstring --target,$(PYTEST_ARGS))" ] && ! $(PY) -m lab status >/dev/null 2>&1; then \
	  trap 'wait; $(PY) -m lab down >/dev/null' EXIT; trap 'exit 130' INT TERM; \
	  echo "make test: starting the session lab"; \
	  $(PY) -m lab up >/dev/null || exit 2; \
	fi; \
	$(PY) -m pytest -n $(TEST_WORKERS) -m "not (slow or serial)" --html reports/tests/report.html $(PYTEST_ARGS); r1=$$?; \
	[ $$r1 != 2 ] || exit 2; \
	mkdir -p reports/sweeps; \
	env --default-signal=INT $(PY) -m pytest -m "(slow or serial) and sweeps and not measures" --html reports/sweeps/report.html $(PYTEST_ARGS) >reports/sweeps/console.txt 2>&1 & lane=$$!; \
	$(PY) -m pytest -n $(SLOW_WORKERS) --dist loadfile --no-loadscope-reorder -m "(slow or serial) and not sweeps and not measures" --html reports/measured/report.html $(PYTEST_ARGS); r2=$$?; \
	wait $$lane; r2a=$$?; \
	echo "---- phase 2, lane a (sweeps): reports/sweeps/console.txt"; cat reports/sweeps/console.txt; \
	[ $$r2 != 2 ] && [ $$r2a != 2 ] || exit 2; \
	$(PY) -m pytest -m "measures" --html reports/measures/report.html $(PYTEST_ARGS); r3=$$?; \
	[ $$r3 != 2 ] || exit 2; \
	if [ -n "$$(trap -p EXIT)" ]; then $(PY) -m lab down >/dev/null; trap - EXIT; fi; \
	$(MAKE) --no-print-directory conformance; r4=$$?; \
	for r in $$r1 $$r2a $$r2 $$r3 $$r4; do [ $$r = 0 ] || [ $$r = 5 ] || rc=$$r; done; \
	[ $$rc != 0 ] || [ $$r1$$r2a$$r2$$r3 != 5555 ] || rc=5; \
	exit $$rc

# The live booth demo: endless, five workers, the plan's numbers; Ctrl-C stops it cleanly.
# pytest's status is make's `Error N` (make itself exits 2); after a stop signal from the
# terminal (or to make's process group) make dies of that signal once pytest has ended
# (130 for Ctrl-C): GNU make re-raises it, `exec` or not; pytest's own outcome is its last
# lines. README, "The demo".
# The dashboard is on (DASHBOARD= to change the address); its URL is the first line, printed
# by the system python3 before the setup checks (10-20 s on a loaded machine) and imports.
# DEMO_CONFIG=file: another demo.yaml (--demo-config); TARGET=target.yaml: a real or running
# environment (--target, as for clean-demo); PYTEST_ARGS: any other pytest options, after
# these (the last of a repeated option wins: PYTEST_ARGS='--duration 10m --demo-profile ci').
DEMO_CONFIG ?=
demo:
	@python3 -m fixtures.dashboard.where $(DASHBOARD) $(CURDIR)/reports/index.html $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory setup
	$(PY) -m pytest -n 5 --count=0 scenarios/ --demo-profile booth --report-rotate 10m --report-keep 48 --dashboard $(DASHBOARD) $(if $(DEMO_CONFIG),--demo-config $(DEMO_CONFIG)) $(if $(TARGET),--target $(TARGET)) $(PYTEST_ARGS)

# The dashboard's chart library (uPlot) from npm, cached outside the clone; served by the
# run itself (fixtures/dashboard/server.py), never from a CDN.
dashboard-assets: $(DASHBOARD_ASSETS)

$(DASHBOARD_ASSETS): | deb
	@command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 npm >/dev/null; }
	@mkdir -p $(VANCOUVER_CACHE)/dashboard-assets
	cd $(VANCOUVER_CACHE)/dashboard-assets && npm install --no-audit --no-fund --silent --no-save uplot@$(UPLOT_VERSION)
	@test -f $@

# Deletes every demo resource left on the target (the running lab unless TARGET=...).
# VANCOUVER_VIA_MAKE: its hints then say TARGET= (FORCE=1) rather than --target (--force).
clean-demo: venv
	VANCOUVER_VIA_MAKE=clean-demo $(PY) -m fixtures.cleanup --delete $(if $(TARGET),--target $(TARGET)) $(if $(FORCE),--force)

lab-up: setup
	$(PY) -m lab up

lab-down:
	$(PY) -m lab down

lab-status:
	$(PY) -m lab status

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) reports .pytest_cache

# ---- Tempest conformance job (conformance/): OpenStack's own API tests against the lab ------
# Tempest lives in its own virtualenv, cached outside the clone so a second clone skips it.
VANCOUVER_CACHE ?= $(HOME)/.cache/vancouver
TEMPEST_VERSION ?= 47.0.0
TEMPEST_VENV := $(VANCOUVER_CACHE)/tempest-$(TEMPEST_VERSION)
# profiles cloud:suite (identity runs when conformance/exclude/identity-<cloud>.txt exists)
CONFORMANCE_PROFILES ?= pike:volume,mitaka:volume,pike:identity,pike:image,pike:compute

.PHONY: tempest-venv conformance
setup: tempest-venv

tempest-venv: $(TEMPEST_VENV)/.installed

$(TEMPEST_VENV)/.installed:
	@mkdir -p $(VANCOUVER_CACHE)
	@test -x $(TEMPEST_VENV)/bin/python || python3 -m venv $(TEMPEST_VENV)
	$(TEMPEST_VENV)/bin/pip install -q --disable-pip-version-check tempest==$(TEMPEST_VERSION)
	@touch $@

# neutron-lib (Pike's 1.9.1, with the six it imports) in the Tempest venv: its API
# definitions check the lab's Neutron bodies (tests/test_openstack_neutron_schemas.py).
NEUTRON_LIB_VERSION ?= 1.9.1
tempest-venv: $(TEMPEST_VENV)/.neutron-lib-$(NEUTRON_LIB_VERSION)

$(TEMPEST_VENV)/.neutron-lib-$(NEUTRON_LIB_VERSION): $(TEMPEST_VENV)/.installed
	$(TEMPEST_VENV)/bin/pip install -q --disable-pip-version-check --no-deps \
	  neutron-lib==$(NEUTRON_LIB_VERSION) six==1.17.0
	@touch $@

# Starts a lab of its own on a free net (or VANCOUVER_LAB_NET), runs Tempest's volume tests on
# Pike and Mitaka, identity v3, image v2 and the compute API subset on Pike (conformance/run.py
# SUITES), prints the counts; fails under 95% on a profile.
# TARGET=dir uses a running lab (or real target) and leaves it running.
conformance: setup
	$(PY) -m conformance.run --tempest-venv $(TEMPEST_VENV) --profiles $(CONFORMANCE_PROFILES) \
	  $(if $(TARGET),--target $(TARGET))

# ---- vSphere (lab/vsphere): the lab's vCenter, a Go main over Debian's govmomi simulator ------
# Built with Debian's Go and golang-github-vmware-govmomi-dev, plus govc from the same Debian
# source package (for the tests), into $(VANCOUVER_CACHE)/vsphere-<hash of the sources>/bin
# (~1 min once; skipped when cached). kr/pretty is govc's one dependency outside govmomi.
DEB_PACKAGES += golang-github-vmware-govmomi-dev
DEB_PACKAGES += golang-github-kr-pretty-dev
.PHONY: vsphere
setup: vsphere
vsphere: deb
	@bash lab/vsphere/build.sh "$(VANCOUVER_CACHE)"
