"""Embeddings: every published table under ``emb/`` — its sidecar counts (what was dropped and
why), the distribution of vector norms, the nearest neighbours of a few tracks, and for genre
vectors the nearest genres of the most frequent ones."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

import duet.report.plots as plots
from duet import layout, schemas
from duet.report.common import Context, Section, Table
from duet.report.sample import footer, pick, read_all, read_ids, read_sample, table_files

MAX_VECTORS = 50_000
"""Vectors read per table at most: norms and nearest neighbours are over this sample."""
NEIGHBOURS = 5


def gather(ctx: Context) -> Section:
    section = Section("embeddings", "Embeddings")
    folders = ctx.embedding_models()
    if not folders:
        section.notes.append(
            "No embedding table (optional: needed by the w2v, cf and multimodal strategies). Make "
            f"them with {ctx.command('w2v')}; {ctx.command('cf')}; {ctx.command('genre-w2v')}"
        )
        return section
    summary: list = []
    counts: list = []
    norm_panels: list[dict] = []
    for name in folders:
        folder = layout.embedding_folder(name)
        body = ctx.require(section, folder, f"{folder}/", _command(ctx, name))
        if body is None:
            continue
        table = layout.GENRES if name == layout.GENRE_W2V else layout.VECTORS
        uri = ctx.at(f"{folder}/{table}")
        dim = footer(table_files(uri)[0]).schema.to_arrow_schema().field("vector").type
        summary.append([name, body.get("model"), body["counts"].get("vectors",
                        body["counts"].get("genres")), dim.list_size, _parameters(body),
                        body.get("wall_time_s")])  # fmt: skip
        counts += [[name, k, v] for k, v in sorted(body["counts"].items())
                   if isinstance(v, int | float)]  # fmt: skip
        if name == layout.GENRE_W2V:
            _genres(ctx, section, folder, dim.list_size, norm_panels)
        else:
            _vectors(ctx, section, name, uri, dim.list_size, norm_panels)
    for start in range(0, len(norm_panels), 3):
        panels = norm_panels[start : start + 3]
        section.figures.append(plots.histograms(
            f"norms_{start // 3}", "Vector norms", panels,
            caption="; ".join(p["scope"] for p in panels) + ". A spike at one norm means vectors "
                    "that training never updated",
        ))  # fmt: skip
    if summary:
        section.tables.insert(0, Table(
            "tables", "Embedding tables",
            ["table", "model", "vectors", "dimensions", "parameters", "wall time (s)"], summary,
            note="from each table's _SUCCESS sidecar",
        ))  # fmt: skip
        section.tables.insert(1, Table(
            "counts", "What each table was trained on and dropped", ["table", "count", "value"],
            counts, note="every count of each sidecar: inputs read, used, and dropped by reason",
        ))  # fmt: skip
    return section


def _command(ctx: Context, name: str) -> str:
    if name == layout.GENRE_W2V:
        return ctx.command("genre-w2v")
    if name.startswith("cf-"):
        return ctx.command("cf").replace("--model warp", f"--model {name[3:]}")
    return ctx.command("w2v")


def _parameters(body: dict) -> str:
    p = body.get("parameters", {})
    keys = ("vector_size", "factors", "window", "epochs", "alpha", "learning_rate", "min_count",
            "split", "deterministic")  # fmt: skip
    return ", ".join(f"{k} {p[k]}" for k in keys if k in p and p[k] not in (None, []))


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1)


def _matrix(table: pa.Table, dim: int) -> np.ndarray:
    column = table.column("vector").combine_chunks()
    return np.asarray(column.values.to_numpy(zero_copy_only=False), np.float32).reshape(-1, dim)


def _vectors(ctx: Context, section: Section, name: str, uri: str, dim: int,
             norm_panels: list[dict]) -> None:  # fmt: skip
    schema = schemas.embeddings_schema(dim)
    sample = read_sample(
        uri, schema, ["track_id", "vector"], min(ctx.max_rows, MAX_VECTORS), ctx.seed
    )
    if not sample.rows:
        return
    ids = sample.table.column("track_id").to_pylist()
    matrix = _matrix(sample.table, dim)
    norms = np.linalg.norm(matrix, axis=1)
    norm_panels.append({"title": name, "values": norms, "xlabel": "L2 norm", "ylabel": "vectors",
                        "marks": {"median": float(np.median(norms))},
                        "scope": f"{name}: {dim}-d, {sample.describe('vectors')}"})  # fmt: skip
    queries = [t for t in ctx.shared.get("example_tracks", []) if t in set(ids)]
    queries += [t for t in ctx.shared.get("cooc_topk", {}) if t in set(ids) and t not in queries]
    if len(queries) < ctx.examples:
        queries += pick(sorted(set(ids) - set(queries)), ctx.examples - len(queries), ctx.seed,
                        "embedding-queries", name)  # fmt: skip
    wanted = read_ids(uri, schema, ["vector"], queries, id_column="track_id")
    unit, topk = _unit(matrix), ctx.shared.get("cooc_topk", {})
    rows = []
    for qid, qvec in zip(wanted.column("track_id").to_pylist(), _unit(_matrix(wanted, dim)),
                         strict=True):  # fmt: skip
        cosine = unit @ qvec
        order = [i for i in np.argsort(-cosine, kind="stable") if ids[i] != qid][:NEIGHBOURS]
        for rank, i in enumerate(order, 1):
            near = ids[i] in topk.get(qid, ()) if qid in topk else None
            rows.append([qid, rank, ids[i], round(float(cosine[i]), 4),
                         None if near is None else ("yes" if near else "no")])  # fmt: skip
    section.tables.append(Table(
        f"neighbours_{name}", f"Nearest neighbours, {name}",
        ["track", "rank", "neighbour", "cosine", "in its co-occurrence top-10"], rows,
        note=f"cosine similarity among {sample.describe('vectors')}",
    ))  # fmt: skip


def _genres(ctx: Context, section: Section, folder: str, dim: int,
            norm_panels: list[dict]) -> None:  # fmt: skip
    genres = read_all(ctx.at(f"{folder}/{layout.GENRES}"), schemas.genre_vectors_schema(dim),
                      ["index", "id", "vector"])  # fmt: skip
    if not genres.num_rows:
        return
    names = genres.column("id").to_pylist()
    position = {int(i): p for p, i in enumerate(genres.column("index").to_pylist())}
    matrix = _matrix(genres, dim)
    usage = np.zeros(len(names), np.int64)
    tracks = read_sample(ctx.at(f"{folder}/{layout.TRACK_GENRES}"), schemas.TRACK_GENRES,
                         ["genre_ids", "n_genres"], ctx.max_rows, ctx.seed)  # fmt: skip
    if tracks.rows:
        slots = tracks.table.column("genre_ids").combine_chunks().values.to_numpy()
        values, freq = np.unique(slots[slots >= 0], return_counts=True)
        for value, n in zip(values.tolist(), freq.tolist(), strict=True):
            if value in position:
                usage[position[value]] = n
    unit = _unit(matrix)
    rows = []
    for g in np.argsort(-usage, kind="stable")[: max(ctx.examples, 6)]:
        cosine = unit @ unit[g]
        order = [i for i in np.argsort(-cosine, kind="stable") if i != g][:NEIGHBOURS]
        rows.append([names[g], int(usage[g]),
                     ", ".join(f"{names[i]} ({cosine[i]:.2f})" for i in order)])  # fmt: skip
    section.tables.append(Table(
        "genre_neighbours", "Nearest genres of the most frequent genres",
        ["genre", "tracks", f"{NEIGHBOURS} nearest genres (cosine)"], rows,
        note=f"{len(names):,} genre vectors; track counts from {tracks.describe('tracks')} of "
             "track_genres.parquet",
    ))  # fmt: skip
    norms = np.linalg.norm(matrix, axis=1)
    norm_panels.append({"title": layout.GENRE_W2V, "values": norms, "xlabel": "L2 norm",
                        "ylabel": "genres", "marks": {"median": float(np.median(norms))},
                        "scope": f"{layout.GENRE_W2V}: {dim}-d, all {len(norms):,} genres"})  # fmt: skip
