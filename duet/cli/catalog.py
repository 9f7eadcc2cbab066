"""``duet catalog <dataset>``: an evaluation dataset's downloaded files → a duet catalogue
(``duet.catalogs``: track manifest, labels, splits, failures under one ``_SUCCESS``)."""

from __future__ import annotations

import argparse

from duet.catalogs import covers80, fma, gtzan, magnatagatune, msd_lastfm, mtg_jamendo, shs100k


def configure(parser: argparse.ArgumentParser) -> None:
    datasets = parser.add_subparsers(dest="dataset", required=True)

    def dataset(name: str, summary: str, source: str) -> argparse.ArgumentParser:
        q = datasets.add_parser(name, help=summary)
        q.add_argument("--input", required=True, help=source)
        q.add_argument("--output", required=True, help="catalogue folder")
        q.set_defaults(func=run)
        return q

    q = dataset("magnatagatune", "MagnaTagATune: top-50 tags, 12:1:3 split by folder",
                "folder with annotations_final.csv and the mp3 folders 0-f")  # fmt: skip
    q.add_argument("--split-files", default=None,
                   help="folder of train/valid/test lists (mp3_path or clip_id per line) "
                        "instead of the folder split")  # fmt: skip
    q.add_argument("--top", type=int, default=magnatagatune.TOP, help="most frequent tags kept")
    q.add_argument("--unit", choices=("clip", "song"), default="clip",
                   help="track id per clip, or per song (its clips concatenated into one FLAC in "
                        "OUTPUT/audio, their tags merged, as CLMR does)")  # fmt: skip
    q = dataset("gtzan", "GTZAN: 10 genres, fault-filtered split",
                "folder with genres/ (or genres_original/)")  # fmt: skip
    q.add_argument("--split-files", default=None,
                   help="folder of train_filtered.txt, valid_filtered.txt, test_filtered.txt "
                        "(default: --input)")  # fmt: skip
    q = dataset("fma", "FMA small/medium: top-level genre, official split",
                "folder with fma_metadata/ and fma_<subset>/")  # fmt: skip
    q.add_argument("--subset", choices=fma.SUBSETS, default="small")
    q = dataset("mtg-jamendo", "MTG-Jamendo: genre / instrument / mood-theme / top-50 tags",
                "the cloned mtg-jamendo-dataset repository (data/, splits/)")  # fmt: skip
    q.add_argument("--subset", choices=mtg_jamendo.SUBSETS, default="moodtheme")
    q.add_argument("--split", type=int, default=0, help="the official split-<n> to use")
    q.add_argument("--audio", default=None, help="audio folder (default: INPUT/audio)")
    dataset("covers80", "Covers80: cover-set ids for cover-song identification",
            "folder with covers32k/ (list1.list, list2.list, one folder per song)")  # fmt: skip
    q = dataset("msd-lastfm", "MSD with Last.fm tags: 50 tags, 201,680 / 11,774 / 28,435 split",
                "folder with the split files, tags.tsv and audio/ (text forms of the pickles)")  # fmt: skip
    q.add_argument("--split-files", default=None,
                   help="folder of train / valid / test .txt/.csv/.tsv track-id lists "
                        "(default: --input)")  # fmt: skip
    q.add_argument(
        "--tags",
        default=None,
        help="TSV/CSV of track id then its tags (default: INPUT/tags.tsv or .csv)",
    )
    q.add_argument(
        "--audio",
        default=None,
        help="7digital previews, A/B/C/<id>.mp3 or flat (default: INPUT/audio)",
    )
    q = dataset("shs100k", "SHS100K: cover-set ids for cover-song identification",
                "folder with list and SHS100K-TRAIN / -VAL / -TEST")  # fmt: skip
    q.add_argument(
        "--audio",
        default=None,
        help="downloaded versions, <set>_<version>.<ext> (default: INPUT/audio)",
    )


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    if args.dataset == "magnatagatune":
        body = magnatagatune.prepare(args.input, args.output, split_files=args.split_files,
                                     top=args.top, unit=args.unit)  # fmt: skip
    elif args.dataset == "gtzan":
        body = gtzan.prepare(args.input, args.output, split_files=args.split_files)
    elif args.dataset == "mtg-jamendo":
        body = mtg_jamendo.prepare(args.input, args.output, subset=args.subset, split=args.split,
                                   audio_dir=args.audio)  # fmt: skip
    elif args.dataset == "fma":
        body = fma.prepare(args.input, args.output, subset=args.subset)
    elif args.dataset == "msd-lastfm":
        body = msd_lastfm.prepare(args.input, args.output, split_dir=args.split_files,
                                  tags=args.tags, audio_dir=args.audio)  # fmt: skip
    elif args.dataset == "shs100k":
        body = shs100k.prepare(args.input, args.output, audio_dir=args.audio)
    else:
        body = covers80.prepare(args.input, args.output)
    counts = body["counts"]
    splits = ", ".join(f"{k} {v:,}" for k, v in sorted(counts["splits"].items()))
    print(f"{body['dataset']}: {counts['tracks']:,} tracks ({splits}), {counts['failures']:,} "
          f"failures {counts['failure_reasons']} -> {args.output}")  # fmt: skip
    if "published_split_sizes" in body:  # a published split: what the files hold vs the paper
        found, published = body["split_sizes"], body["published_split_sizes"]
        print("split files: " + ", ".join(f"{s} {found[s]:,} (published {published[s]:,})"
                                          for s in published))  # fmt: skip
    return 0
