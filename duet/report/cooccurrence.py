"""Co-occurrence: how many neighbours each track has, how strong the top-10 are rank by rank,
how often pairs co-occur at all, and a few tracks' top-10 with their artists and genres."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

import duet.report.plots as plots
from duet import layout, schemas
from duet.report.common import Context, Section, Table, drop_empty_columns
from duet.report.sample import pick, read_ids, read_sample

QUANTILES = {"10th percentile": 10, "25th percentile": 25, "median": 50, "75th percentile": 75,
             "90th percentile": 90}  # fmt: skip


def gather(ctx: Context) -> Section:
    section = Section("cooccurrence", "Co-occurrence")
    folder = layout.COOC["playlist"]
    body = ctx.require(section, folder, f"{folder}/ (playlist co-occurrence)",
                       ctx.command("cooccurrence"))  # fmt: skip
    if body is not None:
        _summary(section, body, "")
        topk = ctx.at(f"{folder}/{layout.TOPK}")
        k = body["config"]["top_k"]
        _neighbours(ctx, section, topk, k)
        if layout.COUNTS in body.get("tables", []):
            _pair_counts(ctx, section, ctx.at(f"{folder}/{layout.COUNTS}"))
        _examples(ctx, section, topk, k)
    artist = ctx.require(section, layout.COOC["artist"], f"{layout.COOC['artist']}/ (artist "
                         "groups, for the Artist CO baseline)", ctx.command("cooccurrence-artist"))  # fmt: skip
    if artist is not None:
        _summary(section, artist, "artist ")
    return section


def _summary(section: Section, body: dict, prefix: str) -> None:
    c, key = body["counts"], prefix.strip().replace(" ", "_") + ("_" if prefix else "")
    what = "artist groups" if prefix else "playlists"
    section.fact(f"{key}groups_used", f"{what} used", c.get("groups_used"))
    section.fact(f"{key}groups_too_long", f"{what} skipped as too long "
                 f"(> {body['config']['max_group_tracks']:,} tracks)", c.get("groups_too_long"))  # fmt: skip
    section.fact(f"{key}groups_too_short", f"{what} under 2 tracks", c.get("groups_too_short"))
    section.fact(f"{key}anchor_tracks", f"{prefix}tracks with ≥ 1 neighbour", c["anchor_tracks"])
    section.fact(f"{key}topk_rows", f"{prefix}top-{body['config']['top_k']} rows", c["topk_rows"])
    if "pairs" in c:
        section.fact(f"{key}pairs", f"{prefix}co-occurring pairs (counts table)", c["pairs"])


def _neighbours(ctx: Context, section: Section, topk: str, k: int) -> None:
    sample = read_sample(topk, schemas.TOPK, ["rank", "count"], ctx.max_rows, ctx.seed)
    rank = sample.table.column("rank").to_numpy(zero_copy_only=False).astype(np.int64)
    count = sample.table.column("count").to_numpy(zero_copy_only=False)
    if not len(rank):
        return
    at_rank = np.bincount(rank, minlength=k + 1)
    exactly = at_rank[:k] - at_rank[1 : k + 1]  # tracks with exactly r + 1 neighbours
    section.fact("full_topk_share", f"tracks with a full top-{k}",
                 round(100 * at_rank[k - 1] / max(1, at_rank[0]), 1), "%")  # fmt: skip
    section.figures.append(plots.columns(
        "neighbour_counts", "Neighbours per track", [str(r + 1) for r in range(k)],
        exactly.tolist(), xlabel=f"neighbours kept (top-{k})", ylabel="tracks",
        caption=f"tracks by the number of co-occurring tracks they have (at most {k} are "
                f"kept), from {sample.describe('top-K rows')}",
    ))  # fmt: skip
    ranks = np.arange(k)
    by_rank = [count[rank == r] for r in ranks]
    series = {name: ([r + 1 for r in ranks if len(by_rank[r])],
                     [float(np.percentile(by_rank[r], q)) for r in ranks if len(by_rank[r])])
              for name, q in QUANTILES.items()}  # fmt: skip
    section.figures.append(plots.lines(
        "count_profile", f"Top-{k} count profile",
        [{"ylabel": "playlists shared with the neighbour", "series": series, "log_y": True}],
        xlabel="neighbour rank (1 = strongest)",
        caption=f"distribution over tracks of the co-occurrence count at each rank, from "
                f"{sample.describe('top-K rows')}; a count of 1 is one shared playlist",
    ))  # fmt: skip


def _pair_counts(ctx: Context, section: Section, counts_uri: str) -> None:
    sample = read_sample(counts_uri, schemas.COOCCURRENCE, ["count"], ctx.max_rows, ctx.seed)
    values = sample.table.column("count").to_numpy(zero_copy_only=False)
    if not len(values):
        return
    section.fact("pairs_once_share", "co-occurring pairs seen in only one playlist",
                 round(100 * float((values == 1).mean()), 1), "%")  # fmt: skip
    section.figures.append(plots.histogram(
        "pair_counts", "How often pairs co-occur", values, xlabel="playlists containing both tracks",
        ylabel="track pairs", log_x=True, log_y=True,
        caption=f"every co-occurring pair by its count (log-log), from {sample.describe('pairs')} of "
                "the counts table",
    ))  # fmt: skip


def _meta(ctx: Context, ids: list[str]) -> dict[str, dict]:
    if ctx.marker(layout.TRACK_META) is None or not ids:
        return {}
    table = read_ids(ctx.at(layout.TRACK_META), schemas.TRACK_META, ["artist_ids", "genres"], ids)
    return {r["track_id"]: r for r in table.to_pylist()}


def _examples(ctx: Context, section: Section, topk: str, k: int) -> None:
    wanted = list(ctx.shared.get("example_tracks", []))
    rows = read_ids(topk, schemas.TOPK, ["rank", "neighbor_id", "count"], wanted) if wanted \
        else schemas.TOPK.empty_table()  # fmt: skip
    have = set(rows.column("track_id").to_pylist())
    chosen = [t for t in wanted if t in have]
    if len(chosen) < ctx.examples:
        sample = read_sample(topk, schemas.TOPK, ["track_id", "rank"], min(ctx.max_rows, 100_000),
                             ctx.seed)  # fmt: skip
        full = sample.table.filter(pc.equal(sample.table.column("rank"), k - 1))
        pool = sorted(set(full.column("track_id").to_pylist()) - set(chosen))
        chosen += pick(pool, ctx.examples - len(chosen), ctx.seed, "cooc-examples")
        rows = read_ids(topk, schemas.TOPK, ["rank", "neighbor_id", "count"], chosen)
    rows = rows.sort_by([("track_id", "ascending"), ("rank", "ascending")])
    by_track: dict[str, list[dict]] = {}
    for r in rows.to_pylist():
        by_track.setdefault(r["track_id"], []).append(r)
    ctx.shared["cooc_topk"] = {t: [r["neighbor_id"] for r in by_track.get(t, [])] for t in chosen}
    ids = chosen + [r["neighbor_id"] for t in chosen for r in by_track.get(t, [])]
    meta = _meta(ctx, ids)
    for track in chosen:
        own = meta.get(track, {})
        artists = set(own.get("artist_ids") or [])
        table_rows = []
        for r in by_track.get(track, []):
            m = meta.get(r["neighbor_id"], {})
            shared = bool(artists & set(m.get("artist_ids") or [])) if meta else None
            table_rows.append([r["rank"] + 1, r["neighbor_id"], r["count"],
                               ", ".join(m.get("artist_ids") or []) or None,
                               ", ".join(m.get("genres") or []) or None,
                               None if shared is None else ("yes" if shared else "no")])  # fmt: skip
        described = "; ".join(f"{w}: {', '.join(own[c])}" for c, w in
                              (("artist_ids", "artists"), ("genres", "genres")) if own.get(c))  # fmt: skip
        columns, table_rows = drop_empty_columns(
            ["rank", "neighbour", "shared playlists", "artists", "genres", "same artist"],
            table_rows)  # fmt: skip
        section.tables.append(Table(
            f"topk_{len(section.tables)}", f"Top-{k} of {track}" + (f" ({described})" if described
                                                                   else ""),
            columns, table_rows,
            note="artists and genres from track_meta.parquet (track names are not kept by "
                 "normalisation)" if meta else "no published track_meta.parquet: ids only",
        ))  # fmt: skip
