"""``duet train``: a published system's recipe trained on a dataset root (local, s3://, gs://)."""

from __future__ import annotations

import argparse

from duet.cli.common import parse_size
from duet.training.loop import TrainConfig, train
from duet.training.recipe import RECIPES, parse_overrides


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--recipe", required=True,
        help=f"a preset of training/recipes ({', '.join(RECIPES)}) or a YAML file")  # fmt: skip
    add("--data", required=True, help="dataset root URI")
    add("--out", required=True, help="checkpoint and metrics folder (local or bucket)")
    add("--epochs", type=int, default=None)
    add("--batch-size", type=int, default=None)
    add("--seed", type=int, default=0)
    add("--resume", action="store_true")
    add("--workers", type=int, default=2, help="DataLoader worker processes")
    add("--max-steps", type=int, default=None, help="stop (and checkpoint) after N steps")
    add("--device", default=None, help="default: cuda when available, else cpu")
    add("--s3-endpoint-url", default=None)
    add("--set", nargs="*", help="recipe overrides, e.g. lr=3e-4 backbone=resnet50")
    add("--shard-cache", default=None, metavar="DIR",
        help="remote data: keep whole shards in this local folder after first use")  # fmt: skip
    add("--shard-cache-size", default="100G", help="bound of --shard-cache (e.g. 500G)")
    add("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    cfg = TrainConfig(recipe=args.recipe, data=args.data, out=args.out, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, resume=args.resume,
                      workers=args.workers, max_steps=args.max_steps, device=args.device,
                      endpoint_url=args.s3_endpoint_url, progress=not args.quiet,
                      shard_cache=args.shard_cache,
                      shard_cache_bytes=parse_size(args.shard_cache_size))  # fmt: skip
    summary = train(cfg, parse_overrides(args.set or []))
    state = summary.get("state", {})
    print(f"{args.recipe}: epoch {state.get('epoch')} step {state.get('global_step')} "
          f"loss {summary.get('loss')} samples/s {summary.get('samples_per_s')} "
          f"data wait {100 * summary.get('data_wait', 0):.1f} % -> {args.out}")  # fmt: skip
    return 0
