"""``duet embed``: one embedding per track from a trained checkpoint."""

from __future__ import annotations

import argparse

from duet.training.loop import embed


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True, help="Parquet file URI")
    parser.add_argument("--device", default=None)
    parser.add_argument("--s3-endpoint-url", default=None)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    n = embed(args.checkpoint, args.data, args.output, endpoint_url=args.s3_endpoint_url,
              device=args.device)  # fmt: skip
    print(f"embedded {n:,} tracks -> {args.output}")
    return 0
