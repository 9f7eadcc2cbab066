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
from typing import NoReturn

from duet import __version__, storage
from duet.cli.beam_options import refusal, unknown_to_beam
from duet.errors import DuetError, UsageError, user_message

DESCRIPTION = (
    "The ``duet`` command line: one sub-command per job; options Beam knows (--runner, "
    "--project, --direct_num_workers, ...) pass through to Beam, any other is refused."
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
    "recipes": ("recipes", "list the training recipes: system, strategy, streams, encoder, crop"),
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


class Parser(argparse.ArgumentParser):
    """argparse, except that a command line it cannot parse raises :class:`UsageError` (one
    line, exit status 2) instead of printing the usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser(commands: set[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, with the options of ``commands`` (default: all of them;
    the others get their name and help only, without importing their module)."""
    parser = Parser(prog="duet", description=DESCRIPTION,
                    epilog="Anywhere on the line: --debug (or DUET_DEBUG=1) shows tracebacks "
                           "instead of one-line errors; --quiet (or DUET_QUIET=1) shows progress "
                           "as a line every 30 s instead of bars, as when output is not a "
                           "terminal.")  # fmt: skip
    parser.add_argument("--version", action="version", version=f"duet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, summary) in COMMANDS.items():
        command = sub.add_parser(name, help=summary)
        if commands is None or name in commands:
            importlib.import_module(f"duet.cli.{module}").configure(command)
    return parser


def command_of(argv: list[str]) -> str | None:
    """The command an argument list names (its first word, when it is one), for messages."""
    named = next((a for a in argv if not a.startswith("-")), None)
    return named if named in COMMANDS else None


def run_command(argv: list[str]) -> int:
    """Parse and run one command line; returns its exit status. A user mistake (a DuetError)
    prints one line, ``duet <command>: <what is wrong> (<what to do>)``, and returns 1 (2 for a
    command line that cannot be parsed); any other exception one line too, naming it as a bug.
    With ``--debug`` (anywhere) or ``DUET_DEBUG=1`` both raise, with their traceback."""
    if "--debug" in argv:
        argv = [a for a in argv if a != "--debug"]
        os.environ["DUET_DEBUG"] = "1"
    command = command_of(argv)
    if "--quiet" in argv:
        os.environ["DUET_QUIET"] = "1"
        if "--quiet" not in _option_names(argv, command):
            argv = [a for a in argv if a != "--quiet"]
    try:
        return _run(argv)
    except Exception as exc:
        if os.environ.get("DUET_DEBUG"):
            raise
        message, status = explain(exc)
        print(f"duet {command}: {message}" if command else f"duet: {message}", file=sys.stderr)
        return status


def explain(exc: Exception) -> tuple[str, int]:
    """The one line a user sees for ``exc``, and the exit status: a DuetError's message (also
    when a Beam runner hands it back as traceback text, see ``duet.errors.user_message``); a
    path that does not exist or cannot be read; anything else named as a bug."""
    if isinstance(exc, DuetError):
        return str(exc), exc.exit_status
    message = user_message(exc)
    if message is not None:
        return message, 1
    if isinstance(
        exc, FileNotFoundError | IsADirectoryError | NotADirectoryError | PermissionError
    ):
        what = (exc.strerror or type(exc).__name__).lower()
        return f"{what}: {exc.filename if exc.filename is not None else exc} (check the path)", 1
    first = (str(exc).strip().splitlines() or [""])[0]
    if _from_object_store(exc):
        return (f"the object store kept failing ({type(exc).__name__}: {first}); nothing was "
                "published: re-run the same command when it answers again"), 1  # fmt: skip
    return (f"{type(exc).__name__}: {first} (a bug in duet, not your mistake: re-run with "
            "--debug for the traceback and report it)"), 1  # fmt: skip


def _from_object_store(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is an object store's or its connection's
    error that retries did not get past (botocore, aiobotocore, google-api-core, a socket)."""
    seen: BaseException | None = exc
    while seen is not None:
        module = type(seen).__module__.split(".")[0]
        if module in ("botocore", "aiobotocore", "s3fs", "gcsfs", "google", "urllib3") or (
            isinstance(seen, ConnectionError | TimeoutError)
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _run(argv: list[str]) -> int:
    named = command_of(argv)
    args, beam_args = build_parser({named} if named else set()).parse_known_args(argv)
    filesystem_only = args.command in FILESYSTEM_COMMANDS and all(
        a.startswith(FILESYSTEM_OPTIONS) for a in beam_args if a.startswith("-")
    )
    if args.command in BEAM_COMMANDS:
        unknown = unknown_to_beam(beam_args)
    else:
        unknown = [] if filesystem_only else beam_args
    if unknown:
        beam = args.command in BEAM_COMMANDS
        raise UsageError(refusal(unknown, beam, _option_names(argv, named)))
    if args.command in BEAM_COMMANDS + FILESYSTEM_COMMANDS:
        _configure_filesystems(beam_args)
    return args.func(args, beam_args)


def _option_names(argv: list[str], command: str | None) -> list[str]:
    """Every option string of the (sub-)command ``argv`` runs, for "did you mean"."""
    parser: argparse.ArgumentParser = build_parser({command} if command else set())
    words = [a for a in argv if not a.startswith("-")]
    for word in words:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            break
        parser = sub.choices[word]
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def _configure_filesystems(beam_args: list[str]) -> None:
    """Give Beam's FileSystems the command's options (``--s3_endpoint_url``, credentials,
    ``--project``) before the command touches ``s3://`` or ``gs://`` itself (markers, inputs),
    not only once the pipeline runs."""
    storage.s3_retries()  # before Beam makes a client, inherited by its workers
    if any(a.startswith(FILESYSTEM_OPTIONS) for a in beam_args):
        from apache_beam.io.filesystems import FileSystems
        from apache_beam.options.pipeline_options import PipelineOptions

        FileSystems.set_options(PipelineOptions(beam_args))
