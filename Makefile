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
PYTEST_ARGS ?=
ARGS ?=

.PHONY: install demo test test-fast lint compile clean

install: $(STAMP)

$(CHECKOV):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==3.3.30

$(KSERVE_STORAGE):
	test -x $(KSERVE_STORAGE_VENV)/bin/python || $(PYTHON) -m venv $(KSERVE_STORAGE_VENV)
	$(KSERVE_STORAGE_VENV)/bin/python -m pip install --quiet kserve-storage==0.21.0
	touch $@

# torch is pinned to the CPU build that pip finds on these machines; requirements.lock pins the rest.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

demo: install
	$(BIN)/hyperrec demo $(ARGS)

test: install $(CHECKOV) $(KSERVE_STORAGE)
	HYPERREC_CHECKOV=$(CHECKOV) HYPERREC_KSERVE_STORAGE_PYTHON=$(KSERVE_STORAGE_VENV)/bin/python \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src components pipelines serving tests

compile: install
	$(BIN)/hyperrec pipeline compile --output-dir outputs/pipelines

clean:
	rm -rf outputs .pytest_cache
