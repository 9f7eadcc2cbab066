"""Covers80 (Ellis & Poliner, 2007) as a duet catalogue: PEMR's cover-song identification set,
80 songs in two versions each, the cover-set id as the label (``duet evaluate --protocol
pemr-cover --labels labels.parquet --label-column clique``).

Obtain ``covers80.tgz`` from LabROSA: ``covers32k/<song>/<artist+album+track>.mp3`` (one
folder per song holding its versions) and ``covers32k/list1.list`` / ``list2.list`` (one
``<song>/<file without .mp3>`` per line, the first and second versions). Every track gets
the split ``test`` (the set is used for evaluation only); a listed but missing or zero-byte
file is a failure, a song left with one version still ranks as a candidate.
"""

from __future__ import annotations

import os

import pyarrow as pa

from duet.catalogs.common import Catalog, audio_problem, publish_catalog
from duet.errors import DuetError

LISTS = ("list1.list", "list2.list")
LABELS_SCHEMA = pa.schema([pa.field("track_id", pa.string(), nullable=False),
                           pa.field("clique", pa.string(), nullable=False)])  # fmt: skip


def prepare(input_dir: str, output: str) -> dict:
    """Read Covers80 from ``input_dir`` (the folder holding ``covers32k/``, or ``covers32k``
    itself) and publish its catalogue in ``output``."""
    root = os.path.join(input_dir, "covers32k")
    root = root if os.path.isdir(root) else input_dir
    entries = []
    for name in LISTS:
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            raise DuetError(f"{root}: no {name} (Covers80's version lists)")
        with open(path, encoding="utf-8") as f:
            entries += [line.strip() for line in f if line.strip()]
    catalog = Catalog("covers80")
    for entry in entries:
        clique = entry.split("/", 1)[0]
        path = os.path.join(root, f"{entry}.mp3")
        if problem := audio_problem(path):
            catalog.fail(entry, path, problem)
            continue
        catalog.tracks.append({"track_id": entry, "audio_uri": path, "split": "test"})
        catalog.labels.append({"track_id": entry, "clique": clique})
    return publish_catalog(
        catalog, output, LABELS_SCHEMA, {"cliques": len({e.split("/")[0] for e in entries})}
    )
