"""Every ``duet`` command, its module and one-line help; the parser; running one command line.

A command module (``duet.cli.shards``, ...) has ``configure(parser)``, which adds its options
and sets ``func``, and that ``func(args, beam_args) -> exit status``. Only the module of the
command being run is imported, so ``duet --help`` and ``duet doctor`` load neither Beam nor
torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from duet import __version__
from duet.errors import DuetError

DESCRIPTION = (
    "The ``duet`` command line: one sub-command per job; Beam options pass through untouched."
)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("doctor", "print versions and which ffmpeg is used"),
    "sample-catalog": ("sample_catalog", "generate the built-in sample catalogue"),
    "shards": ("shards", "decode audio into indexed WebDataset shards (Beam job)"),
    "features": ("features", "import a dataset's precomputed feature arrays as a mel stream "
                 "(Beam job)"),
    "playlists": ("playlists", "normalise MPD / Melon / table playlists (Beam job)"),
    "cooccurrence": ("cooccurrence", "co-occurrence counts and top-K neighbours (Beam job)"),
    "embeddings": ("embeddings", "Word2Vec, CF (WARP/BPR/ALS) and genre embedding tables"),
    "splits": ("splits", "train/val/test splits stratified on genres"),
    "pairs": ("pairs", "per-epoch pair manifests for every strategy (Beam job)"),
    "nightly": ("nightly", "playlists → co-occurrence → embeddings → pairs, skipping stages "
                "whose inputs did not change"),
    "train": ("train", "train a published system on a dataset root (local, s3://, gs://)"),
    "embed": ("embed", "track embeddings from a checkpoint (Parquet id, vector)"),
    "evaluate": ("evaluate", "linear probe, triplet accuracy and playlist continuation"),
    "report": ("report", "a dataset card: one self-contained HTML page and report.json"),
    "catalog": ("catalog", "an evaluation dataset's files as a catalogue (manifest, labels, "
                "splits)"),
}  # fmt: skip
"""Command → (its module in ``duet.cli``, one-line help)."""
BEAM_COMMANDS = ("shards", "features", "playlists", "cooccurrence", "embeddings", "splits", "pairs",
                 "nightly")  # fmt: skip
FILESYSTEM_COMMANDS = ("report",)
"""Commands that read buckets themselves and take Beam's filesystem options only."""
FILESYSTEM_OPTIONS = ("--s3_", "--project", "--gcs_", "--hdfs_")


def build_parser(commands: set[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, with the options of ``commands`` (default: all of them;
    the others get their name and help only, without importing their module)."""
    parser = argparse.ArgumentParser(prog="duet", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"duet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, summary) in COMMANDS.items():
        command = sub.add_parser(name, help=summary)
        if commands is None or name in commands:
            importlib.import_module(f"duet.cli.{module}").configure(command)
    return parser


def run_command(argv: list[str]) -> int:
    """Parse and run one command line; a user mistake (DuetError) prints one line,
    ``duet <command>: <what is wrong>``, and returns 1 (``DUET_DEBUG=1``: raises it)."""
    named = next((a for a in argv if not a.startswith("-")), None)
    args, beam_args = build_parser({named} if named in COMMANDS else set()).parse_known_args(argv)
    filesystem_only = args.command in FILESYSTEM_COMMANDS and all(
        a.startswith(FILESYSTEM_OPTIONS) for a in beam_args if a.startswith("-")
    )
    if args.command not in BEAM_COMMANDS and beam_args and not filesystem_only:
        raise SystemExit(f"duet {args.command}: unrecognized arguments: {' '.join(beam_args)}")
    if args.command in BEAM_COMMANDS + FILESYSTEM_COMMANDS:
        _configure_filesystems(beam_args)
    try:
        return args.func(args, beam_args)
    except DuetError as exc:
        if os.environ.get("DUET_DEBUG"):
            raise
        print(f"duet {args.command}: {exc}", file=sys.stderr)
        return 1


def _configure_filesystems(beam_args: list[str]) -> None:
    """Give Beam's FileSystems the command's options (``--s3_endpoint_url``, credentials,
    ``--project``) before the command touches ``s3://`` or ``gs://`` itself (markers, inputs),
    not only once the pipeline runs."""
    if any(a.startswith(FILESYSTEM_OPTIONS) for a in beam_args):
        from apache_beam.io.filesystems import FileSystems
        from apache_beam.options.pipeline_options import PipelineOptions

        FileSystems.set_options(PipelineOptions(beam_args))
