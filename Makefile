# acrsync: make demo | make test | make bench | make package
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The FC runtime is python3.10: use a 3.10 that actually runs (a pyenv shim may exist but fail), else python3.
PYTHON_BOOT := $(shell for c in "python3.10" "env PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$$)' | tail -1) python3.10" "python3"; do \
                 if $$c -c 'import sys; assert sys.version_info[:2] >= (3, 10)' >/dev/null 2>&1; then echo "$$c"; break; fi; done)

.PHONY: venv test lint typecheck unit demo bench package clean

$(STAMP): pyproject.toml
	@test -n '$(PYTHON_BOOT)' || { echo "no Python >= 3.10 found" >&2; exit 1; }
	@echo "creating $(VENV) with: $(PYTHON_BOOT)"
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check shared functions localcloud tests bench

# Strict static types on the library (settings in pyproject's [tool.mypy]).
typecheck: $(STAMP)
	$(VENV)/bin/mypy -p acrsync

test: $(STAMP) lint typecheck
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m acrsync.demo

bench: $(STAMP)
	$(PY) -m bench

# CONFIG=path/to/acrsync.yaml (default: $$ACRSYNC_CONFIG); s.yaml's pre-deploy passes REGION (vars.region)
# and LAYER (vars.layerName), which must agree with the config and the pins.
package: $(STAMP)
	$(PY) -m acrsync.packaging build/fc $(if $(CONFIG),--config $(CONFIG)) $(if $(REGION),--region $(REGION)) \
	  $(if $(LAYER),--layer-name $(LAYER))

clean:
	rm -rf $(VENV) build .pytest_cache .acrsync .tools
