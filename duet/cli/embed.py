"""``duet embed``: one embedding per track from a trained checkpoint."""

from __future__ import annotations

import argparse

from duet.errors import DuetError
from duet.training import runfiles
from duet.training.embed import embed
from duet.training.summary import SUMMARIES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("One vector per indexed track from the encoder's windows; a track "
                          "shorter than one window is looped to fill it, and the output's "
                          "metadata (duet.short_tracks) lists those tracks.")  # fmt: skip
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True, help="Parquet file URI")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing --output (refused without it)"
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--s3-endpoint-url", default=None)
    parser.add_argument("--summary", choices=SUMMARIES, default=None,
                        help="per-track summary of the window embeddings: mean (CLMR, "
                             "Alonso-Jiménez, Ferraro, PEMR), mean_std (Choi et al.), cpc "
                             "(MelCPC's GRU outputs); default: the recipe's paper's; recorded "
                             "in the Parquet metadata as duet.summary")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    if not args.overwrite and runfiles.exists(args.output, args.s3_endpoint_url):
        raise DuetError(f"--output {args.output} exists (choose another path, or pass "
                        "--overwrite to replace it)")  # fmt: skip
    done = embed(args.checkpoint, args.data, args.output, endpoint_url=args.s3_endpoint_url,
                 device=args.device, summary=args.summary)  # fmt: skip
    looped = (f" ({done['looped']:,} shorter than the {done['window']}-row window, looped)"
              if done["looped"] else "")  # fmt: skip
    print(f"embedded {done['tracks']:,} tracks of {done['stream']}{looped} -> {args.output}")
    return 0
