"""``duet report``: the dataset card of a root — one self-contained HTML page and report.json."""

from __future__ import annotations

import argparse

from duet.cli.common import print_table
from duet.errors import DuetError


class NoRoot(DuetError):
    """--data names nothing."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Reads only the published parts (_SUCCESS) of a dataset root, samples large tables, "
        "and says which parts are missing and which command makes them. Beam filesystem options "
        "(--s3_endpoint_url, --project, ...) are accepted."
    )
    add = parser.add_argument
    add("--data", required=True, help="dataset root (local path, gs://, s3://)")
    add("--output", required=True, help="folder for index.html and report.json (local or bucket)")
    add("--run", default=None, metavar="RUN|LATEST", help="pair run to report (default LATEST)")
    add("--seed", type=int, default=0, help="seed of the samples and example tracks")
    add("--max-rows", type=int, default=1_000_000,
        help="rows read per table at most; larger tables are sampled by Parquet row group")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from duet import storage
    from duet.report import make_report

    if not storage.exists(args.data):
        raise NoRoot(f"{args.data} does not exist (--data is a dataset root)")
    result = make_report(args.data, args.output, args.run, seed=args.seed, max_rows=args.max_rows)
    incomplete = [k for k, v in result["sections"].items() if v != "ok"]
    print_table([
        ("report", result["index.html"]),
        ("numbers", result["report.json"]),
        *([("not published", f"{', '.join(incomplete)} (the report names the commands)")]
          if incomplete else []),
        ("wall time", f"{result['seconds']:.1f} s"),
    ])  # fmt: skip
    return 0
