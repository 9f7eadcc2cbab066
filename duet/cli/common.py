"""What the command modules share: the one way a Beam command runs, option parsers, and the
table printer. Heavy libraries (Beam) are imported when a command runs, not when it parses."""

from __future__ import annotations

import argparse
import contextlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from duet import layout, lease, publish
from duet.errors import DuetError, first_line, user_message

BEAM_DESCRIPTION = "Options Beam knows (--runner, --project, ...) are passed to Beam."

S = TypeVar("S", bound=Mapping[str, object])


def add_publish_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that republishes an output (``--allow-shrink``)."""
    parser.add_argument(
        "--allow-shrink", action="store_true",
        help="publish even when the new output is less than half the published one "
             "(tracks, playlists, vectors, rows); without it such a run changes nothing",
    )  # fmt: skip


def commit_of(args: argparse.Namespace) -> publish.Commit:
    """How this command run publishes: a fresh owner id for its locks, and --allow-shrink."""
    return publish.Commit(owner=lease.new_owner(),
                          allow_shrink=bool(getattr(args, "allow_shrink", False)))  # fmt: skip


@dataclass
class BeamRun(Generic[S]):
    """What a Beam command reports: the published ``_SUCCESS`` summary, the wall time, and
    the job's Beam counters by name."""

    summary: S
    wall: float
    counters: dict[str, int] = field(default_factory=dict)


def run_beam_job(
    build: Callable[[Any], object],
    beam_args: list[str],
    *,
    shape: type[S],
    published: str | Callable[[], str],
    command: str,
    commit: publish.Commit,
    locks: Sequence[str],
    errors: tuple[type[Exception], ...] = (),
    around: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> BeamRun[S]:
    """Validate inputs → build the pipeline → run it under the output's locks → report what it
    published.

    ``build(pipeline)`` adds the job to a pipeline made from ``beam_args``; it checks the job's
    inputs first, so a mistake (one of ``errors`` or a DuetError, shown as one line) touches no
    output. Then the locks (or leases) of the folders in ``locks`` are taken for
    ``commit.owner`` (another writer: one line naming it) and the pipeline runs (inside the
    context ``around()`` makes, e.g. a progress monitor). The job publishes itself, in its last
    step, through :func:`duet.publish.commit` (with ``commit``): until then, and whenever it
    fails, readers keep the previous generation. Returns the summary published in ``published``
    (a folder, or a function naming it once the job is built) as the job's summary ``shape``.
    """
    from duet.pipelines import beam_io

    try:
        pipeline = beam_io.make_pipeline(beam_args)
    except ValueError as exc:  # Beam's own check of its options (e.g. an unknown --runner)
        raise DuetError(f"{first_line(str(exc))} (check the Beam options: --runner "
                        "DirectRunner, DataflowRunner, ...)") from None  # fmt: skip
    refused: tuple[type[Exception], ...] = (DuetError, *errors)
    try:
        build(pipeline)
    except refused as exc:
        raise DuetError(first_line(str(exc))) from exc
    assert commit.owner is not None, "a command publishes under its own owner id"
    start = time.monotonic()
    monitor = around() if around else contextlib.nullcontext()
    with lease.hold(list(locks), commit.owner, f"duet {command}"), monitor:
        try:
            result = pipeline.run()
            result.wait_until_finish()
        except Exception as exc:
            message = user_error(exc, errors)
            if message is None:
                raise
            raise DuetError(message) from exc
    wall = time.monotonic() - start
    counters = {m.key.metric.name: m.committed for m in result.metrics().query()["counters"]}
    folder = published() if callable(published) else published
    return BeamRun(layout.read_summary(folder, shape, f"duet {command}"), wall, counters)


_RAISED = re.compile(r"^(?:[\w.]+\.)?(\w+): (.+?)(?: \[while running '[^']*'\])?$")


def user_error(exc: BaseException, errors: tuple[type[Exception], ...] = ()) -> str | None:
    """The one-line message of a user's mistake that ended a pipeline: a DuetError (see
    :func:`duet.errors.user_message`) or one of ``errors``, chained or named by the last
    ``module.Class: message`` line of a worker's traceback text; None for anything else."""
    message = user_message(exc)
    if message is not None or not errors:
        return message
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, errors):
            return first_line(str(seen))
        seen = seen.__cause__ or seen.__context__
    for line in reversed(str(exc).splitlines()):
        match = _RAISED.match(line.strip())
        if match and _is_user_error(match.group(1), errors):
            return match.group(2)
    return None


def _is_user_error(name: str, kinds: tuple[type[Exception], ...]) -> bool:
    """Whether an exception class named ``name`` is one of ``kinds`` (or a subclass of one)."""
    pending: list[type] = list(kinds)
    while pending:
        kind = pending.pop()
        if kind.__name__ == name:
            return True
        pending.extend(kind.__subclasses__())
    return False


def runner_named(beam_args: list[str]) -> bool:
    """Whether ``beam_args`` name a Beam runner (``--runner X`` or ``--runner=X``): commands
    with a local runner of their own use Beam only then."""
    return any(a == "--runner" or a.startswith("--runner=") for a in beam_args)


def is_local(beam_args: list[str]) -> bool:
    """Whether ``beam_args`` run the job on this machine (no ``--runner`` or a local one)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from duet.pipelines import beam_io

    return beam_io.is_local(PipelineOptions(beam_args))


def print_table(
    rows: Sequence[Sequence[object]], *, numbers: bool = False, indent: str = ""
) -> None:
    """Rows as columns two spaces apart, each as wide as its widest cell: the first column
    left-aligned, the others right-aligned when they hold ``numbers``; no trailing spaces."""
    cells = [[str(c) for c in row] for row in rows]
    if not cells:
        return
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for row in cells:
        line = "  ".join(c.rjust(w) if numbers and i else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True)))  # fmt: skip
        print((indent + line).rstrip())


def names(text: str | None) -> tuple[str, ...]:
    """A comma-separated list (``train,val``) as a tuple; empty items are dropped."""
    return tuple(s for s in (text or "").split(",") if s)


def positive_int(text: str) -> int:
    """An option value that must be a whole number of at least 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def parse_size(text: str) -> int:
    """``256MB``, ``100G``, ``4096`` → bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = text.strip().lower().removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def parse_epochs(text: str) -> tuple[int, int]:
    """``A:B`` (epochs A..B-1) or ``N`` (epochs 0..N-1)."""
    try:
        start, stop = text.split(":") if ":" in text else ("0", text)
        first, last = int(start), int(stop)
    except ValueError:
        raise DuetError(f"--epochs {text!r} is not A:B or N") from None
    if not 0 <= first < last:
        raise DuetError(f"--epochs {text!r} is empty or negative")
    return first, last
