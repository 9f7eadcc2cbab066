"""Splits: the size of train/val/test and how evenly each genre is spread over them (the
splits are multilabel-stratified on genres)."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

import duet.report.plots as plots
from duet import layout, publish, schemas, storage
from duet.report.common import Context, Section, Table
from duet.report.sample import read_sample

GENRES_SHOWN = 14


def gather(ctx: Context) -> Section:
    section = Section("splits", "Splits")
    body = ctx.require(section, layout.SPLITS, "splits.parquet", ctx.command("splits"))
    if body is None:
        return section
    counts = body["counts"]
    total = sum(counts.get(s, 0) for s in schemas.SPLIT_NAMES)
    for name in schemas.SPLIT_NAMES:
        section.fact(name, f"{name} tracks", counts.get(name, 0))
    for key in ("excluded", "tracks_without_genres"):
        if key in counts:
            section.fact(key, key.replace("_", " "), counts[key])
    section.figures.append(plots.bars(
        "sizes", "Split sizes", list(schemas.SPLIT_NAMES),
        [counts.get(s, 0) for s in schemas.SPLIT_NAMES], xlabel="tracks",
        annotate="{:,.0f}", caption="tracks per split (the splits _SUCCESS); shares: "
        + ", ".join(f"{s} {100 * counts.get(s, 0) / max(1, total):.1f} %"
                    for s in schemas.SPLIT_NAMES),
    ))  # fmt: skip
    _balance(ctx, section, body)
    return section


def _genre_table(ctx: Context, body: dict) -> str | None:
    """The track-meta table the splits were stratified on, when it is published."""
    uri = body.get("inputs", {}).get("track_meta", {}).get("uri")
    for candidate in (uri, ctx.at(layout.TRACK_META)):
        if candidate and storage.exists(candidate):
            try:
                if publish.read_success(candidate) is not None:
                    return candidate
            except ValueError:
                continue
    return None


def _balance(ctx: Context, section: Section, body: dict) -> None:
    uri = _genre_table(ctx, body)
    if uri is None:
        section.notes.append("Label balance: the track-meta table the splits were made from is "
                             "not published here, so genre shares per split are not shown.")  # fmt: skip
        return
    splits = read_sample(ctx.at(layout.SPLITS), schemas.SPLITS, ["track_id", "split"],
                         ctx.max_rows, ctx.seed)  # fmt: skip
    meta = read_sample(uri, schemas.TRACK_META, ["track_id", "genres"], ctx.max_rows, ctx.seed)
    where = pc.index_in(meta.table.column("track_id"), value_set=splits.table.column("track_id"))
    known = pc.is_valid(where)
    if not pc.any(known).as_py():
        return
    split = splits.table.column("split").take(where.filter(known)).to_numpy(zero_copy_only=False)
    lists = meta.table.column("genres").filter(known).combine_chunks()
    flat = pc.list_flatten(lists).to_numpy(zero_copy_only=False)
    owner = pc.list_parent_indices(lists).to_numpy()
    names, freq = np.unique(flat, return_counts=True) if len(flat) else (np.array([]), [])
    top = [str(names[i]) for i in np.argsort(-np.asarray(freq), kind="stable")[:GENRES_SHOWN]]
    sizes = {s: int((split == s).sum()) for s in schemas.SPLIT_NAMES}
    series: dict[str, list[float]] = {}
    rows: list[list] = []
    for s in schemas.SPLIT_NAMES:
        tracks = split[owner] == s
        series[s] = [round(100 * len(set(owner[tracks & (flat == g)])) / max(1, sizes[s]), 2)
                     for g in top]  # fmt: skip
    for i, g in enumerate(top):
        shares = [series[s][i] for s in schemas.SPLIT_NAMES]
        rows.append([g, *shares, round(max(shares) - min(shares), 2)])
    gap = max((r[-1] for r in rows), default=0.0)
    section.fact("largest_gap", "largest genre share gap between splits", gap, "points")
    scope = "all tracks" if splits.exact and meta.exact else "the tracks read"
    section.figures.append(plots.grouped_bars(
        "balance", "Genre share per split", top, series, ylabel="tracks with the genre (%)",
        caption=f"share of each split's tracks that carry each of the {len(top)} most frequent "
                f"genres, over {scope} ({len(split):,} tracks with metadata); stratified "
                "splits keep the bars of a genre level",
    ))  # fmt: skip
    section.tables.append(Table(
        "balance", "Genre share per split (%)", ["genre", *schemas.SPLIT_NAMES, "gap (points)"],
        rows, note=f"genres from {uri}",
    ))  # fmt: skip
