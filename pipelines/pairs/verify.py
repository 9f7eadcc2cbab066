"""``duet pairs --verify RUN``: re-check a published run against its tables.

Invariants, per (strategy, epoch): the file matches its schema, epoch and strategy; every
track is eligible (audio, split); no self-pairs for cross-track strategies; each track in at
most one pair for CO and TCO; CO partners share a playlist, Artist CO partners an artist, TCO
partners are within the anchor's top 10; crops lie inside the track and keep their strategy's
geometry; lookup rows are unique and have their embedding; row counts match the statistics.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from duet import layout, schemas
from duet.pipelines.csr import transpose
from duet.pipelines.pairs import kernels, runs
from duet.pipelines.pairs.common import CROPS, ONE_PAIR_PER_TRACK, PAIRED
from duet.pipelines.pairs.sources import Inputs, Sources


def _indices(ids: pa.Array, values: pa.Array) -> np.ndarray:
    return pc.fill_null(pc.index_in(values, value_set=ids), -1).to_numpy()


def _check_paired(sources: Sources, strategy: str, table: pa.Table, problems: list[str]):
    anchors, positives = table.column("anchor_id"), table.column("positive_id")
    if positives.null_count:
        problems.append(f"{positives.null_count} rows without a positive")
        return
    if pc.any(pc.equal(anchors, positives)).as_py():
        problems.append("self-pairs")
    if strategy in ONE_PAIR_PER_TRACK:
        both = pa.concat_arrays([anchors.combine_chunks(), positives.combine_chunks()])
        if len(pc.unique(both)) != len(both):
            problems.append("a track is in more than one pair")
    if strategy == "playlist_tco":
        ids, neighbors = sources.topk
        a, b = _indices(ids, anchors), _indices(ids, positives)
        ok = (a >= 0) & (b >= 0)
        ok[ok] = (neighbors[a[ok]] == b[ok, None]).any(axis=1)
        if not ok.all():
            problems.append(f"{int((~ok).sum())} partners outside the anchor's top 10")
        return
    ids, indptr, indices = sources.playlists if strategy == "playlist_co" else sources.artist_groups
    a, b = _indices(ids, anchors), _indices(ids, positives)
    known = (a >= 0) & (b >= 0)
    t_ptr, t_rows = transpose(indptr, indices, len(ids))
    shared = np.zeros(len(a), bool)
    shared[known] = kernels.share_group(t_ptr, t_rows, a[known].astype(np.int32),
                                        b[known].astype(np.int32), len(indptr) - 1)  # fmt: skip
    if not shared.all():
        what = "playlist" if strategy == "playlist_co" else "artist"
        problems.append(f"{int((~shared).sum())} pairs that share no {what}")


def _check_crops(sources: Sources, strategy: str, table: pa.Table, problems: list[str]):
    crop = CROPS[strategy]
    ids, lengths = sources.frames(crop.stream)
    where = _indices(ids, table.column("anchor_id"))
    if (where < 0).any():
        problems.append(f"{int((where < 0).sum())} tracks not in stream {crop.stream}")
        return
    total = lengths[where]
    length = table.column("length").to_numpy(zero_copy_only=False)
    if (length != crop.length).any() or set(table.column("stream").to_pylist()) != {crop.stream}:
        problems.append("wrong crop length or stream")
    offsets = [table.column("anchor_offset")]
    if strategy != "cpc":
        offsets.append(table.column("positive_offset"))
    for column in offsets:
        if column.null_count:
            problems.append("missing offsets")
            return
        values = column.to_numpy()
        if ((values < 0) | (values + crop.length > total)).any():
            problems.append("crops outside the track")
    if strategy in ("adjacent", "random_segment"):
        gap = np.abs(offsets[0].to_numpy() - offsets[1].to_numpy())
        bad = gap != crop.length + crop.gap if strategy == "adjacent" else gap < crop.length
        if bad.any():
            problems.append(f"{int(bad.sum())} segments that break the {strategy} geometry")


Report = dict[str, dict[str, list[str]]]
"""Problems by strategy and epoch ("NNNN"); an empty list when all is well."""


def verify(data: str, run: str, inputs: Inputs | None = None) -> Report:
    """Problems per strategy and epoch (empty lists when all is well)."""
    _, body = runs.read_run(data, run)
    inputs = inputs or Inputs(data)
    sources = Sources(inputs, tuple(body["split"]))
    report: Report = {}
    for strategy, epochs in sorted(body["stats"].items()):
        for epoch, stats in sorted(epochs.items()):
            problems: list[str] = []
            try:
                uri = layout.at(data, runs.manifest(run, body, strategy, int(epoch)))
                table = schemas.read_table(uri, schemas.PAIRS)
            except (OSError, schemas.SchemaError) as exc:
                report.setdefault(strategy, {})[epoch] = [f"unreadable: {exc}"]
                continue
            if table.num_rows != stats["rows"]:
                problems.append(f"{table.num_rows} rows, statistics say {stats['rows']}")
            if set(table.column("epoch").to_pylist()) - {int(epoch)} or set(
                    table.column("strategy").to_pylist()) - {strategy}:  # fmt: skip
                problems.append("rows of another epoch or strategy")
            ids = pa.concat_arrays([c.combine_chunks() for c in (table.column("anchor_id"),
                                    table.column("positive_id")) ])  # fmt: skip
            ids = pc.drop_null(ids)
            if not sources.eligible(ids).all():
                problems.append("tracks without audio or outside the split")
            if strategy in PAIRED:
                _check_paired(sources, strategy, table, problems)
            elif strategy in CROPS:
                _check_crops(sources, strategy, table, problems)
            else:
                anchors = table.column("anchor_id").combine_chunks()
                if len(pc.unique(anchors)) != len(anchors):
                    problems.append("a track appears twice")
                has = pc.is_in(anchors, value_set=sources.lookup(strategy))
                if len(anchors) and not pc.all(has).as_py():
                    problems.append("tracks without the embedding")
            report.setdefault(strategy, {})[epoch] = problems
    return report
