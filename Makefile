# Set-up and entry points. Every target creates .venv if missing and (re)installs the project
# into it only when pyproject.toml changed; pip's cache keeps the large MindSpore wheel local.
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
CORES ?= all
export PATH := $(BIN):$(PATH)

.PHONY: demo test test-fast lint dag clean-results browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Run the whole pipeline on the embedded default (synthetic demo data).
demo: $(STAMP)
	snakemake --cores $(CORES) results/report.html

## Headless Chromium (Debian package) for the report's rendering test; openssl for the HTTPS download test.
browser:
	@command -v openssl >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -q openssl >/dev/null 2>&1 || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q openssl >/dev/null; }; }
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; }; }

## Lint, then the whole test suite (unit, workflow and cluster tests); the 25 slowest steps are listed at the end.
test: $(STAMP) browser lint
	pytest -ra -n 2 --dist loadscope --no-loadscope-reorder --durations=25 tests

## Unit tests only (under 2 minutes): no snakemake runs, downloads, builds or SLURM.
test-fast: $(STAMP)
	pytest -ra -m "not workflow and not cluster and not slow" tests

## ruff (lint + format check) and snakefmt. (snakemake --lint is not run: its only finding is the
## per-rule conda/container advice; this project installs one virtual environment instead.)
lint: $(STAMP)
	ruff check src workflow/scripts bench tests
	ruff format --check src workflow/scripts bench tests
	snakefmt -l 150 --check Snakefile workflow/rules

dag: $(STAMP)
	snakemake --rulegraph dot results/report.html | grep -v '^Building\|^Assuming' | dot -Tsvg > docs/dag.svg

clean-results:
	rm -rf results/* .snakemake
