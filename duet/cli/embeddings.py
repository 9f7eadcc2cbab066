"""``duet embeddings w2v|cf|genre-w2v``: playlist Word2Vec, CF track factors and genre Word2Vec,
each a single-process trainer run as one Beam step."""

from __future__ import annotations

import argparse

from duet import layout
from duet.cli.common import (
    BEAM_DESCRIPTION,
    add_publish_options,
    commit_of,
    names,
    print_table,
    run_beam_job,
)
from duet.pipelines.beam_io import one_step
from duet.pipelines.tables import cf, w2v
from duet.pipelines.tables.common import EmbeddingInputError, TableSummary


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = BEAM_DESCRIPTION
    models = parser.add_subparsers(dest="model", required=True)

    def common(q: argparse.ArgumentParser, vector_default: int | None) -> None:
        q.add_argument("--output", required=True,
                       help=f"dataset root; writes OUT/{layout.EMB}/<model>")  # fmt: skip
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--deterministic", action="store_true",
                       help="one worker: bit-identical tables across runs (slower)")  # fmt: skip
        q.add_argument("--split", default=None,
                       help="train only on tracks of these splits, e.g. train or train,val")  # fmt: skip
        q.add_argument("--splits", default=None,
                       help=f"splits table (default: OUT/{layout.SPLITS})")  # fmt: skip
        q.add_argument("--epochs", type=int, default=None)
        if vector_default is not None:
            q.add_argument("--vector-size", type=int, default=vector_default)
            q.add_argument("--window", type=int, default=None,
                           help="default: the longest sentence (whole-playlist context)")  # fmt: skip
            q.add_argument("--workers", type=int, default=None, help="default: all cores")
        add_publish_options(q)
        q.set_defaults(func=run)

    q = models.add_parser("w2v", help="playlist Word2Vec (Alonso-Jiménez et al.)")
    q.add_argument("--playlists", required=True)
    common(q, 128)
    q.add_argument("--alpha", type=float, default=0.02)
    q.add_argument("--min-count", type=int, default=1)

    q = models.add_parser("cf", help="track factors: WARP (LightFM), BPR or ALS (implicit)")
    q.add_argument("--playlists", required=True)
    q.add_argument("--model", dest="cf_model", choices=cf.MODELS, default="warp")
    common(q, None)
    q.add_argument("--factors", type=int, default=300)
    q.add_argument("--learning-rate", type=float, default=None)
    q.add_argument("--regularization", type=float, default=None)
    q.add_argument("--max-sampled", type=int, default=40, help="WARP negatives per positive")
    q.add_argument("--threads", type=int, default=None, help="default: all cores")

    q = models.add_parser(
        "genre-w2v", help="genre Word2Vec and per-track genre ids (Ferraro et al.)"
    )
    q.add_argument("--track-meta", required=True)
    common(q, 200)  # Ferraro et al.'s genre vectors are 200-d


def job_of(args: argparse.Namespace) -> w2v.W2VJob | w2v.GenreW2VJob | cf.CFJob:
    """The job the options describe; options left at None take the job's defaults."""
    split = names(args.split)
    options = {"output": args.output, "seed": args.seed, "epochs": args.epochs,
               "deterministic": args.deterministic, "split": split, "commit": commit_of(args),
               "splits": (args.splits or layout.at(args.output, layout.SPLITS)) if split else None}  # fmt: skip
    if args.model == "w2v":
        options |= {"playlists": args.playlists, "vector_size": args.vector_size,
                    "window": args.window, "alpha": args.alpha, "min_count": args.min_count,
                    "workers": args.workers, "progress": True}  # fmt: skip
        return w2v.W2VJob(**{k: v for k, v in options.items() if v is not None})
    if args.model == "genre-w2v":
        options |= {"track_meta": args.track_meta, "vector_size": args.vector_size,
                    "window": args.window, "workers": args.workers, "progress": True}  # fmt: skip
        return w2v.GenreW2VJob(**{k: v for k, v in options.items() if v is not None})
    options |= {"playlists": args.playlists, "model": args.cf_model, "factors": args.factors,
                "learning_rate": args.learning_rate, "regularization": args.regularization,
                "max_sampled": args.max_sampled, "threads": args.threads}  # fmt: skip
    return cf.CFJob(**{k: v for k, v in options.items() if v is not None})


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    job = job_of(args)
    label = f"embeddings {args.model}"

    def build(pipeline):
        job.check_inputs()
        return one_step(pipeline, job.run, label)

    done = run_beam_job(build, beam_args, shape=TableSummary, published=job.folder, command=label,
                        commit=job.commit, locks=[job.folder],
                        errors=(EmbeddingInputError, FileNotFoundError))  # fmt: skip
    body, counts = done.summary, done.summary["counts"]
    rows = [("model", body["model"])]
    if "playlists_used" in counts:
        rows.append(("playlists", f"{counts['playlists_used']:,} of {counts['playlists_read']:,} "
                                  f"({counts['entries_used']:,} entries)"))  # fmt: skip
    if args.model == "genre-w2v":
        rows += [("genres", f"{counts['genres']:,} ({counts['genres_without_context']:,} never "
                            "listed beside another genre: initial vectors)"),
                 ("tracks", f"{counts['tracks']:,} ({counts['tracks_without_genres']:,} without "
                            f"genres, {counts['unknown_genres']:,} unknown genre entries, "
                            f"{counts['tracks_over_slots']:,} over 10 genres)")]  # fmt: skip
    else:
        rows.append(("vectors", f"{counts['vectors']:,} tracks"))
        dropped = {reason: n for reason, n in body.get("dropped", {}).items() if n}
        if dropped:
            rows.append(("no vector", f"{sum(dropped.values()):,} of {counts['tracks_read']:,} "
                         "tracks (" + ", ".join(f"{r} {n:,}" for r, n in dropped.items()) + ")"))  # fmt: skip
    if counts.get("long_playlists"):
        rows.append(("long playlists", f"{counts['long_playlists']:,} split into pieces of 10 000"))
    if body["config"].get("split"):
        rows.append(("split", ",".join(body["config"]["split"])))
    rows += [("output", job.folder), ("wall time", f"{done.wall:.1f} s")]
    print_table(rows)
    return 0
