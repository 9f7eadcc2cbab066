"""Which command-line options Beam knows: a Beam command passes those through to its pipeline
and refuses every other one (Beam itself would only warn about it and go on)."""

from __future__ import annotations

import argparse
import difflib
import functools


@functools.cache
def _beam_parser() -> argparse.ArgumentParser:
    """A parser of every option of every ``PipelineOptions`` class Beam defines (standard,
    Google Cloud, S3, Dataflow worker, portable, direct runner, ...), built the way
    ``PipelineOptions.get_all_options`` builds its own."""
    from apache_beam.options import pipeline_options as po

    parser = po._BeamArgumentParser(allow_abbrev=False)
    seen: dict[str, type] = {}
    for cls in po.PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)
    return parser


def unknown_to_beam(beam_args: list[str]) -> list[str]:
    """The words of ``beam_args`` Beam does not know (an unknown option and its value)."""
    if not beam_args:
        return []
    return _beam_parser().parse_known_args(beam_args)[1]


def refusal(words: list[str], beam: bool, own: list[str]) -> str:
    """The one-line refusal of ``words``, with the closest option the command (``own``) or,
    for a Beam command, Beam knows."""
    options = [w.split("=", 1)[0] for w in words if w.startswith("-")]
    known = list(own)
    if beam:
        known += [o for a in _beam_parser()._actions for o in a.option_strings]
    close = [m for o in options for m in difflib.get_close_matches(o, known, n=1, cutoff=0.75)]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    where = "neither duet nor Beam knows them" if beam else "this command takes no Beam options"
    return f"unrecognized arguments: {' '.join(words)} ({hint}{where})"
