"""``duet recipes``: every training recipe with its system, strategy, streams, encoder and crop."""

from __future__ import annotations

import argparse

from duet.cli.common import print_table
from duet.training.recipe import RECIPES, describe

COLUMNS = ("recipe", "system", "strategy", "streams", "encoder", "crop")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    print_table([COLUMNS, *([row[c] for c in COLUMNS] for row in map(describe, RECIPES))])
    print(
        "\ntrain one: duet train --recipe NAME --data ROOT --out DIR (it reads the newest pair "
        "run with its strategy: duet pairs --data ROOT --strategies STRATEGY)"
    )
    return 0
