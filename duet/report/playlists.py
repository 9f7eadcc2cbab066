"""Playlists: how many, how long, how popular their tracks are, and what normalisation dropped
(by reason) — from ``playlists.parquet`` and its ``_SUCCESS``."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

import duet.report.plots as plots
from duet import layout, schemas, storage
from duet.report.common import Context, Section, Table
from duet.report.sample import read_all, read_sample

MAX_ENTRIES = 2_000_000
"""Playlist entries read at most (whole playlists, by row group): ~30 000 MPD playlists."""


def drops_by_reason(body: dict) -> dict[str, dict[str, int]]:
    """``{reason: {"entries", "tracks", "playlists"}}`` from a playlists summary, whose
    ``dropped`` counts are flat ``"<reason>/<what>"`` keys."""
    out: dict[str, dict[str, int]] = {}
    for key, value in body.get("dropped", {}).items():
        reason, _, what = key.rpartition("/")
        if isinstance(value, dict):  # {"reason": {"entries": n, ...}}
            out.setdefault(key, {}).update(value)
        else:
            out.setdefault(reason or key, {})[what or "entries"] = int(value)
    return out


def gather(ctx: Context) -> Section:
    section = Section("playlists", "Playlists")
    body = ctx.require(section, layout.PLAYLISTS, "playlists.parquet", ctx.command("playlists"))
    if body is None:
        return section
    counts = body["counts"]
    section.fact("playlists", "playlists", counts["playlists"])
    section.fact("entries", "entries (playlist positions)", counts["entries"])
    section.fact("entries_read", "entries read from the sources", counts["entries_read"])
    kept = counts["entries"] / counts["entries_read"] if counts["entries_read"] else 0.0
    section.fact("entries_kept", "entries kept", round(100 * kept, 2), "%")
    section.fact("mean_length", "mean playlist length",
                 round(counts["entries"] / max(1, counts["playlists"]), 1), "tracks")  # fmt: skip
    section.fact("tracks_with_meta", "tracks in track_meta", counts.get("tracks_with_meta"))
    section.fact("format", "source format", body["config"].get("format"))
    mean = counts["entries"] / max(1, counts["playlists"])
    budget = max(1_000, int(min(ctx.max_rows, MAX_ENTRIES / max(mean, 1.0))))
    sample = read_sample(ctx.at(layout.PLAYLISTS), schemas.PLAYLISTS, ["track_ids"], budget,
                         ctx.seed)  # fmt: skip
    lists = sample.table.column("track_ids").combine_chunks()
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    if len(lengths):
        section.fact("median_length", "median playlist length", float(np.median(lengths)),
                     "tracks")  # fmt: skip
        section.figures.append(plots.histogram(
            "lengths", "Playlist length", lengths, xlabel="tracks per playlist",
            ylabel="playlists", bins=60, marks={"median": float(np.median(lengths))}, unit="tracks",
            caption=f"number of tracks in each playlist, {sample.describe('playlists')}",
        ))  # fmt: skip
        _popularity(section, lists, sample)
    _drops(ctx, section, body)
    _meta(ctx, section)
    return section


def _meta(ctx: Context, section: Section) -> None:
    """How many tracks have artists and genres (what Artist CO, splits and genre vectors use)."""
    if ctx.marker(layout.TRACK_META) is None:
        return
    sample = read_sample(ctx.at(layout.TRACK_META), schemas.TRACK_META, ["artist_ids", "genres"],
                         ctx.max_rows, ctx.seed)  # fmt: skip
    if not sample.rows:
        return
    for column, label in (("artist_ids", "artists"), ("genres", "genres")):
        lengths = pc.list_value_length(sample.table.column(column)).to_numpy(zero_copy_only=False)
        distinct = len(pc.unique(pc.list_flatten(sample.table.column(column).combine_chunks())))
        section.fact(f"tracks_with_{label}", f"tracks with {label} in track_meta",
                     round(100 * float((lengths > 0).mean()), 1), "%")  # fmt: skip
        section.fact(f"distinct_{label}", f"distinct {label} ({sample.describe('tracks')})",
                     distinct)  # fmt: skip


def _popularity(section: Section, lists, sample) -> None:
    counts = pc.value_counts(pc.list_flatten(lists)).field("counts").to_numpy()
    once = int((counts == 1).sum())
    section.fact("distinct_tracks_read", "distinct tracks in the playlists read", len(counts))
    section.fact("single_playlist_share", "of those, in a single playlist read",
                 round(100 * once / max(1, len(counts)), 1), "%")  # fmt: skip
    scope = "all playlists" if sample.exact else \
        f"the {sample.rows:,} playlists read (a random {100 * sample.rows / sample.total:.1f} % " \
        "of row groups; counts scale with the share)"  # fmt: skip
    section.figures.append(plots.rank_frequency(
        "popularity", "Track popularity", counts, xlabel="track rank (most frequent first)",
        ylabel="playlists containing the track",
        caption=f"playlists per track against its rank, log-log, over {scope}; a straight line "
                "is a power law (MPD: the top track is in ~46 000 of 1 M playlists)",
    ))  # fmt: skip


def _drops(ctx: Context, section: Section, body: dict) -> None:
    drops = drops_by_reason(body)
    if "dropped" not in body and storage.exists(ctx.at(layout.PLAYLISTS_DROPPED)):
        table = read_all(ctx.at(layout.PLAYLISTS_DROPPED), schemas.PLAYLIST_DROPS,
                         ["reason", "entries", "tracks", "playlists"], by_marker=False)  # fmt: skip
        drops = {r["reason"]: r for r in table.to_pylist()}
    rows: list[list] = [[reason, d.get("entries", 0), d.get("tracks", 0), d.get("playlists", 0)]
            for reason, d in sorted(drops.items(), key=lambda kv: -kv[1].get("entries", 0))]  # fmt: skip
    section.fact("dropped_entries", "entries dropped", sum(r[1] for r in rows))
    section.tables.append(Table(
        "dropped", "Dropped by reason", ["reason", "entries", "distinct tracks", "playlists"],
        rows, note="what normalisation removed (the playlists _SUCCESS); nothing is dropped "
                   "without a row here",
    ))  # fmt: skip
    if len(rows) > 1:
        section.figures.append(plots.bars(
            "dropped", "Dropped entries by reason", [r[0] for r in rows], [r[1] for r in rows],
            xlabel="playlist entries dropped",
            caption="entries (playlist positions) removed by normalisation, per reason",
        ))  # fmt: skip
    if body["counts"].get("failures"):
        failures = read_sample(ctx.at(layout.PLAYLISTS_FAILURES), schemas.SOURCE_FAILURES,
                               ["source", "record", "error"], 20, ctx.seed,
                               by_marker=False)  # fmt: skip
        section.tables.append(Table(
            "source_failures", "Unreadable files and records", ["source", "record", "error"],
            [[r["source"], r["record"], r["error"][:200]] for r in failures.table.slice(0, 20)
             .to_pylist()],
            note=f"{body['counts']['failures']:,} in playlists_failures.parquet; the first 20",
        ))  # fmt: skip
