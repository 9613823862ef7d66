# Two entry points do everything on a fresh machine (each first creates/refreshes the venv):
#   make repro   -> dvc repro of the embedded demo profile (params.yaml)
#   make test    -> the fast test tier (the command CI runs)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands in dvc.yaml call `fls`, so every recipe sees the venv's bin first.
export PATH := $(abspath $(BIN)):$(PATH)
# CPU torch is a local wheel on the dev/CI machines; on a GPU machine use e.g. TORCH_SPEC='torch==2.13.0' with the CUDA index.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
# make repro PROFILE=paper first renders profiles/paper.yaml (its overrides over the configs' defaults) into
# params.yaml: `fls params render --profile paper` (see docs/pipeline.md).
PROFILE ?=

.PHONY: env repro test test-slow test-all bench lint docker-smoke clean-env

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade 'pip>=24'
	$(BIN)/pip install --quiet '$(TORCH_SPEC)'
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $@

env: $(STAMP)

repro: env
	@git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "error: run inside the git checkout (dvc needs it)"; exit 2; }
	@if [ -n "$(PROFILE)" ]; then $(BIN)/fls params render --profile $(PROFILE) --out params.yaml || exit 2; fi
	$(BIN)/dvc repro

test: env
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: env
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

test-all: env
	$(BIN)/python -m pytest -m 'not gpu' $(PYTEST_ARGS)

bench: env
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

docker-smoke:
	bash docker/smoke.sh

clean-env:
	rm -rf $(VENV)
