"""What every evaluation-dataset catalogue writes: a track manifest (``duet shards --tracks``),
a labels table (``duet evaluate --labels``), a splits table (``--splits``) and the failures,
published under one ``_SUCCESS`` marker written last (removed first when rewriting)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pyarrow as pa

from duet import publish, schemas, storage
from duet.errors import DuetError

TRACKS = "tracks.parquet"
LABELS = "labels.parquet"
SPLITS = "splits.parquet"
FAILURES = "failures.parquet"


@dataclass
class Catalog:
    """Rows of one catalogue as they are read: tracks (manifest rows), labels (``track_id``
    plus the dataset's label columns), failures (``track_id, audio_uri, stage, error``), and
    the audio files it wrote itself (relative name → size), listed in its marker."""

    dataset: str
    tracks: list[dict] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    audio: dict[str, int] = field(default_factory=dict)  # files the catalogue wrote: name → size

    def fail(self, track_id: str, audio_uri: str, error: str) -> None:
        self.failures.append({"track_id": track_id, "audio_uri": audio_uri, "stage": "catalog",
                              "error": error})  # fmt: skip


def audio_problem(path: str) -> str | None:
    """Why an audio file cannot be used as it is listed (missing, empty), or None."""
    if not os.path.isfile(path):
        return "missing audio file"
    if os.path.getsize(path) == 0:
        return "zero-byte audio file"
    return None


def publish_catalog(catalog: Catalog, output: str, labels_schema: pa.Schema, extra: dict) -> dict:
    """Write the four tables under ``output`` and its ``_SUCCESS`` (counts, per-split counts,
    failure reasons and ``extra``, and the files it lists); returns the marker's body.

    The tables keep their plain names (``tracks.parquet`` is what ``duet shards --tracks``
    takes, like any manifest a user writes); the marker is replaced in one step after them. A
    catalogue without one usable track is a ``DuetError`` and publishes nothing (a previous
    catalogue stays as it was)."""
    if not catalog.tracks:
        why = sorted({row["error"] for row in catalog.failures})
        raise DuetError(f"{catalog.dataset}: no usable track ({len(catalog.failures)} failed: "
                        f"{', '.join(why) or 'none listed'}); nothing published")  # fmt: skip
    splits = [
        {"track_id": r["track_id"], "split": r["split"]} for r in catalog.tracks if r["split"]
    ]
    tables = {
        TRACKS: (schemas.from_rows(catalog.tracks, schemas.TRACK_MANIFEST), schemas.TRACK_MANIFEST),
        LABELS: (schemas.from_rows(catalog.labels, labels_schema), labels_schema),
        SPLITS: (schemas.from_rows(splits, schemas.SPLITS), schemas.SPLITS),
        FAILURES: (schemas.from_rows(catalog.failures, schemas.FAILURES), schemas.FAILURES),
    }
    files: dict[str, dict] = {}
    for name, (table, schema) in tables.items():
        data = schemas.to_parquet_bytes(table, schema)
        storage.write_bytes(storage.join(output, name), data)
        files |= publish.entry(name, name, len(data))
    for name, size in catalog.audio.items():  # listed, so the generation keeps them
        files |= publish.entry(name, name, size)
    per_split: dict[str, int] = {}
    for row in catalog.tracks:
        per_split[row["split"] or "none"] = per_split.get(row["split"] or "none", 0) + 1
    reasons: dict[str, int] = {}
    for row in catalog.failures:
        reasons[row["error"]] = reasons.get(row["error"], 0) + 1
    body = {"dataset": catalog.dataset, "counts": {"tracks": len(catalog.tracks),
            "failures": len(catalog.failures), "splits": per_split, "failure_reasons": reasons},
            **extra}  # fmt: skip
    return publish.commit(output, body, files, what=output)
