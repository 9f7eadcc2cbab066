"""``duet train``: a published system's recipe trained on a dataset root (local, s3://, gs://)."""

from __future__ import annotations

import argparse

from duet.cli.common import parse_epochs, parse_size, positive_int
from duet.errors import DuetError
from duet.training.loop import TrainConfig, train
from duet.training.recipe import RECIPES, parse_overrides


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "duet recipes lists every recipe with its system, strategy, streams, encoder and crop."
    )
    add = parser.add_argument
    add("--recipe", required=True,
        help=f"a preset ({', '.join(RECIPES)}; see duet recipes) or a YAML file")  # fmt: skip
    add("--data", required=True, help="dataset root URI")
    add("--out", required=True,
        help="checkpoint and metrics folder (local or bucket); one that holds a run needs "
             "--resume or --overwrite")  # fmt: skip
    add("--epochs", type=parse_epochs, default=None,
        help="A:B for pair epochs A..B-1, or N (0..N-1); default: the recipe's")  # fmt: skip
    add("--batch-size", type=positive_int, default=None)
    add("--partial-batch", action="store_true",
        help="train on the last, smaller batch of an epoch instead of dropping it (small "
             "catalogues)")  # fmt: skip
    add("--seed", type=int, default=0)
    add("--resume", action="store_true", help="continue the run in --out at its exact step")
    add("--overwrite", action="store_true", help="replace the run in --out")
    add("--workers", type=int, default=2, help="DataLoader worker processes")
    add("--max-steps", type=int, default=None,
        help="stop (and checkpoint) at this global step, counted across --resume")  # fmt: skip
    add("--checkpoint-every", type=int, default=500, metavar="N",
        help="also checkpoint every N global steps (default 500; always at epoch ends, at "
             "--max-steps and on SIGINT/SIGTERM)")  # fmt: skip
    add("--no-verify", dest="verify", action="store_false",
        help="skip checking each crop against the index's block digests (measured cost of "
             "verifying: a few %%; see docs)")  # fmt: skip
    add("--device", default=None, help="default: cuda when available, else cpu")
    add("--s3-endpoint-url", default=None)
    add("--set", nargs="*", help="recipe overrides, e.g. lr=3e-4 backbone=resnet50")
    add("--shard-cache", default=None, metavar="DIR",
        help="remote data: keep whole shards in this local folder after first use")  # fmt: skip
    add("--shard-cache-size", default="100G", help="bound of --shard-cache (e.g. 500G)")
    add("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    if args.checkpoint_every < 1:
        raise DuetError("--checkpoint-every must be at least 1 (steps between checkpoints)")
    if args.device and args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DuetError(f"--device {args.device}: this torch has no CUDA device (install a "
                            "CUDA build of torch, or leave --device out to train on the CPU)")  # fmt: skip
    cfg = TrainConfig(recipe=args.recipe, data=args.data, out=args.out, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, resume=args.resume,
                      overwrite=args.overwrite, workers=args.workers, max_steps=args.max_steps,
                      device=args.device, endpoint_url=args.s3_endpoint_url,
                      checkpoint_every=args.checkpoint_every, progress=not args.quiet,
                      shard_cache=args.shard_cache,
                      shard_cache_bytes=parse_size(args.shard_cache_size), verify=args.verify,
                      partial_batch=args.partial_batch)  # fmt: skip
    summary = train(cfg, parse_overrides(args.set or []))  # Interrupted: exit status 130
    state = summary.get("state", {})
    skipped = summary.get("skipped_rows") or {}
    note = (f"; skipped {sum(skipped.values())} rows ("
            f"{', '.join(f'{k} {v}' for k, v in sorted(skipped.items()))}, see the warnings)"
            if skipped else "")  # fmt: skip
    print(f"{args.recipe}: epoch {state.get('epoch')} step {state.get('global_step')} "
          f"loss {summary.get('loss')} samples/s {summary.get('samples_per_s')} "
          f"data wait {100 * summary.get('data_wait', 0):.1f} %{note} -> {args.out}")  # fmt: skip
    return 0
