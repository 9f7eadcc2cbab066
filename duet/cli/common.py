"""What the command modules share: the one way a Beam command runs, option parsers, and the
table printer. Heavy libraries (Beam) are imported when a command runs, not when it parses."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from duet import layout, publish
from duet.errors import DuetError

BEAM_DESCRIPTION = "Options Beam knows (--runner, --project, ...) are passed to Beam."


S = TypeVar("S", bound=Mapping[str, object])


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
    unpublish: Sequence[str] = (),
    errors: tuple[type[Exception], ...] = (),
    around: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> BeamRun[S]:
    """Validate inputs → build the pipeline → run it → read what it published.

    ``build(pipeline)`` adds the job to a pipeline made from ``beam_args``; it checks the
    job's inputs first, so a mistake (one of ``errors``, shown as one line) leaves every
    published output as it was. Only then are the ``_SUCCESS`` markers of ``unpublish`` removed
    (readers stop trusting outputs about to be rewritten) and the pipeline run (inside the
    context ``around()`` makes, e.g. a progress monitor). Returns the summary the job published in
    ``published`` (a folder, or a function naming it once the job is built) as the job's summary
    ``shape``; a job that published nothing is an error.
    """
    from duet.pipelines import beam_io

    pipeline = beam_io.make_pipeline(beam_args)
    try:
        build(pipeline)
    except errors as exc:
        raise DuetError(str(exc).splitlines()[0]) from exc
    for folder in unpublish:
        publish.clear_success(folder)
    user_errors: tuple[type[Exception], ...] = (*errors, DuetError)
    start = time.monotonic()
    with around() if around else contextlib.nullcontext():
        try:
            result = pipeline.run()
            result.wait_until_finish()
        except user_errors as exc:
            raise DuetError(str(exc).splitlines()[0]) from exc
    wall = time.monotonic() - start
    counters = {m.key.metric.name: m.committed for m in result.metrics().query()["counters"]}
    folder = published() if callable(published) else published
    return BeamRun(layout.read_summary(folder, shape), wall, counters)


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
