"""MTG-Jamendo (Bogdanov et al., ICML 2019 ML4MD workshop) as a duet catalogue: the genre,
mood/theme, instrument and top-50 auto-tagging subsets that Alonso-Jiménez et al. and Ferraro
et al. evaluate on, with the official split files.

Obtain the metadata by cloning the dataset's repository (MTG/mtg-jamendo-dataset: ``data/``
holds ``autotagging_<subset>.tsv`` and ``splits/split-<n>/autotagging_<subset>-{train,
validation,test}.tsv``) and the audio with its download script (``<NN>/<id>.mp3``, or
``<NN>/<id>.low.mp3`` for the low-quality copy). The TSV files are tab-separated with a
header ``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS``, but a track with several tags
continues its row with one more field per tag (the header names only the first). A listed
file that is missing or has zero bytes is a failure; tracks in no split file get no split.
"""

from __future__ import annotations

import os

import pyarrow as pa

from duet.catalogs.common import Catalog, audio_problem, publish_catalog
from duet.errors import DuetError

SUBSETS = ("genre", "instrument", "moodtheme", "top50tags")
SPLITS = {"train": "train", "validation": "val", "test": "test"}
LABELS_SCHEMA = pa.schema([pa.field("track_id", pa.string(), nullable=False),
                           pa.field("tags", pa.list_(pa.string()), nullable=False),
                           pa.field("artist_id", pa.string(), nullable=False)])  # fmt: skip


def read_tsv(path: str) -> list[dict]:
    """Rows of an MTG-Jamendo TSV: ``track_id``, ``artist_id``, ``path``, ``tags`` (every
    field from the sixth on)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:4] != ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH"]:
            raise DuetError(f"{path}: expected the header TRACK_ID ARTIST_ID ALBUM_ID PATH ...")
        for line, text in enumerate(f, start=2):
            fields = text.rstrip("\n").split("\t")
            if fields == [""]:
                continue
            if len(fields) < 6:
                raise DuetError(f"{path}:{line}: {len(fields)} fields, expected at least 6")
            rows.append({"track_id": fields[0], "artist_id": fields[1], "path": fields[3],
                         "tags": [t for t in fields[5:] if t]})  # fmt: skip
    return rows


def _metadata(input_dir: str) -> str:
    for folder in (os.path.join(input_dir, "data"), input_dir):
        if os.path.isdir(os.path.join(folder, "splits")):
            return folder
    raise DuetError(f"{input_dir}: no data/splits/ (clone the mtg-jamendo-dataset repository)")


def prepare(input_dir: str, output: str, *, subset: str = "moodtheme", split: int = 0,
            audio_dir: str | None = None) -> dict:  # fmt: skip
    """Read MTG-Jamendo's ``subset`` and its split ``split`` from ``input_dir`` (the cloned
    repository; audio under ``audio_dir``, default ``input_dir/audio``) and publish it."""
    if subset not in SUBSETS:
        raise DuetError(f"subset {subset!r}: expected one of {', '.join(SUBSETS)}")
    meta = _metadata(input_dir)
    table = os.path.join(meta, f"autotagging_{subset}.tsv")
    if not os.path.isfile(table):
        raise DuetError(f"{meta}: no autotagging_{subset}.tsv")
    assignment: dict[str, str] = {}
    for name, value in SPLITS.items():
        path = os.path.join(meta, "splits", f"split-{split}", f"autotagging_{subset}-{name}.tsv")
        if not os.path.isfile(path):
            raise DuetError(f"{meta}: no splits/split-{split}/autotagging_{subset}-{name}.tsv")
        assignment.update({row["track_id"]: value for row in read_tsv(path)})
    audio = audio_dir or os.path.join(input_dir, "audio")
    catalog = Catalog(f"mtg-jamendo-{subset}")
    for row in read_tsv(table):
        path = os.path.join(audio, row["path"])
        low = path.removesuffix(".mp3") + ".low.mp3"
        if not os.path.isfile(path) and os.path.isfile(low):
            path = low
        if problem := audio_problem(path):
            catalog.fail(row["track_id"], path, problem)
            continue
        catalog.tracks.append({"track_id": row["track_id"], "audio_uri": path,
                               "artist_ids": [row["artist_id"]],
                               "split": assignment.get(row["track_id"])})  # fmt: skip
        catalog.labels.append({"track_id": row["track_id"], "tags": row["tags"],
                               "artist_id": row["artist_id"]})  # fmt: skip
    return publish_catalog(catalog, output, LABELS_SCHEMA, {"subset": subset, "split": split})
