"""FMA (Defferrard et al., ISMIR 2017) as a duet catalogue: top-level genre classification on the
small or medium subset with the official split, as Choi et al. and CLMR evaluate.

Obtain ``fma_metadata.zip`` (its ``tracks.csv``) and ``fma_small.zip`` or ``fma_medium.zip``
(audio in ``<subset folder>/<id // 1000 as 3 digits>/<id as 6 digits>.mp3``). ``tracks.csv``
has three header rows: the column group (``set``, ``track``, ...), the column (``split``,
``subset``, ``genre_top``, ...) and a third holding only ``track_id``. The subset is
cumulative (medium includes small). The FMA authors list a few clips that are empty or
shorter than they should be; a missing or zero-byte file is a failure here, an undecodable
one a failure of ``duet shards``.
"""

from __future__ import annotations

import csv
import os

import pyarrow as pa

from duet.catalogs.common import Catalog, audio_problem, publish_catalog
from duet.errors import DuetError

SUBSETS = ("small", "medium")
SPLITS = {"training": "train", "validation": "val", "test": "test"}
LABELS_SCHEMA = pa.schema([pa.field("track_id", pa.string(), nullable=False),
                           pa.field("genre", pa.string(), nullable=False)])  # fmt: skip


def read_tracks(path: str) -> list[dict]:
    """``track_id``, ``split``, ``subset``, ``genre_top`` of every row of ``tracks.csv``."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        groups, names, third = next(reader, []), next(reader, []), next(reader, [])
        if not third or third[0] != "track_id":
            raise DuetError(f"{path}: expected FMA's three header rows (the third: track_id)")
        columns = {}
        for i, (group, name) in enumerate(zip(groups, names, strict=False)):
            columns[(group, name)] = i
        wanted = {"split": ("set", "split"), "subset": ("set", "subset"),
                  "genre_top": ("track", "genre_top")}  # fmt: skip
        missing = [f"{g}.{n}" for g, n in wanted.values() if (g, n) not in columns]
        if missing:
            raise DuetError(f"{path}: no column {', '.join(missing)}")
        rows = []
        for fields in reader:
            if fields:
                rows.append({"track_id": fields[0],
                             **{k: fields[columns[c]] for k, c in wanted.items()}})  # fmt: skip
    return rows


def audio_path(root: str, track_id: str) -> str:
    number = int(track_id)
    return os.path.join(root, f"{number // 1000:03d}", f"{number:06d}.mp3")


def prepare(input_dir: str, output: str, *, subset: str = "small") -> dict:
    """Read FMA ``subset`` from ``input_dir`` (``fma_metadata/`` and ``fma_<subset>/``, or
    ``tracks.csv`` beside the audio folder) and publish its catalogue in ``output``."""
    if subset not in SUBSETS:
        raise DuetError(f"subset {subset!r}: expected one of {', '.join(SUBSETS)}")
    meta = next((p for p in (os.path.join(input_dir, "fma_metadata", "tracks.csv"),
                             os.path.join(input_dir, "tracks.csv")) if os.path.isfile(p)), None)  # fmt: skip
    if meta is None:
        raise DuetError(f"{input_dir}: no fma_metadata/tracks.csv")
    audio = os.path.join(input_dir, f"fma_{subset}")
    if not os.path.isdir(audio):
        raise DuetError(f"{input_dir}: no fma_{subset}/ audio folder")
    allowed = SUBSETS[: SUBSETS.index(subset) + 1]
    catalog = Catalog(f"fma-{subset}")
    for row in read_tracks(meta):
        if row["subset"] not in allowed:
            continue
        path = audio_path(audio, row["track_id"])
        if problem := audio_problem(path):
            catalog.fail(row["track_id"], path, problem)
            continue
        catalog.tracks.append({"track_id": row["track_id"], "audio_uri": path,
                               "genres": [row["genre_top"]] if row["genre_top"] else [],
                               "split": SPLITS.get(row["split"])})  # fmt: skip
        if row["genre_top"]:
            catalog.labels.append({"track_id": row["track_id"], "genre": row["genre_top"]})
    return publish_catalog(catalog, output, LABELS_SCHEMA, {"subset": subset})
