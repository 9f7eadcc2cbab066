"""``duet report``: a dataset card to look at before training.

    paths = make_report("data/", "report/")          # report/index.html, report/report.json

Each section is one module with ``gather(ctx) -> Section``; it reads only published folders
(``_SUCCESS`` present and readable), reads column subsets, and samples large tables by
Parquet row group (:mod:`duet.report.sample`), so a root with a million playlists and a 50-epoch
pair run is reported in well under a minute. :mod:`duet.report.render` writes the page and the
JSON with every number the page shows.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from duet import __version__
from duet.errors import DuetError
from duet.report import (
    audio,
    cooccurrence,
    embeddings,
    features,
    pairs,
    playlists,
    provenance,
    render,
    splits,
)
from duet.report.common import Context, Section

SECTIONS: tuple[Callable[[Context], Section], ...] = (
    audio.gather, features.gather, playlists.gather, cooccurrence.gather, embeddings.gather,
    splits.gather, pairs.gather, provenance.gather,
)  # fmt: skip
"""In page order; provenance comes last, as it lists every marker the others read."""


class NothingPublished(DuetError):
    """The root has no published part at all."""


def gather(ctx: Context, log: Callable[[str], None] | None = None) -> list[Section]:
    sections = []
    for fn in SECTIONS:
        start = time.monotonic()
        section = fn(ctx)
        section.seconds = time.monotonic() - start
        sections.append(section)
        if log:
            log(f"[report] {section.title:<14} {section.status:<8} {section.seconds:6.1f} s")
    return sections


def make_report(data: str, output: str, run: str | None = None, *, seed: int = 0,
                max_rows: int = 1_000_000, log: Callable[[str], None] | None = None) -> dict:  # fmt: skip
    """Write ``output/index.html`` and ``output/report.json`` for the dataset root ``data``.

    ``run`` names the pair run (default ``LATEST``); ``max_rows`` bounds the rows read from any
    one table (larger tables are sampled). Returns ``{"index.html": uri, "report.json": uri,
    "sections": {key: status}, "seconds": wall}``. Raises NothingPublished when no part of
    the root is published (nothing to report).
    """
    start = time.monotonic()
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    ctx = Context(data, run, seed=seed, max_rows=max_rows)
    pairs.selected_run(ctx)
    sections = gather(ctx, log)
    if not ctx.markers():
        raise NothingPublished(
            f"{data} has no published part (no readable _SUCCESS marker): run duet shards, "
            "duet playlists or another job on it first"
        )
    meta = {
        "root": data,
        "run": ctx.shared.get("run"),
        "duet_version": __version__,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seed": seed,
        "max_rows": max_rows,
        "seconds": round(time.monotonic() - start, 3),
    }
    paths = render.write(output, {"index.html": render.page(sections, meta),
                                  "report.json": render.report_json(sections, meta)})  # fmt: skip
    return {**paths, "sections": {s.key: s.status for s in sections}, "seconds": meta["seconds"]}
