# Everything installs itself: `make run` (the local stack) and `make test` (checks and tests) need only
# the OS, pyenv's Python 3.13 and the package registries.
SHELL := /bin/bash
export PYENV_VERSION := 3.11.7:3.12.1:3.13.0
export SAM_CLI_TELEMETRY := 0
# p123client (a client the tests run against the simulator) needs urllib3.future; built with this it installs beside
# urllib3 instead of replacing it for the whole venv (see requirements-dev.txt).
export URLLIB3_NO_OVERRIDE := 1
PYTHON ?= python3.13
PIP := --quiet --disable-pip-version-check --root-user-action=ignore
VENV := .venv
SAM_VENV := .tools/sam
CHECKOV_VENV := .tools/checkov
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
PYTEST_ARGS ?=

.PHONY: run test check lint types template security build pytest chromium bench openapi authorize-kdocs authorize-123pan clean

run: $(VENV)/.ready
	$(PY) -m local run

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
	$(SAM) build --build-dir .aws-sam/build

pytest: $(VENV)/.ready chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# Headless Chromium renders the Swagger UI page in a test (Debian's package; root, as on this project's machines).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

bench: $(VENV)/.ready
	PYTHONPATH=. $(PY) -m bench

# Regenerate docs/openapi.json from the handlers (a test fails when the two drift apart).
openapi: $(VENV)/.ready
	PYTHONPATH=layers/sharelink:functions/pan123:functions/kdocs:. $(PY) -m local.openapi

# First authorization: make authorize-kdocs ARGS="--secret-id sharelink/kdocs --app-id APPID" (see README)
authorize-kdocs authorize-123pan: $(VENV)/.ready
	PYTHONPATH=layers/sharelink:. $(PY) -m admin $@ $(ARGS)

$(VENV)/.ready: requirements-dev.txt layers/sharelink/requirements.txt
	rm -rf $(VENV) && $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP) -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.ready: requirements-sam.txt
	rm -rf $(SAM_VENV) && $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install $(PIP) -r requirements-sam.txt
	touch $@

$(CHECKOV_VENV)/.ready: requirements-checkov.txt
	rm -rf $(CHECKOV_VENV) && $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install $(PIP) -r requirements-checkov.txt
	touch $@

clean:
	rm -rf $(VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache
