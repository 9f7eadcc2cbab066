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

PLAYLISTS ?= $(DEMO)/catalog/mpd
PLAYLIST_FORMAT ?= mpd
TABLES_ARGS ?=

.PHONY: setup demo sample-catalog shards playlists cooccurrence tables splits embeddings pairs nightly test lint bench doctor clean

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

## demo: the sample catalogue, then every job on it (each prints a summary and what failed)
demo: setup sample-catalog
	$(BIN)/duet doctor
	$(BIN)/duet shards --tracks $(DEMO)/catalog/tracks.parquet --output $(DEMO)/data $(BEAM_ARGS)
	$(BIN)/duet playlists --input $(DEMO)/catalog/mpd --format mpd --output $(DEMO)/data --tracks $(DEMO)/data
	$(BIN)/duet cooccurrence --playlists $(DEMO)/data/playlists.parquet --output $(DEMO)/data --counts
	$(BIN)/duet cooccurrence --playlists $(DEMO)/data/playlists.parquet --output $(DEMO)/data --group-by artist
	$(BIN)/duet embeddings w2v --playlists $(DEMO)/data/playlists.parquet --output $(DEMO)/data
	$(BIN)/duet playlists --input $(DEMO)/catalog/melon --format melon --output $(DEMO)/melon --tracks $(DEMO)/catalog/tracks.parquet --track-key melon_song_id --melon-genres both
	$(BIN)/duet splits --track-meta $(DEMO)/melon/track_meta.parquet --output $(DEMO)/data
	$(BIN)/duet embeddings genre-w2v --track-meta $(DEMO)/melon/track_meta.parquet --output $(DEMO)/data
	$(BIN)/duet embeddings cf --model warp --playlists $(DEMO)/melon/playlists.parquet --output $(DEMO)/data --split train,val
	$(BIN)/duet pairs --data $(DEMO)/data --strategies all --epochs 0:3 --seed 0
	$(BIN)/duet pairs --data $(DEMO)/data --verify LATEST

## shards: TRACKS=manifest-or-glob OUTPUT=root [STREAMS=...] [BEAM_ARGS="--runner DataflowRunner ..."]
shards: setup
	$(BIN)/duet shards --tracks '$(TRACKS)' --output '$(OUTPUT)' --streams $(STREAMS) $(BEAM_ARGS)

## playlists: PLAYLISTS=files-or-folder PLAYLIST_FORMAT=mpd|melon|table OUTPUT=root [TABLES_ARGS=--tracks ROOT]
playlists: setup
	$(BIN)/duet playlists --input $(PLAYLISTS) --format $(PLAYLIST_FORMAT) --output '$(OUTPUT)' $(TABLES_ARGS) $(BEAM_ARGS)

## cooccurrence: top-10 (and artist grouping) from OUTPUT/playlists.parquet
cooccurrence: setup
	$(BIN)/duet cooccurrence --playlists '$(OUTPUT)/playlists.parquet' --output '$(OUTPUT)' $(BEAM_ARGS)
	$(BIN)/duet cooccurrence --playlists '$(OUTPUT)/playlists.parquet' --output '$(OUTPUT)' --group-by artist $(BEAM_ARGS)

## tables: co-occurrence, splits and every embedding table from OUTPUT/playlists.parquet and
## OUTPUT/track_meta.parquet (TRACK_META=... for genres from another source, e.g. Melon)
TRACK_META ?= $(OUTPUT)/track_meta.parquet
tables: cooccurrence splits embeddings

splits: setup
	$(BIN)/duet splits --track-meta '$(TRACK_META)' --output '$(OUTPUT)' $(BEAM_ARGS)

embeddings: setup
	$(BIN)/duet embeddings w2v --playlists '$(OUTPUT)/playlists.parquet' --output '$(OUTPUT)' $(BEAM_ARGS)
	$(BIN)/duet embeddings cf --model warp --playlists '$(OUTPUT)/playlists.parquet' --output '$(OUTPUT)' $(BEAM_ARGS)
	$(BIN)/duet embeddings genre-w2v --track-meta '$(TRACK_META)' --output '$(OUTPUT)' $(BEAM_ARGS)

## nightly: PLAYLISTS=raw files OUTPUT=root [STRATEGIES=...] [EPOCHS=0:50] [KEEP=7]: every stage
## whose inputs changed, then a pair run (see docker/schedule/ for cron, Kubernetes, Airflow)
STRATEGIES ?= playlist_co,playlist_tco
EPOCHS ?= 0:50
KEEP ?= 7
nightly: setup
	$(BIN)/duet nightly --input $(PLAYLISTS) --format $(PLAYLIST_FORMAT) --output '$(OUTPUT)' --strategies $(STRATEGIES) --epochs $(EPOCHS) --keep $(KEEP) $(TABLES_ARGS) $(BEAM_ARGS)

## pairs: OUTPUT=root [STRATEGIES=...] [EPOCHS=0:50]
pairs: setup
	$(BIN)/duet pairs --data '$(OUTPUT)' --strategies $(STRATEGIES) --epochs $(EPOCHS) $(BEAM_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m pytest -m bench -s tests/benchmarks $(PYTEST_ARGS)

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
