"""The Beam helpers every job shares: a pipeline from command-line options (with the local
default runner), and a single step that runs a single-process trainer."""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

LOCAL_RUNNERS = (None, "DirectRunner", "FnApiRunner")


def is_local(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner in LOCAL_RUNNERS


def make_pipeline(beam_args: list[str]) -> beam.Pipeline:
    """A pipeline for ``beam_args`` (``--runner DataflowRunner --project ...`` pass through).

    Locally we run Beam's FnApiRunner directly: the DirectRunner would first try to download
    the Prism binary, which fails offline and only adds a delay and log noise. It honours
    ``--direct_num_workers N --direct_running_mode multi_processing``.
    """
    options = PipelineOptions(beam_args)
    if is_local(options):
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return beam.Pipeline(runner=FnApiRunner(), options=options)
    return beam.Pipeline(options=options)


def one_step(pipeline: beam.Pipeline, run: Callable[[], dict], label: str) -> beam.PCollection:
    """One Beam step that runs ``run`` (a trainer that reads and writes by URI) once."""
    return pipeline | f"{label}/Start" >> beam.Create([None]) | label >> beam.Map(lambda _: run())
