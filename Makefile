# Everything installs itself: `make run` (the local stack) and `make test` (checks and tests) need only
# the OS, a Python 3.13 and the package registries.
SHELL := /bin/bash
# Python 3.13: with pyenv, the newest 3.13.x it has installed (PYENV_VERSION reaches everything make runs: the venvs'
# python3.13 and the layer Makefile's, under sam build); with pyenv but no 3.13 in it, the system's python3.13 (pyenv's
# "system"); without pyenv, python3.13 on the PATH. `make PYTHON=/path/to/python3.13` or `make PYENV_VERSION=3.13.x`
# chooses another.
PYENV_PYTHON313 := $(shell command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null \
	| grep -E '^3\.13\.[0-9]+$$' | sort -V | tail -n 1)
ifneq ($(PYENV_PYTHON313),)
export PYENV_VERSION := $(PYENV_PYTHON313)
else ifneq ($(shell command -v pyenv 2>/dev/null),)
export PYENV_VERSION := system
endif
export SAM_CLI_TELEMETRY := 0
# p123client (a client the tests run against the simulator) needs urllib3.future; built with this it installs beside
# urllib3 instead of replacing it for the whole venv (see requirements-dev.txt).
export URLLIB3_NO_OVERRIDE := 1
PYTHON ?= python3.13
# Run before making a venv or building the layer: one line saying what to do when $(PYTHON) is no Python 3.13.
NEED_PYTHON313 = @$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 || { \
	echo "make: no Python 3.13 ($(PYTHON)$(if $(PYENV_VERSION), with PYENV_VERSION=$(PYENV_VERSION))): install one (pyenv install 3.13, or your OS's python3.13 package), or give PYTHON=/path/to/python3.13" >&2; exit 1; }
PIP := --quiet --disable-pip-version-check --root-user-action=ignore
VENV := .venv
SAM_VENV := .tools/sam
CHECKOV_VENV := .tools/checkov
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
PYTEST_ARGS ?=

.PHONY: run test check lint types template security build pytest chromium bench openapi authorize-kdocs authorize-123pan \
	teardown teardown-args clean

run: $(VENV)/.ready
	$(PY) -m local run $(ARGS)

test: check pytest

check: lint types template security

lint: $(VENV)/.ready
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(VENV)/.ready
	$(VENV)/bin/mypy

template: $(SAM_VENV)/.ready build
	$(SAM) validate --lint
	$(SAM_VENV)/bin/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules

# template.yaml as written (sam build copies it unchanged but for code paths); skips and reasons in .checkov.yaml.
security: $(CHECKOV_VENV)/.ready
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true CKV_PARSE_ERROR_FAIL=true $(CHECKOV_VENV)/bin/checkov --skip-download --quiet \
		--compact --framework cloudformation -f template.yaml --config-file .checkov.yaml

build: $(SAM_VENV)/.ready
	$(NEED_PYTHON313)
	$(SAM) build --build-dir .aws-sam/build

pytest: $(VENV)/.ready chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# One test (tests/e2e/test_docs_page.py) renders the docs page (Swagger UI) in headless Chromium: Debian's chromium
# package, installed with apt-get when missing, as root or with sudo when it asks no password; otherwise install it.
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else \
		echo "make: the docs page test needs Chromium: install Debian's chromium package (sudo apt-get install chromium), or run make as root" >&2; exit 1; fi; \
	command -v apt-get >/dev/null || { echo "make: the docs page test needs Chromium: install it (chromium) with your OS's package manager" >&2; exit 1; }; \
	echo "make: installing Debian's chromium package with apt-get$${sudo:+ (sudo)}: the docs page test renders the page in headless Chromium"; \
	$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

bench: $(VENV)/.ready
	PYTHONPATH=. $(PY) -m bench

# Regenerate docs/openapi.json from the handlers (a test fails when the two drift apart).
openapi: $(VENV)/.ready
	PYTHONPATH=layers/sharelink:functions/pan123:functions/kdocs:. $(PY) -m local.openapi

# First authorization: make authorize-kdocs ARGS="--secret-id sharelink/kdocs --app-id APPID" (see README)
authorize-kdocs authorize-123pan: $(VENV)/.ready
	PYTHONPATH=layers/sharelink:. $(PY) -m admin $@ $(ARGS)

# Delete a deployed stack: make teardown STACK=<stack> [REGION=<region>] [YES=1]. Empties its versioned share requests
# bucket (every object version and delete marker, after asking unless YES=1), then `sam delete` (admin/teardown.py).
teardown: teardown-args $(VENV)/.ready $(SAM_VENV)/.ready
	PYTHONPATH=. $(PY) -m admin.teardown --stack-name '$(STACK)' --sam $(SAM) $(if $(REGION),--region '$(REGION)') \
		$(if $(filter 1 yes true,$(YES)),--yes)

teardown-args:
	@[ -n "$(STACK)" ] || { echo "make teardown: give STACK=<stack name> (REGION=<region> unless your AWS config has one; YES=1 does not ask)" >&2; exit 1; }

$(VENV)/.ready: requirements-dev.txt layers/sharelink/requirements.txt
	$(NEED_PYTHON313)
	rm -rf $(VENV) && $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP) -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.ready: requirements-sam.txt
	$(NEED_PYTHON313)
	rm -rf $(SAM_VENV) && $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install $(PIP) -r requirements-sam.txt
	touch $@

$(CHECKOV_VENV)/.ready: requirements-checkov.txt
	$(NEED_PYTHON313)
	rm -rf $(CHECKOV_VENV) && $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install $(PIP) -r requirements-checkov.txt
	touch $@

clean:
	rm -rf $(VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache
