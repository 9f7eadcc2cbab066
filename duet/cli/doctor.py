"""``duet doctor``: versions of duet and its libraries, and which ffmpeg is used."""

from __future__ import annotations

import argparse

from duet.cli.common import print_table
from duet.doctor import environment


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    rows, ok = environment()
    print_table(rows)
    return 0 if ok else 1
