"""Per-epoch pair manifests for every strategy, published atomically.

Each (strategy, epoch) is a pure function of (tables, seed, epoch, strategy): its random draws
come from ``derive_seed(seed, epoch, strategy)``, so epochs are independent Beam elements and
the result is the same on any runner and worker count. Layout::

    pairs/<run>/<strategy>/epoch=NNNN/part-00000.parquet   PAIRS rows
    pairs/<run>/<strategy>/epoch=NNNN/_SUCCESS             that epoch's statistics
    pairs/<run>/_SUCCESS                                   every statistic, config, inputs
    pairs/LATEST                                           the newest complete run's id

A run's folder is trusted only with its ``_SUCCESS``; ``LATEST`` is replaced (one write) after
it. A re-run of the same run skips epochs whose marker matches, so a crashed run resumes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics
from duet.pipelines import pair_kernels as kernels

from duet import __version__, publish, schemas, storage
from duet.hashing import derive_seed

FORMAT_VERSION = 1
PAIRS_DIR = "pairs"
LATEST = "LATEST"


@dataclass(frozen=True)
class Crop:
    """A crop strategy: windows of ``length`` units (samples or frames) of ``stream``."""

    stream: str
    length: int
    gap: int = 0


CROPS = {
    "self": Crop("wav-22050", 59_049),  # CLMR / PEMR / SimCLR: two independent crops
    "self_mel": Crop("mel-alonso", 256),  # the same on mel frames (Alonso's 256-frame patches)
    "adjacent": Crop("mel-choi", 188, gap=31),  # Choi: 3 s, then the next 3 s after 0.5 s
    "random_segment": Crop("mel-choi", 188),  # Choi: another non-overlapping 3 s segment
    "cpc": Crop("mel-choi", 752),  # Choi's CPC: one 12 s window
}
PAIRED = ("playlist_co", "playlist_tco", "artist_co")
LOOKUP = ("w2v", "cf", "multimodal")
STRATEGIES = PAIRED + LOOKUP + tuple(CROPS)
ONE_PAIR_PER_TRACK = ("playlist_co", "playlist_tco")


class PairsInputError(ValueError):
    """A strategy's input table is missing or unusable."""


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Inputs:
    """Where each strategy's tables live (defaults: the dataset root's standard names)."""

    data: str
    playlists: str | None = None
    topk: str | None = None
    track_meta: str | None = None
    w2v: str | None = None
    cf: str | None = None
    genres: str | None = None
    splits: str | None = None

    def uri(self, name: str) -> str:
        given = getattr(self, name)
        if given:
            return given
        default = {
            "playlists": "playlists.parquet", "topk": "cooc/topk.parquet",
            "track_meta": "track_meta.parquet", "w2v": "emb/w2v/vectors.parquet",
            "cf": "emb/cf-warp/vectors.parquet", "genres": "emb/genre_w2v/track_genres.parquet",
            "splits": "splits.parquet",
        }[name]  # fmt: skip
        return storage.join(self.data, default)

    def needed(self, strategy: str, split: tuple[str, ...]) -> list[str]:
        need = {"playlist_co": ["playlists"], "playlist_tco": ["topk"],
                "artist_co": ["track_meta"], "w2v": ["w2v"], "cf": ["cf"],
                "multimodal": ["genres", "cf"]}.get(strategy, [])  # fmt: skip
        return need + (["splits"] if split else [])


def _require(uri: str, what: str) -> None:
    if not storage.exists(uri):
        raise PairsInputError(f"{what}: {uri} does not exist")


def encode_ids(values: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(sorted distinct ids, index of each value into them) in one hashing pass: Arrow
    dictionary-encodes a chunked array against one shared dictionary, which we then sort."""
    encoded = pc.dictionary_encode(values)
    if not encoded.num_chunks:
        return pa.array([], pa.string()), np.zeros(0, np.int32)
    dictionary = encoded.chunk(0).dictionary
    order = pc.sort_indices(dictionary).to_numpy()
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks])
    return dictionary.take(pa.array(order)), rank[codes]


def _csr(lists: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(ids, indptr, indices) of a chunked list<string> column; MPD-scale lists hold more than
    2 GB of strings, so nothing is combined into one chunk."""
    ids, indices = encode_ids(pc.list_flatten(lists))
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy()
    indptr = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return ids, indptr, indices


class Sources:
    """The tables of one run, loaded lazily once per worker and shared by its epochs."""

    def __init__(self, inputs: Inputs, split: tuple[str, ...]):
        self.inputs = inputs
        self.split = split
        self._lookup: dict[str, pa.Array] = {}

    @cached_property
    def audio(self) -> pa.Array | None:
        """Track ids with audio (any stream), or None when the root has no published index."""
        if not storage.exists(publish.marker_uri(self.inputs.data)):
            return None
        index = schemas.read_table(storage.join(self.inputs.data, "index"), schemas.AUDIO_INDEX)
        return pc.unique(index.column("track_id"))

    @cached_property
    def in_split(self) -> pa.Array | None:
        if not self.split:
            return None
        uri = self.inputs.uri("splits")
        _require(uri, "--split needs the splits table (duet splits)")
        table = schemas.read_table(uri, schemas.SPLITS)
        keep = pc.is_in(table.column("split"), value_set=pa.array(list(self.split)))
        return table.filter(keep).column("track_id").combine_chunks()

    def eligible(self, ids: pa.Array) -> np.ndarray:
        """Which of ``ids`` have audio (when an index exists) and are in the split."""
        mask = np.ones(len(ids), bool)
        for allowed in (self.audio, self.in_split):
            if allowed is not None:
                mask &= pc.is_in(ids, value_set=allowed).to_numpy(zero_copy_only=False)
        return mask

    @cached_property
    def playlists(self):
        uri = self.inputs.uri("playlists")
        _require(uri, "playlist_co needs the playlists table (duet playlists)")
        return _csr(schemas.read_table(uri, schemas.PLAYLISTS).column("track_ids"))

    @cached_property
    def topk(self):
        uri = self.inputs.uri("topk")
        _require(uri, "playlist_tco needs the top-K table (duet cooccurrence)")
        table = schemas.read_table(uri, schemas.TOPK).filter(pc.less(pc.field("rank"), 10))
        both = pa.chunked_array(
            table.column("track_id").chunks + table.column("neighbor_id").chunks
        )
        ids, codes = encode_ids(both)
        rows, cols = codes[: table.num_rows], codes[table.num_rows :]
        ranks = table.column("rank").to_numpy()
        neighbors = np.full((len(ids), 10), -1, np.int32)
        neighbors[rows, ranks] = cols
        return ids, neighbors

    @cached_property
    def artist_groups(self):
        uri = self.inputs.uri("track_meta")
        _require(uri, "artist_co needs the track meta table (duet playlists)")
        meta = schemas.read_table(uri, schemas.TRACK_META)
        artists = meta.column("artist_ids")
        owners = pa.chunked_array(
            [t.take(pc.list_parent_indices(a)) for t, a in
             zip(meta.column("track_id").chunks, artists.chunks, strict=True)], pa.string())  # fmt: skip
        artist_ids, groups = encode_ids(pc.list_flatten(artists))
        ids, tracks = encode_ids(owners)
        keys = np.unique(
            groups.astype(np.int64) * max(len(ids), 1) + tracks
        )  # (artist, track) once
        indptr = np.searchsorted(keys // max(len(ids), 1), np.arange(len(artist_ids) + 1))
        indices = (keys % max(len(ids), 1)).astype(np.int32)
        return ids, indptr, indices

    def _vector_ids(self, name: str) -> pa.Array:
        uri = self.inputs.uri(name)
        _require(uri, f"{name} needs its embedding table (duet embeddings)")
        return pc.unique(schemas.read_embeddings(uri).column("id"))

    def lookup(self, strategy: str) -> pa.Array:
        """Sorted ids of the tracks that have what ``strategy`` looks up."""
        if strategy not in self._lookup:
            ids = self._vector_ids("cf" if strategy == "multimodal" else strategy)
            if strategy == "multimodal":
                uri = self.inputs.uri("genres")
                _require(uri, "multimodal needs the track genres table (duet embeddings genre-w2v)")
                genres = schemas.read_table(uri, schemas.TRACK_GENRES)
                with_genres = genres.filter(pc.greater(genres.column("n_genres"), 0))
                ids = ids.filter(
                    pc.is_in(ids, value_set=with_genres.column("track_id").combine_chunks())
                )
            self._lookup[strategy] = ids.sort()
        return self._lookup[strategy]

    def frames(self, stream: str) -> tuple[pa.Array, np.ndarray]:
        """Track ids and their length in ``stream`` units (samples or frames)."""
        if self.audio is None:
            raise PairsInputError(
                f"crop strategies need the audio index: {self.inputs.data} has none"
            )
        index = schemas.read_table(storage.join(self.inputs.data, "index"), schemas.AUDIO_INDEX)
        rows = index.filter(pc.equal(index.column("stream"), stream))
        if not rows.num_rows:
            streams = sorted(set(index.column("stream").to_pylist()))
            raise PairsInputError(f"the audio index has no stream {stream!r}; it has {streams}")
        rows = rows.sort_by("track_id")
        units = "samples" if stream.startswith("wav-") else "frames"
        return rows.column("track_id").combine_chunks(), rows.column(units).to_numpy()


# ---------------------------------------------------------------- one epoch (pure)


def epoch_seed(seed: int, epoch: int, strategy: str) -> int:
    return derive_seed(seed, epoch, strategy)


def _paired_table(strategy: str, epoch: int, ids: pa.Array, anchors, positives) -> pa.Table:
    n = len(anchors)
    return pa.table({
        "epoch": pa.array(np.full(n, epoch, np.int32)), "strategy": pa.repeat(strategy, n),
        "anchor_id": ids.take(pa.array(anchors)), "positive_id": ids.take(pa.array(positives)),
    })  # fmt: skip


def _stats(eligible: int, rows: int, covered: int, **extra) -> dict:
    return {"eligible": eligible, "rows": rows, "tracks_covered": covered,
            "coverage": round(covered / eligible, 6) if eligible else 0.0,
            "unpaired": eligible - covered, **extra}  # fmt: skip


def pair_indices(sources: Sources, strategy: str, seed: int, epoch: int):
    """The pairing itself: (ids, anchors, positives, number of eligible tracks), pairs as
    indices into ``ids``."""
    s = epoch_seed(seed, epoch, strategy)
    rng = np.random.Generator(np.random.PCG64(s))
    if strategy == "playlist_tco":
        ids, neighbors = sources.topk
        available = sources.eligible(ids)
        order = rng.permutation(len(ids))  # unavailable tracks are skipped by the kernel
        anchors, positives = kernels.playlist_tco(neighbors, order, available, s)
    else:
        ids, indptr, indices = (
            sources.playlists if strategy == "playlist_co" else sources.artist_groups
        )
        available = sources.eligible(ids)
        order = rng.permutation(len(indptr) - 1)
        one_pair = strategy in ONE_PAIR_PER_TRACK
        anchors, positives = kernels.pair_off(indptr, indices, order, available, s, one_pair)
    return ids, anchors, positives, int(available.sum())


def paired_epoch(sources: Sources, strategy: str, seed: int, epoch: int) -> tuple[pa.Table, dict]:
    """Playlist CO, Playlist TCO or Artist CO for one epoch."""
    ids, anchors, positives, eligible = pair_indices(sources, strategy, seed, epoch)
    if strategy in ONE_PAIR_PER_TRACK:
        covered = 2 * len(anchors)
    else:
        seen = np.zeros(len(ids), bool)
        seen[anchors] = seen[positives] = True
        covered = int(seen.sum())
    table = _paired_table(strategy, epoch, ids, anchors, positives)
    return table, _stats(eligible, len(anchors), covered, pairs=len(anchors))


def lookup_epoch(sources: Sources, strategy: str, seed: int, epoch: int) -> tuple[pa.Table, dict]:
    """One row per eligible track with the embedding(s), in a fresh random order. Coverage is
    over the tracks with audio (in the split): those without the embedding are unpaired."""
    ids = sources.lookup(strategy)
    ids = ids.filter(pa.array(sources.eligible(ids)))
    rng = np.random.Generator(np.random.PCG64(epoch_seed(seed, epoch, strategy)))
    order = rng.permutation(len(ids))
    n = len(ids)
    table = pa.table({
        "epoch": pa.array(np.full(n, epoch, np.int32)), "strategy": pa.repeat(strategy, n),
        "anchor_id": ids.take(pa.array(order)), "positive_id": pa.nulls(n, pa.string()),
    })  # fmt: skip
    population = sources.audio if sources.audio is not None else ids
    if sources.audio is not None and sources.in_split is not None:
        population = population.filter(pc.is_in(population, value_set=sources.in_split))
    return table, _stats(max(len(population), n), n, n)


def crop_offsets(lengths: np.ndarray, crop: Crop, strategy: str, rng: np.random.Generator):
    """(usable mask, anchor offsets, positive offsets or None) for tracks of ``lengths``."""
    need = {"self": crop.length, "self_mel": crop.length, "adjacent": 2 * crop.length + crop.gap,
            "random_segment": 2 * crop.length, "cpc": crop.length}[strategy]  # fmt: skip
    usable = lengths >= need
    room = lengths[usable] - crop.length + 1  # valid start positions of one window
    if strategy in ("self", "self_mel"):
        return usable, rng.integers(0, room), rng.integers(0, room)
    if strategy == "cpc":
        return usable, rng.integers(0, room), None
    if strategy == "adjacent":
        start = rng.integers(0, lengths[usable] - need + 1)
        follow = start + crop.length + crop.gap
        swap = rng.random(len(start)) < 0.5
        return usable, np.where(swap, follow, start), np.where(swap, start, follow)
    # random_segment: the anchor uniform among starts that leave room for a non-overlapping
    # segment ([0, room-1-L] ∪ [L, room-1]), then the positive uniform among those segments.
    length = crop.length
    last_early = room - 1 - length  # ≥ 0 because lengths ≥ 2L
    contiguous = last_early >= length - 1
    n_anchor = np.where(contiguous, room, 2 * (room - length))
    u = rng.integers(0, n_anchor)
    a = np.where(contiguous | (u <= last_early), u, length + (u - last_early - 1))
    before = np.maximum(a - length + 1, 0)  # starts [0, a-L]
    after = np.maximum(room - (a + length), 0)  # starts [a+L, room-1]
    v = rng.integers(0, before + after)
    return usable, a, np.where(v < before, v, a + length + (v - before))


def crop_epoch(sources: Sources, strategy: str, seed: int, epoch: int) -> tuple[pa.Table, dict]:
    """Crop offsets from each track's length in the index; too-short tracks are counted."""
    crop = CROPS[strategy]
    ids, lengths = sources.frames(crop.stream)
    keep = sources.eligible(ids)
    ids, lengths = ids.filter(pa.array(keep)), lengths[keep]
    rng = np.random.Generator(np.random.PCG64(epoch_seed(seed, epoch, strategy)))
    order = rng.permutation(len(ids))
    ids, lengths = ids.take(pa.array(order)), lengths[order]
    usable, first, second = crop_offsets(lengths, crop, strategy, rng)
    ids = ids.filter(pa.array(usable))
    n = len(ids)
    table = pa.table({
        "epoch": pa.array(np.full(n, epoch, np.int32)), "strategy": pa.repeat(strategy, n),
        "anchor_id": ids, "positive_id": pa.nulls(n, pa.string()),
        "stream": pa.repeat(crop.stream, n), "anchor_offset": pa.array(first, pa.int64()),
        "positive_offset": pa.array(second, pa.int64()) if second is not None else pa.nulls(n, pa.int64()),
        "length": pa.array(np.full(n, crop.length, np.int32)),
    })  # fmt: skip
    stats = _stats(len(lengths), n, n, too_short=int((~usable).sum()))
    return table, stats


def make_epoch(sources: Sources, strategy: str, seed: int, epoch: int) -> tuple[pa.Table, dict]:
    if strategy in PAIRED:
        return paired_epoch(sources, strategy, seed, epoch)
    if strategy in LOOKUP:
        return lookup_epoch(sources, strategy, seed, epoch)
    if strategy in CROPS:
        return crop_epoch(sources, strategy, seed, epoch)
    raise PairsInputError(f"unknown strategy {strategy!r}; expected some of {list(STRATEGIES)}")


# ---------------------------------------------------------------- the job


@dataclass(frozen=True)
class PairsJob:
    inputs: Inputs
    strategies: tuple[str, ...]
    epochs: tuple[int, int]
    seed: int = 0
    run_id: str | None = None
    split: tuple[str, ...] = ()
    keep: int | None = None

    @property
    def root(self) -> str:
        return storage.join(self.inputs.data, PAIRS_DIR)

    def fingerprints(self) -> dict[str, str]:
        names = sorted({n for s in self.strategies for n in self.inputs.needed(s, self.split)})
        out = {n: publish.input_fingerprint(self.inputs.uri(n)) for n in names}
        if any(s in CROPS for s in self.strategies) or storage.exists(
                publish.marker_uri(self.inputs.data)):  # fmt: skip
            out["audio_index"] = publish.input_fingerprint(self.inputs.data)
        return out

    @cached_property
    def key(self) -> str:
        """Digest of everything that decides the run's bytes (not the epoch range)."""
        body = {"strategies": sorted(self.strategies), "seed": self.seed, "split": self.split,
                "inputs": self.fingerprints(), "format": FORMAT_VERSION, "code": __version__}  # fmt: skip
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    @property
    def run(self) -> str:
        return self.run_id or f"run-{self.key[:12]}"

    @property
    def run_dir(self) -> str:
        return storage.join(self.root, self.run)

    def epoch_dir(self, strategy: str, epoch: int) -> str:
        return storage.join(self.run_dir, strategy, f"epoch={epoch:04d}")


def epoch_marker(job: PairsJob, strategy: str, epoch: int) -> dict | None:
    body = publish.read_success(job.epoch_dir(strategy, epoch))
    return body if body and body.get("key") == job.key else None


def write_epoch(job: PairsJob, sources: Sources, strategy: str, epoch: int) -> dict:
    """Write one (strategy, epoch) unless a matching marker says it is already there."""
    done = epoch_marker(job, strategy, epoch)
    if done is not None:
        return {**done, "skipped": True}
    folder = job.epoch_dir(strategy, epoch)
    publish.clear_success(folder)
    table, stats = make_epoch(sources, strategy, job.seed, epoch)
    schemas.write_table(table, storage.join(folder, "part-00000.parquet"), schemas.PAIRS)
    body = {"strategy": strategy, "epoch": epoch, "key": job.key, "stats": stats}
    publish.write_success(folder, body)
    return {**body, "skipped": False}


def write_latest(root: str, run: str) -> None:
    """Point ``pairs/LATEST`` at ``run`` in one write (a rename locally)."""
    uri = storage.join(root, LATEST)
    if storage.is_remote(uri):
        storage.write_bytes(uri, run.encode())  # one PUT: readers see the old or the new
        return
    import os

    tmp = storage.local_path(uri) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(run.encode())
    os.replace(tmp, storage.local_path(uri))


def latest_run(data: str) -> str:
    """The newest complete run of a dataset root (what a trainer reads at an epoch boundary)."""
    uri = storage.join(data, PAIRS_DIR, LATEST)
    if not storage.exists(uri):
        raise publish.NotPublished(f"{data} has no published pair run ({uri} missing)")
    run = storage.read_bytes(uri).decode().strip()
    publish.require_success(storage.join(data, PAIRS_DIR, run))
    return run


def runs(root: str) -> list[tuple[str, dict]]:
    """Complete runs under ``pairs/`` with their markers, oldest first (by ``published``)."""
    found = {}
    for uri in storage.list_files(root):
        parts = uri[len(root) :].strip("/").split("/")
        if len(parts) == 2 and parts[1] == publish.SUCCESS:
            found[parts[0]] = publish.read_success(storage.join(root, parts[0]))
    return sorted(found.items(), key=lambda kv: (kv[1].get("published", 0), kv[0]))


def prune(root: str, keep: int, protect: str) -> list[str]:
    """Delete all but the newest ``keep`` complete runs (never ``protect``)."""
    complete = [r for r, _ in runs(root)]
    doomed = [r for r in complete[: max(len(complete) - keep, 0)] if r != protect]
    for run in doomed:
        folder = storage.join(root, run)
        publish.clear_success(folder)  # unpublish first: readers stop trusting it
        storage.delete_tree(folder)
    return doomed


def finalize(results: list[dict], job: PairsJob, published: float) -> dict:
    stats: dict = {}
    for r in sorted(results, key=lambda r: (r["strategy"], r["epoch"])):
        stats.setdefault(r["strategy"], {})[f"{r['epoch']:04d}"] = r["stats"]
    body = {
        "job": "pairs", "code_version": __version__, "format_version": FORMAT_VERSION,
        "run": job.run, "key": job.key, "seed": job.seed, "split": list(job.split),
        "strategies": sorted(job.strategies), "epochs": list(job.epochs),
        "inputs": {n: {"uri": job.inputs.uri(n) if n != "audio_index" else job.inputs.data,
                       "fingerprint": f} for n, f in job.fingerprints().items()},
        "audio_filter": storage.exists(publish.marker_uri(job.inputs.data)),
        "crops": {s: asdict(c) for s, c in CROPS.items() if s in job.strategies},
        "stats": stats, "published": published,
        "skipped_epochs": sum(r["skipped"] for r in results),
    }  # fmt: skip
    publish.write_success(job.run_dir, body)
    write_latest(job.root, job.run)
    if job.keep:
        body["pruned"] = prune(job.root, job.keep, job.run)
    return body


_SOURCES: dict[tuple, Sources] = {}


class WriteEpoch(beam.DoFn):
    """One (strategy, epoch) per element; the tables are loaded once per worker process."""

    def __init__(self, job: PairsJob):
        self.job = job
        self.written = Metrics.counter("pairs", "epochs_written")
        self.skipped = Metrics.counter("pairs", "epochs_skipped")

    def process(self, element):
        strategy, epoch = element
        cache_key = (self.job.inputs, self.job.split)
        sources = _SOURCES.setdefault(cache_key, Sources(self.job.inputs, self.job.split))
        result = write_epoch(self.job, sources, strategy, epoch)
        (self.skipped if result["skipped"] else self.written).inc()
        yield result


def check_strategies(strategies: tuple[str, ...]) -> None:
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise PairsInputError(f"unknown strategies {unknown}; expected some of {list(STRATEGIES)}")


def build(pipeline: beam.Pipeline, job: PairsJob, published: float) -> beam.PCollection:
    """Add the pairs job to ``pipeline``; returns a PCollection of the run's ``_SUCCESS``."""
    check_strategies(job.strategies)
    for strategy in job.strategies:
        for name in job.inputs.needed(strategy, job.split):
            _require(job.inputs.uri(name), f"{strategy} needs the {name} table")
    current = publish.read_success(job.run_dir)
    if current is not None and current.get("key") != job.key:
        publish.clear_success(job.run_dir)  # a reused --run-id over other inputs: unpublish
    tasks = [(s, e) for s in sorted(job.strategies) for e in range(*job.epochs)]
    return (
        pipeline
        | "Tasks" >> beam.Create(tasks)
        | "Spread" >> beam.Reshuffle()
        | "WriteEpoch" >> beam.ParDo(WriteEpoch(job))
        | "Collect" >> beam.combiners.ToList()
        | "Publish" >> beam.Map(finalize, job, published)
    )
