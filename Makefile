# duet — every target installs what it needs into .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo
TRACKS ?= $(DEMO)/catalog/tracks.parquet
OUTPUT ?= $(DEMO)/data
STREAMS ?= wav-16000,wav-22050,mel-choi,mel-alonso,mel-ferraro
BEAM_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup demo sample-catalog shards test lint bench doctor clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

doctor: setup
	$(BIN)/duet doctor

$(DEMO)/catalog/tracks.parquet: | $(STAMP)
	$(BIN)/duet sample-catalog --output $(DEMO)/catalog --tracks 60 --seed 0

sample-catalog: $(DEMO)/catalog/tracks.parquet

## demo: the sample catalogue, then the shards job on it (prints a summary and the failures)
demo: setup sample-catalog
	$(BIN)/duet doctor
	$(BIN)/duet shards --tracks $(DEMO)/catalog/tracks.parquet --output $(DEMO)/data $(BEAM_ARGS)

## shards: TRACKS=manifest-or-glob OUTPUT=root [STREAMS=...] [BEAM_ARGS="--runner DataflowRunner ..."]
shards: setup
	$(BIN)/duet shards --tracks '$(TRACKS)' --output '$(OUTPUT)' --streams $(STREAMS) $(BEAM_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m pytest -m bench -s tests/benchmarks $(PYTEST_ARGS)

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
