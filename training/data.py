"""The trainer's data layer: a published dataset root (audio index, statistics, embedding
tables, pair manifests) read by URI, and an iterable of ready batches per epoch.

Work split: rank ``r`` of ``world`` takes manifest rows ``r, r + world, ...``; the rank's rows
form batches of ``batch_size`` (the tail that does not fill a batch on every rank is dropped
and counted); DataLoader worker ``w`` of ``W`` produces batches ``w, w + W, ...``, which the
DataLoader hands back in batch order. The sample order is therefore a pure function of (the
manifest = seed and epoch, world size, batch size), and resuming at step ``s`` starts at batch
``s`` with exactly the samples an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch

from duet import layout, publish, readers, schemas
from duet.hashing import derive_seed
from duet.index import AudioIndex, IntegrityError, MemberError
from duet.pipelines.pairs import runs
from duet.training.store import Store

log = logging.getLogger(__name__)


class Root(AudioIndex):
    """A published dataset root read through a :class:`~duet.training.store.Store`: the audio
    index, its members and statistics (:class:`duet.index.AudioIndex`), plus the embedding
    tables and pair runs a recipe reads."""

    def __init__(self, store: Store):
        super().__init__(store)
        self.store = store
        self._vectors: dict[str, dict[str, np.ndarray]] = {}
        self._runs: dict[str, dict] = {}

    def table(self, path: str) -> pa.Table:
        """A published table below the root (``emb/w2v/vectors.parquet``, ``emb/genre_w2v/
        genres.parquet``): the files its folder's ``_SUCCESS`` lists; NotPublished (naming the
        command that makes it) when that folder has no readable marker."""
        folder, _, name = layout.relative(path, "table").rpartition("/")
        published = publish.open_source(self.store, folder, layout.made_by(folder))
        parts = published.parts(name)
        if not parts:
            raise publish.NotPublished(f"{path} is not listed in {folder}/{layout.SUCCESS} "
                                       f"(run {layout.made_by(folder)})")  # fmt: skip
        prefix = f"{folder}/" if folder else ""
        return pa.concat_tables([schemas.parquet_from_bytes(self.store.read(prefix + p))
                                 for p in parts])  # fmt: skip

    def vectors(self, table: str) -> dict[str, np.ndarray]:
        """An embedding table (``emb/w2v/vectors.parquet``, ...) as id → float32 vector."""
        if table not in self._vectors:
            t = readers.track_keyed(self.table(table))
            matrix = np.asarray(t.column("vector").combine_chunks().values, np.float32)
            matrix = matrix.reshape(t.num_rows, -1)
            self._vectors[table] = dict(zip(t.column("track_id").to_pylist(), matrix, strict=True))
        return self._vectors[table]

    def genres(self, folder: str) -> dict[str, np.ndarray]:
        """Per track, its genre Word2Vec vectors ``[GENRE_SLOTS, dim]`` (padding rows are zero),
        from ``folder``'s ``track_genres.parquet`` and ``genres.parquet``."""
        key = f"genres:{folder}"
        if key not in self._vectors:
            table = self.table(f"{folder}/{layout.GENRES}")
            vectors = np.asarray(table.column("vector").combine_chunks().values, np.float32)
            vectors = vectors.reshape(table.num_rows, -1)[
                np.argsort(table.column("index").to_numpy())
            ]
            tracks = self.table(f"{folder}/{layout.TRACK_GENRES}")
            ids = np.asarray(tracks.column("genre_ids").combine_chunks().values).reshape(
                -1, schemas.GENRE_SLOTS
            )
            padded = np.vstack([vectors, np.zeros((1, vectors.shape[1]), np.float32)])
            stacked = padded[np.where(ids >= 0, ids, len(vectors))]
            with_genres = tracks.column("n_genres").to_numpy() > 0
            self._vectors[key] = {t: v for t, v, ok in zip(tracks.column("track_id").to_pylist(),
                                                            stacked, with_genres, strict=True) if ok}  # fmt: skip
        return self._vectors[key]

    def latest_run(self) -> str:
        """The run ``pairs/LATEST`` names, if its ``_SUCCESS`` is readable (else NotPublished)."""
        try:
            raw = self.store.read(layout.LATEST)
        except OSError:
            raw = None
        run = runs.parse_latest(raw, f"{self.store.root}/{layout.LATEST}")
        self._run(run)
        return run

    def _run(self, run: str) -> dict:
        if run not in self._runs:
            self._runs[run] = publish.open_source(
                self.store, layout.pair_run(run), "duet pairs"
            ).body
        return self._runs[run]

    def pair_runs(self) -> list[tuple[str, dict]]:
        """Complete pair runs with their ``_SUCCESS`` bodies, newest first (by ``published``);
        a marker that does not parse is a run that is not published."""
        found = []
        for path in self.store.glob(f"{layout.PAIRS}/*/{layout.SUCCESS}"):
            run = path.split("/")[-2]
            try:
                body = publish.parse(self.store.read(path))
            except OSError:
                continue
            if isinstance(body, dict):
                found.append((run, body))
        return sorted(found, key=lambda kv: (kv[1].get("published", 0), kv[0]), reverse=True)

    def epoch_rows(self, run: str, body: dict, strategy: str, epoch: int) -> int:
        """Rows of one strategy's manifest of one epoch in a run (0 when it has none): from
        the run's marker, or from the manifest itself when the marker does not say."""
        stats = (body.get("stats") or {}).get(strategy, {}).get(f"{epoch:04d}")
        if isinstance(stats, dict) and isinstance(stats.get("rows"), int):
            return stats["rows"]
        try:
            return self.manifest(run, strategy, epoch).num_rows
        except (publish.NotPublished, OSError):
            return 0

    def run_for(self, strategy: str, epoch: int) -> str | None:
        """The newest complete pair run that has rows of ``strategy`` in ``epoch``, or None.
        ``pairs/LATEST`` is not required to hold the strategy: a newer run made for another
        recipe does not hide an older one that has it."""
        for run, body in self.pair_runs():
            if strategy in (body.get("strategies") or []) and self.epoch_rows(
                run, body, strategy, epoch
            ):
                return run
        return None

    def manifest(self, run: str, strategy: str, epoch: int) -> pa.Table:
        """One epoch's manifest of a published run (the file its ``_SUCCESS`` lists)."""
        data = self.store.read(runs.manifest(run, self._run(run), strategy, epoch))
        return schemas.conform(schemas.parquet_from_bytes(data), schemas.PAIRS)


@dataclass(frozen=True)
class View:
    """One input of a recipe: a crop of an audio stream, or an embedding looked up by id.

    ``offsets``: "anchor" or "positive" takes that manifest offset column (crop strategies),
    "random" draws a fresh crop per sample and epoch (Alonso's re-cropping), seeded by
    (seed, epoch, row, view).
    """

    name: str
    track: str = "anchor"  # anchor | positive
    stream: str | None = None
    length: int = 0
    offsets: str = "random"
    table: str | None = None  # embedding table for lookups
    genres: str | None = None  # genre Word2Vec folder: the track's genre vectors [10, dim]
    profile: str | None = None  # mel profile whose statistics standardise the crop

    def __post_init__(self) -> None:
        """Names that become paths below the dataset root must stay below it."""
        for value, what in ((self.table, "table"), (self.genres, "genres")):
            if value is not None:
                layout.relative(value, f"view {self.name!r}: {what}")
        for value, what in ((self.stream, "stream"), (self.profile, "profile")):
            if value is not None:
                layout.slug(value, f"view {self.name!r}: {what}")


SKIP_REASONS = ("missing", "corrupt", "unreadable")
"""Why a row is skipped: a member or vector not in the index (or a window outside it), bytes
that fail verification, a read that fails."""


@dataclass
class Counters:
    samples: int = 0
    skipped: int = 0
    reasons: dict = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def plan(rows: int, batch_size: int, rank: int, world: int, partial: bool = False) -> int:
    """Batches per rank for a manifest of ``rows`` (the same on every rank): each rank has
    ``rows // world`` rows; their tail that does not fill a batch is dropped, or with
    ``partial`` forms a last, smaller batch (small catalogues)."""
    per_rank = rows // world
    return -(-per_rank // batch_size) if partial else per_rank // batch_size


def batch_rows(batch: int, batch_size: int, rank: int, world: int,
               per_rank: int | None = None) -> np.ndarray:  # fmt: skip
    """Manifest rows of one batch of one rank (``per_rank``: the rank's row count, which
    shortens a partial last batch)."""
    positions = batch * batch_size + np.arange(batch_size)
    if per_rank is not None:
        positions = positions[positions < per_rank]
    return rank + world * positions


def _lookup(vectors: dict[str, np.ndarray], track: str, table: str) -> Callable[[], np.ndarray]:
    vector = vectors.get(track)
    if vector is None:
        raise MemberError(f"{track!r} has no vector in {table}")
    return lambda: vector


class EpochBatches(torch.utils.data.IterableDataset):
    """Ready batches of one epoch for one rank: ``{view: tensor, "ids": [...], "batch": b}``."""

    def __init__(self, root: Root, run: str, strategy: str, epoch: int, views: tuple[View, ...],
                 batch_size: int, seed: int, rank: int = 0, world: int = 1, start_batch: int = 0,
                 verify: bool = False, partial: bool = False):  # fmt: skip
        self.root, self.run, self.strategy, self.epoch = root, run, strategy, epoch
        self.views, self.batch_size, self.seed = views, batch_size, seed
        self.rank, self.world, self.start_batch, self.verify = rank, world, start_batch, verify
        table = root.manifest(run, strategy, epoch)
        self.columns = {c: table.column(c).to_pylist() for c in
                        ("anchor_id", "positive_id", "anchor_offset", "positive_offset")}  # fmt: skip
        self.batches = plan(table.num_rows, batch_size, rank, world, partial)
        self.per_rank = table.num_rows // world
        self.dropped = table.num_rows - min(self.batches * batch_size, self.per_rank) * world
        self.counters = Counters()

    def __len__(self) -> int:
        return max(self.batches - self.start_batch, 0)

    def _window(self, view: View, row: int, index: int) -> Callable[[], np.ndarray]:
        track = self.columns[f"{view.track}_id"][row]
        if view.table:
            return _lookup(self.root.vectors(view.table), track, view.table)
        if view.genres:
            return _lookup(self.root.genres(view.genres), track, view.genres)
        stream = view.stream
        if stream is None:
            raise MemberError(f"view {view.name!r} names no stream, table or genres")
        member = self.root.members.get(stream, {}).get(track)
        if member is None:
            raise MemberError(f"{track!r} has no {view.stream} member")
        if view.offsets in ("anchor", "positive"):
            start = self.columns[f"{view.offsets}_offset"][row]
        else:
            room = member.length - view.length
            if room < 0:
                raise MemberError(f"{track!r} is shorter than {view.length}")
            rng = np.random.default_rng(derive_seed(self.seed, self.epoch, row, index))
            start = int(rng.integers(0, room + 1))
        return lambda: self.root.read_window(stream, track, start, view.length, self.verify)

    def _standardise(self, view: View, array: np.ndarray) -> np.ndarray:
        if view.profile:
            stats = self.root.stats(view.profile)
            return (array - stats.mean) / stats.std
        return array

    def make_batch(self, batch: int) -> dict:
        """One batch: ``{view: tensor, "ids": [...], "batch": b, "skipped": n, "reasons": {}}``
        (no view tensors and ``"empty": True`` when every row was skipped). A row is skipped,
        counted by reason and logged when one of its reads fails (member missing from the
        index, a window outside it, bytes that fail verification, a failed read)."""
        rows = batch_rows(batch, self.batch_size, self.rank, self.world, self.per_rank)
        reasons: dict[str, int] = {}

        def skip(row: int, reason: str, exc: Exception) -> None:
            log.warning("skipping row %d of %s epoch %d: %s", row, self.strategy, self.epoch, exc)
            self.counters.skip(reason)
            reasons[reason] = reasons.get(reason, 0) + 1

        reads = {}
        for row in rows:
            try:
                fetch = [self._window(v, row, i) for i, v in enumerate(self.views)]
            except MemberError as exc:
                skip(row, "missing", exc)
                continue
            reads[row] = [self.root.store.pool.submit(f) for f in fetch]
        out: dict = {v.name: [] for v in self.views}
        out["ids"] = []
        for row, futures in reads.items():
            try:
                arrays = [f.result() for f in futures]
            except IntegrityError as exc:
                skip(row, "corrupt", exc)
                continue
            except (MemberError, OSError) as exc:
                skip(row, "unreadable", exc)
                continue
            for view, array in zip(self.views, arrays, strict=True):
                out[view.name].append(self._standardise(view, array))
            out["ids"].append(self.columns["anchor_id"][row])
        done = {"batch": batch, "ids": out["ids"], "skipped": len(rows) - len(out["ids"]),
                "reasons": reasons}  # fmt: skip
        if not out["ids"]:
            return {**done, "empty": True}
        self.counters.samples += len(out["ids"])
        return {**done, **{v.name: torch.from_numpy(np.stack(out[v.name])) for v in self.views}}

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for batch in range(self.start_batch + worker, self.batches, workers):
            yield self.make_batch(batch)
