# Setup is idempotent: each step is skipped when its result is already there.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := fio slapd ldap-utils libnbd-bin nbdkit openssl
PYTEST_ARGS ?=

.PHONY: setup deb venv test demo lab-up lab-down lab-status clean-demo bench clean

setup: deb venv

# Debian packages the lab and its tests need (fio with the nbd engine, slapd, libnbd tools).
deb:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The live booth demo: endless, five workers, the plan's numbers; Ctrl-C stops it cleanly.
demo: setup
	$(PY) -m pytest -n 5 --count=0 scenarios/ --demo-profile booth --report-rotate 10m --report-keep 48

# Deletes every demo resource left on the target (the running lab unless TARGET=...).
clean-demo: venv
	$(PY) -m fixtures.cleanup --delete $(if $(TARGET),--target $(TARGET))

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
