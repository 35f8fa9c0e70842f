# Pallet for Python: every entry point a person or CI uses.
#
#   make demo    set up .venv, compile the examples and check them; as root, converge the fleet
#                example on three local Debian nodes, lift it again, show the nodes
#   make test    set up .venv, run every test (pytest)
#   make conformance  every crate on fresh local Debian nodes (part of make test too)
#   make faults  every fault of FAULT-NOTES.md on local nodes, one table (part of make test too)
#   make golden  rewrite the golden files from the current compiler output, then test
#   make bench   run the benchmarks in bench/ (installs the extra `bench`: pyinfra, Ansible)
#
# Works on a fresh Debian machine with only python3 (and make): if python3 cannot create a
# virtual environment (Debian ships ensurepip separately), python3-venv is installed with
# apt-get when running as root; otherwise the command to run is printed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PALLET := $(VENV)/bin/pallet
# The stamp is newer than pyproject.toml once the install for that pyproject.toml is done,
# so `make venv` costs nothing until the dependencies change.
STAMP  := $(VENV)/.pallet-installed

# Scripts (examples/scripts) are compiled by `make demo` for every shell; specs (examples/*.pallet)
# are compiled to bundles for DEMO_OSES and checked. DEMO_SHOW is the script printed.
SCRIPTS   ?= $(sort $(wildcard examples/scripts/*.pallet))
SPECS     ?= $(sort $(wildcard examples/*.pallet))
DEMO_OSES ?= debian-12 ubuntu-22.04 rocky-9 alpine-3.20
DEMO_SHOW ?= examples/scripts/talk.pallet
TARGETS   := bash sh powershell
DEMO_NODES ?= $(CURDIR)/demo-out/nodes
DEMO_ENV   := PALLET_NODES_DIR=$(DEMO_NODES)
PYTEST_ARGS ?=
# Test files run in this many pytest-xdist workers (a file stays in one worker, so its fixtures and
# nodes are made once). Most of the suite waits on nodes (sshd, apt, dpkg), so two workers help
# even on one core. PYTEST_WORKERS=0 runs in one process (pdb, -x on the first failure).
PYTEST_WORKERS ?= 2
XDIST := -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: venv sysdeps test golden demo bench conformance faults clean
.DEFAULT_GOAL := test

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	@# A venv that is missing, or was left without pip by a failed attempt, is made anew.
	@if ! $(PY) -m pip --version >/dev/null 2>&1; then \
	  if ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "make: $(PYTHON) cannot create virtual environments; installing python3-venv with apt-get"; \
	      DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null || exit 1; \
	    else \
	      echo "make: $(PYTHON) cannot create virtual environments (no ensurepip)." >&2; \
	      echo "make: on Debian/Ubuntu run: sudo apt-get install python3-venv" >&2; \
	      exit 1; \
	    fi; \
	  fi; \
	  rm -rf $(VENV) && echo "$(PYTHON) -m venv $(VENV)" && $(PYTHON) -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test]'
	@touch $@

# The Debian packages the tests need (tests/debian-packages.txt: COMMAND PACKAGE), installed
# with apt-get when running as root and a command is missing; otherwise the tests that need
# them say what is missing.
sysdeps:
	@missing=$$(awk '!/^#/ && NF == 2 { print $$1, $$2 }' tests/debian-packages.txt | \
	  while read -r cmd pkg; do command -v "$$cmd" >/dev/null 2>&1 || \
	    [ -x "/usr/sbin/$$cmd" ] || [ -x "/sbin/$$cmd" ] || echo "$$pkg"; done | sort -u | tr '\n' ' '); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: installing $$missing with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	  else echo "make: the tests need these Debian packages: $$missing (apt-get install $$missing)"; fi; \
	fi

test: venv sysdeps
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# Every crate on fresh local Debian nodes: converges, a second run changes nothing, and what it
# built is checked from outside (tests/conformance; also part of `make test`).
conformance: venv sysdeps
	$(PY) -m pytest $(XDIST) tests/conformance $(PYTEST_ARGS)

# Each fault (dropped, reset, blackhole, frozen session, latency, loss, slow link, host keys (changed, CA-signed),
# refused key, closed port, full disk, reboot between phases, Ctrl-C) made for real on local
# nodes while a run goes: one table of what was reported, how fast, what the node holds after
# (tests/fault_suite.py; as root; also tests/test_faults.py in `make test`).
faults: venv sysdeps
	$(PY) tests/fault_suite.py $(FAULTS_ARGS)

golden: venv
	PALLET_UPDATE_GOLDEN=1 $(PY) -m pytest $(PYTEST_ARGS)

demo: venv
	@$(PALLET) --version
	@failed=0; \
	echo "==> Stevedore scripts, each for bash, sh and PowerShell, checked:"; \
	for f in $(SCRIPTS); do \
	  for t in $(TARGETS); do \
	    os=debian-12; [ "$$t" = powershell ] && os=windows; \
	    if err=$$($(PALLET) script "$$f" --target "$$t" --os "$$os" --check 2>&1 >/dev/null); then \
	      printf '  ok      %-11s %s\n' "$$t" "$$f"; \
	    else \
	      printf '  FAILED  %-11s %s\n' "$$t" "$$f"; printf '%s\n' "$$err" | sed 's/^/      /'; \
	      failed=$$((failed + 1)); \
	    fi; \
	  done; \
	done; \
	echo; echo "==> specs, compiled to bundles per node and phase and checked (demo-out/):"; \
	for f in $(SPECS); do \
	  oses="$(DEMO_OSES)"; case "$$f" in *windows*) oses=windows;; esac; \
	  for os in $$oses; do \
	    out=demo-out/$$(basename "$$f" .pallet)/$$os; \
	    if err=$$($(PALLET) compile "$$f" --os "$$os" -o "$$out" --check 2>&1 >/dev/null); then \
	      printf '  ok      %-13s %s -> %s\n' "$$os" "$$f" "$$out"; \
	    else \
	      printf '  FAILED  %-13s %s\n' "$$os" "$$f"; printf '%s\n' "$$err" | sed 's/^/      /'; \
	      failed=$$((failed + 1)); \
	    fi; \
	  done; \
	done; \
	echo; echo "==> bash output of $(DEMO_SHOW):"; echo; \
	$(PALLET) script "$(DEMO_SHOW)" --target bash || failed=$$((failed + 1)); \
	echo; echo "==> the plan of examples/hadoop.pallet (pallet explain):"; echo; \
	$(PALLET) explain examples/hadoop.pallet --os debian-12 --phase configure | head -12 || failed=$$((failed + 1)); \
	echo; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "==> pallet converge examples/fleet.pallet fleet=3: three local Debian nodes over real SSH"; \
	  echo "    (state in $(DEMO_NODES); the first time builds a Debian root filesystem, ~40 s)"; \
	  $(DEMO_ENV) $(PALLET) converge examples/fleet.pallet fleet=3 --record-dir demo-out/runs || failed=$$((failed + 1)); \
	  echo; echo "==> pallet lift examples/fleet.pallet: the same bundles again change nothing"; \
	  $(DEMO_ENV) $(PALLET) lift examples/fleet.pallet --record-dir demo-out/runs || failed=$$((failed + 1)); \
	  echo; $(DEMO_ENV) $(PALLET) nodes; \
	  if [ -z "$(DEMO_KEEP)" ]; then $(DEMO_ENV) $(PALLET) destroy --all --yes >/dev/null; \
	    echo "(nodes destroyed; DEMO_KEEP=1 keeps them: PALLET_NODES_DIR=$(DEMO_NODES) .venv/bin/pallet nodes)"; fi; \
	else \
	  echo "==> local nodes need root (namespaces, overlayfs): run 'sudo make demo' to converge the fleet"; \
	  echo "    on local Debian nodes; or run it on servers of your own:"; \
	  echo "    .venv/bin/pallet lift examples/fleet.pallet --nodes inventory.toml   (see README)"; \
	fi; \
	if [ "$$failed" -ne 0 ]; then echo "make demo: $$failed failure(s)" >&2; exit 1; fi

# The peers of bench/bench_fleet.py (pyinfra, Ansible) come from the optional extra `bench`,
# installed into the venv here only: they are never dependencies of Pallet itself.
BENCH_STAMP := $(VENV)/.pallet-bench-installed

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test,bench]'
	@touch $@

bench: venv $(BENCH_STAMP)
	@set -e; found=0; \
	for f in bench/*.py; do \
	  [ -f "$$f" ] || continue; found=1; \
	  echo "==> $$f"; $(PY) "$$f"; \
	done; \
	if [ "$$found" = 0 ]; then echo "make bench: no benchmarks in bench/"; fi

clean:
	rm -rf .pytest_cache .hypothesis build dist demo-out out
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +
