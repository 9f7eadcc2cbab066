"""``duet evaluate``: downstream measures of track embeddings (``training.evaluate``)."""

from __future__ import annotations

import argparse
import json

from duet import storage
from duet.cli.protocols import add_protocol_options, run_protocol
from duet.errors import DuetError
from duet.training.evaluate import evaluate


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--embeddings", default=None,
        help="Parquet id, vector (duet embed); required but for --protocol alonso-finetune")  # fmt: skip
    add("--labels", default=None, help="table with track_id and --label-column")
    add("--label-column", default="genres")
    add("--multilabel", action="store_true", help="tags: ROC-AUC / PR-AUC; else accuracy")
    add("--splits", default=None,
        help="splits table: the probe tests on, and continuation ranks, the test split's "
             "tracks (else a seeded 80/20 probe and every track)")  # fmt: skip
    add("--shots", type=int, default=0, help="also a few-shot probe: K tracks per class")
    add("--draws", type=int, default=20, help="few-shot draws averaged")
    add("--triplets", default=None, help="table with anchor, positive, negative")
    add("--playlists", default=None, help="playlists table for continuation")
    add("--seed", type=int, default=0)
    add("--output", default=None, help="write the JSON report here too")
    add_protocol_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    if args.protocol:
        return run_protocol(args)
    if not args.embeddings:
        raise DuetError("--embeddings is required (the output of duet embed)")
    report = evaluate(args.embeddings, labels=args.labels, label_column=args.label_column,
                      multilabel=args.multilabel, splits=args.splits, shots=args.shots,
                      draws=args.draws, triplets=args.triplets, playlists=args.playlists,
                      seed=args.seed)  # fmt: skip
    text = json.dumps(report, indent=1, sort_keys=True)
    print(text)
    if args.output:
        storage.write_bytes(args.output, text.encode())
    return 0
