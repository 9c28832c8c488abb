# Archipelago roll: build, test, bench and demo entry points. Every target is
# idempotent; `make help` lists them.
include version.mk

PYTHON   ?= /usr/bin/python3
VENV     ?= .venv
VPY      := $(VENV)/bin/python
# Every src/* directory with a setup.py is an installable package (an RPM later).
PKGS     := $(patsubst %/setup.py,%,$(wildcard src/*/setup.py))
PYTEST_ARGS ?=

.PHONY: help deps venv build test test-c test-py lint bench demo up down clean distclean

help:
	@echo "$(ROLLNAME) $(VERSION)-$(RELEASE)"
	@echo "  make deps    install missing Debian packages (root on Debian 12)"
	@echo "  make venv    .venv from $(PYTHON) --system-site-packages, src/* installed editable"
	@echo "  make build   compile the C parts (libxseg, its tests and benchmarks)"
	@echo "  make test    build, then C tests, ruff and the Python test suite"
	@echo "  make bench   run every benchmark under bench/ and print figures and ratios"
	@echo "  make demo    set up and run a one-machine cluster scenario (RADOS=1: volumes on Ceph)"

deps:
	@tools/install-deps tools/deps-debian.txt

# The stamp depends on every package's metadata so a new package or dependency
# reinstalls; pip itself makes a repeat install cheap.
$(VENV)/.stamp: $(wildcard src/*/setup.py src/*/pyproject.toml) tools/requirements-dev.txt
	@test -x $(VPY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(VPY) -m pip install -q --upgrade pip setuptools wheel
	$(VPY) -m pip install -q -r tools/requirements-dev.txt
	$(VPY) -m pip install -q $(foreach p,$(PKGS),-e $(p))
	@touch $@

venv: $(VENV)/.stamp

build:
	@for d in src/*/; do if [ -f $$d/Makefile ]; then $(MAKE) -s -C $$d all || exit 1; fi; done

test-c: build
	@for d in src/*/; do if [ -f $$d/Makefile ]; then $(MAKE) -s -C $$d check || exit 1; fi; done

lint: venv
	$(VENV)/bin/ruff check .

test-py: venv build
	$(VPY) -m pytest $(PYTEST_ARGS)

test: venv build test-c lint test-py

bench: venv build
	$(VPY) bench/run.py

# RADOS=1: the NAS's volumes in a RADOS pool of a throwaway one-node Ceph (docs/rados.md)
demo: venv build
	$(VPY) tools/demo.py $(if $(filter-out 0,$(RADOS)),--rados)

clean:
	@for d in src/*/; do if [ -f $$d/Makefile ]; then $(MAKE) -s -C $$d clean; fi; done
	rm -rf build dist .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# --- Roll packaging (roll/, nodes/, graphs/; docs/roll.md) ---------------------
# rpms: one RPM (or more, as in the original Archipelago split) per src/* package
# plus the roll's own, built by rpmbuild in build/rpm with versions from
# version.mk. roll: the Rocks roll ISO in build/. roll-check: verify the ISO with
# isoinfo and rpm -qp (the kernel here cannot mount ISO9660).
RPM_PYTHON ?= /usr/bin/python3
.PHONY: rpms roll roll-check

rpms:
	$(RPM_PYTHON) roll/build_rpms.py

roll: rpms
	$(RPM_PYTHON) roll/build_iso.py

roll-check:
	$(RPM_PYTHON) roll/check_iso.py

# A one-machine cluster (private RabbitMQ, nas-0-0, compute-0-0, compute-0-1) that
# stays up for a user to drive with `rocks`; `make down` stops it.
up: venv build
	$(VPY) tools/cluster.py up

down:
	$(VPY) tools/cluster.py down
