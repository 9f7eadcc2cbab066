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

.PHONY: setup demo sample-catalog shards features playlists cooccurrence tables splits embeddings pairs nightly train report dataflow-shards dataflow-pairs dataflow-template test test-fast lint typecheck bench doctor clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,report]'
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
	$(BIN)/duet train --recipe alonso-co --data $(DEMO)/data --out $(DEMO)/runs/alonso-co --epochs 1 --batch-size 8 --max-steps 3 --set warmup_steps=2
	$(BIN)/duet report --data $(DEMO)/data --output $(DEMO)/report

## shards: TRACKS=manifest-or-glob OUTPUT=root [STREAMS=...] [BEAM_ARGS="--runner DataflowRunner ..."]
shards: setup
	$(BIN)/duet shards --tracks '$(TRACKS)' --output '$(OUTPUT)' --streams $(STREAMS) $(BEAM_ARGS)

## features: ARRAYS=arena_mel-folder OUTPUT=root [FEATURES_ARGS="--layout npy --profile x.yaml"]
ARRAYS ?=
FEATURES_ARGS ?=
features: setup
	$(if $(ARRAYS),,$(error ARRAYS is required, e.g. make features ARRAYS=melon/arena_mel OUTPUT=data))
	$(BIN)/duet features import --input '$(ARRAYS)' --output '$(OUTPUT)' $(FEATURES_ARGS) $(BEAM_ARGS)

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

## Dataflow: make dataflow-shards|dataflow-pairs PROJECT=... REGION=... BUCKET=... IMAGE=...
## (the worker image of docker/worker.Dockerfile); inputs and outputs live under gs://BUCKET/.
PROJECT ?=
REGION ?=
BUCKET ?=
IMAGE ?=
DATAFLOW_DATA ?= gs://$(BUCKET)/duet
DATAFLOW_TRACKS ?= gs://$(BUCKET)/catalog/tracks.parquet
MAX_WORKERS ?= 32
require = $(if $($(1)),,$(error $(1) is required, e.g. make $@ PROJECT=my-project REGION=europe-west1 BUCKET=my-bucket IMAGE=europe-west1-docker.pkg.dev/my-project/duet/worker:0.1.0))
DATAFLOW_ARGS = --runner DataflowRunner --project $(PROJECT) --region $(REGION) \
	--temp_location gs://$(BUCKET)/tmp --staging_location gs://$(BUCKET)/staging \
	--sdk_container_image $(IMAGE) --experiments=use_runner_v2 --max_num_workers $(MAX_WORKERS)

dataflow-shards: setup
	$(call require,PROJECT)$(call require,REGION)$(call require,BUCKET)$(call require,IMAGE)
	$(BIN)/duet shards --tracks $(DATAFLOW_TRACKS) --output $(DATAFLOW_DATA) --streams $(STREAMS) $(DATAFLOW_ARGS) --job_name duet-shards $(BEAM_ARGS)

dataflow-pairs: setup
	$(call require,PROJECT)$(call require,REGION)$(call require,BUCKET)$(call require,IMAGE)
	$(BIN)/duet pairs --data $(DATAFLOW_DATA) --strategies $(STRATEGIES) --epochs $(EPOCHS) --keep $(KEEP) $(DATAFLOW_ARGS) --job_name duet-pairs $(BEAM_ARGS)

## dataflow-template: build the Flex Template spec in gs://BUCKET/templates/duet.json (needs gcloud)
dataflow-template:
	$(call require,BUCKET)$(call require,IMAGE)
	gcloud dataflow flex-template build gs://$(BUCKET)/templates/duet.json --image $(IMAGE) --sdk-language PYTHON --metadata-file docker/flex-template.json

## train: RECIPE=alonso-co OUTPUT=root RUN_DIR=... [TRAIN_ARGS="--epochs 50 --batch-size 384"]
RECIPE ?= alonso-co
RUN_DIR ?= $(OUTPUT)/runs/$(RECIPE)
TRAIN_ARGS ?=
train: setup
	$(BIN)/duet train --recipe $(RECIPE) --data '$(OUTPUT)' --out '$(RUN_DIR)' $(TRAIN_ARGS)

## eval-<dataset>: a paper's evaluation of CHECKPOINT on a downloaded dataset, the whole chain:
## catalogue → shards → embed → protocol (report in EVAL_DIR/report.json, its table in .table).
## make eval-magnatagatune INPUT=~/data/mtat CHECKPOINT=runs/clmr/checkpoint.pt [EVAL_DIR=...]
## (gtzan, fma: choi; mtg-jamendo, msd-lastfm: clmr-linear on tags; covers80, shs100k: pemr-cover)
INPUT ?=
CHECKPOINT ?=
EVAL_DIR ?= eval/$*
EVAL_STREAMS ?= $(STREAMS)
PROTOCOL_magnatagatune := --protocol clmr-linear --label-column tags
PROTOCOL_mtg-jamendo := --protocol clmr-linear --label-column tags
PROTOCOL_gtzan := --protocol choi --label-column genre
PROTOCOL_fma := --protocol choi --label-column genre
PROTOCOL_covers80 := --protocol pemr-cover --label-column clique
PROTOCOL_msd-lastfm := --protocol clmr-linear --label-column tags
PROTOCOL_shs100k := --protocol pemr-cover --label-column clique
eval-%: setup
	$(if $(INPUT),,$(error INPUT is required: the downloaded dataset folder))
	$(if $(CHECKPOINT),,$(error CHECKPOINT is required: a duet train checkpoint.pt))
	$(BIN)/duet catalog $* --input '$(INPUT)' --output '$(EVAL_DIR)/catalog'
	$(BIN)/duet shards --tracks '$(EVAL_DIR)/catalog/tracks.parquet' --output '$(EVAL_DIR)/data' --streams $(EVAL_STREAMS) $(BEAM_ARGS)
	$(BIN)/duet embed --checkpoint '$(CHECKPOINT)' --data '$(EVAL_DIR)/data' --output '$(EVAL_DIR)/embeddings.parquet' --overwrite
	$(BIN)/duet evaluate $(PROTOCOL_$*) --embeddings '$(EVAL_DIR)/embeddings.parquet' --labels '$(EVAL_DIR)/catalog/labels.parquet' --splits '$(EVAL_DIR)/catalog/splits.parquet' --output '$(EVAL_DIR)/report.json'

## report: OUTPUT=root [REPORT_DIR=report] [RUN=LATEST]: the dataset card (REPORT_DIR/index.html, report.json)
REPORT_DIR ?= report
RUN ?= LATEST
report: setup
	$(BIN)/duet report --data '$(OUTPUT)' --output '$(REPORT_DIR)' --run $(RUN)

lint: setup typecheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## typecheck: mypy on the package duet as it is installed (pipelines/ is duet.pipelines, ...),
## seen through a tree of links in .mypy/tree (pyproject.toml [tool.mypy])
typecheck: setup
	rm -rf .mypy/tree && mkdir -p .mypy/tree/duet
	find duet -mindepth 1 -maxdepth 1 ! -name __pycache__ -exec ln -s "$(CURDIR)/{}" .mypy/tree/duet/ \;
	for p in pipelines training schemas; do ln -s "$(CURDIR)/$$p" .mypy/tree/duet/$$p; done
	$(BIN)/mypy

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-fast: the edit loop — every test but the slow integration ones (S3, DDP, genre probe)
test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not bench" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m pytest -m bench -s tests/benchmarks $(PYTEST_ARGS)

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache .mypy
