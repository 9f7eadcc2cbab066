"""``duet evaluate --protocol NAME``: a paper's evaluation protocol (``training.protocols``).

The options live here, the rest of ``duet evaluate`` (its default measures) in
``duet.cli.evaluate``; the protocol's JSON report is printed (and written with ``--output``),
its ``table`` field holds the paper's layout as Markdown.
"""

from __future__ import annotations

import argparse
import json

from duet import storage
from duet.training.protocols.runner import PROTOCOLS


def add_protocol_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--protocol", choices=PROTOCOLS, default=None,
        help="a paper's protocol instead of the default measures: clmr-linear (CLMR's linear "
             "evaluation: --labels tags --splits with val), choi (linear SVM and logistic "
             "regression: --labels --splits), ferraro-continuation (nDCG@100 / MAP@100: "
             "--playlists --splits), pemr-cover (cover-song MAP / P@10 / MR1: --labels with "
             "--label-column holding the cover-set id), alonso-finetune (the backbone "
             "fine-tuned with an MLP head: --checkpoint --data --labels tags --splits)")  # fmt: skip
    add("--checkpoint", default=None, help="alonso-finetune: the checkpoint to fine-tune")
    add("--data", default=None, help="alonso-finetune: the dataset root with its audio")
    add("--hidden", type=int, default=0,
        help="clmr-linear: one hidden ReLU layer of this width (0: logistic regression)")  # fmt: skip
    add("--seeds", type=int, default=3,
        help="clmr-linear, alonso-finetune: runs averaged (mean ± std)")  # fmt: skip
    add("--lr", type=float, default=3e-4, help="clmr-linear: Adam's learning rate (CLMR: 3e-4)")
    add("--max-epochs", type=int, default=None,
        help="bound on epochs (clmr-linear 1000, early stopping after 5 usually ends first; "
             "alonso-finetune 50, early stopping after 10)")  # fmt: skip


def run_protocol(args: argparse.Namespace) -> int:
    from duet.training.protocols import runner

    report = runner.run(args.protocol, embeddings=args.embeddings, labels=args.labels,
                        label_column=args.label_column, multilabel=args.multilabel,
                        splits=args.splits, playlists=args.playlists, hidden=args.hidden,
                        seeds=args.seeds, seed=args.seed, lr=args.lr,
                        max_epochs=args.max_epochs, checkpoint=args.checkpoint,
                        data=args.data)  # fmt: skip
    text = json.dumps(report, indent=1, sort_keys=True)
    print(text)
    if args.output:
        storage.write_bytes(args.output, text.encode())
    return 0
