"""Read the shards job's input: a track manifest (Parquet, CSV, JSONL) or a glob of audio files.

Bad rows never stop the job: each becomes a failure row (stage ``manifest``) with the reason.
Duplicate track ids are an error for every row that carries them, never a silent dedupe.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv

from duet import schemas, storage
from duet.errors import DuetError

_GLOB_CHARS = set("*?[")
ID_FROM = ("path", "stem")
"""How a glob names its tracks: the path below the glob's fixed folder (``rock/a.mp3``), or the
file name without its extension (``a``)."""


class ManifestError(DuetError, ValueError):
    """A manifest that cannot be read at all: no file matches the glob, a column is missing,
    the file is not a table."""


@dataclass(frozen=True)
class Columns:
    """Which manifest columns hold the track id and the audio location, and how a glob names
    its tracks (``--id-column``, ``--audio-column``, ``--id-from``)."""

    track_id: str = "track_id"
    audio_uri: str = "audio_uri"
    id_from: str = "path"

    def fingerprint(self) -> bytes:
        """Bytes that change the manifest's fingerprint when the ids would change (none for
        the defaults, so fingerprints of existing roots stay as they were)."""
        return b"" if self == Columns() else repr(self).encode()


@dataclass(frozen=True)
class ManifestRow:
    row: int
    track_id: str
    audio_uri: str
    split: str | None = None


@dataclass
class Manifest:
    rows: list[ManifestRow]
    failures: list[dict]
    fingerprint: str
    input_rows: int


def _clip(value: object, limit: int = 200) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def is_glob(spec: str) -> bool:
    return any(c in spec for c in _GLOB_CHARS)


def _resolve(uri: str, base: str) -> str:
    if storage.is_remote(uri) or os.path.isabs(uri) or uri.startswith("file://"):
        return uri
    return storage.join(base, uri)


def _records_from_table(data: bytes, kind: str, spec: str, columns: Columns) -> list[dict | None]:
    names = {columns.track_id: "track_id", columns.audio_uri: "audio_uri", "split": "split"}
    try:
        if kind == "parquet":
            table = schemas.ids_as_strings(schemas.parquet_from_bytes(data), (columns.track_id,))
        else:
            options = pacsv.ConvertOptions(strings_can_be_null=False,
                                           column_types=dict.fromkeys(names, pa.string()))  # fmt: skip
            table = pacsv.read_csv(schemas.arrow_reader(data), convert_options=options)
    except pa.ArrowException as exc:
        raise ManifestError(f"{spec} is not a readable {kind.upper()} table "
                            f"({_clip(str(exc).splitlines()[0], 120)})") from None  # fmt: skip
    missing = [c for c in (columns.track_id, columns.audio_uri) if c not in table.column_names]
    if missing:
        options = {columns.track_id: "--id-column", columns.audio_uri: "--audio-column"}
        raise ManifestError(
            f"{spec} has no column {', '.join(repr(c) for c in missing)} (its columns: "
            f"{', '.join(table.column_names[:12])}; name the columns to use with "
            f"{' and '.join(options[c] for c in missing)})"
        )
    kept = [c for c in names if c in table.column_names]
    return table.select(kept).rename_columns([names[c] for c in kept]).to_pylist()


def _records_from_jsonl(data: bytes, failures: list[dict]) -> list[dict | None]:
    records: list[dict | None] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            if not isinstance(value, dict):
                raise ValueError(f"expected an object, got {type(value).__name__}")
        except ValueError as exc:
            failures.append({"track_id": None, "audio_uri": None, "stage": "manifest",
                             "error": f"line {number}: malformed JSON: {exc}"})  # fmt: skip
            records.append(None)
            continue
        records.append(value)
    return records


def _check_rows(records: list[dict | None], base: str, failures: list[dict]) -> list[ManifestRow]:
    rows: list[ManifestRow] = []
    for index, record in enumerate(records):
        if record is None:
            continue
        track_id, uri, split = record.get("track_id"), record.get("audio_uri"), record.get("split")
        problem = schemas.id_problem(track_id)
        track_id = schemas.id_text(track_id) if problem is None else track_id
        if problem is None and (not isinstance(uri, str) or not uri):
            problem = "audio_uri is missing or not a string"
        if problem is None and split is not None and split not in ("train", "val", "test"):
            problem = f"split must be train, val or test, not {_clip(split)}"
        if problem or not isinstance(track_id, str) or not isinstance(uri, str):
            failures.append({"track_id": _clip(track_id, 100_000), "audio_uri": _clip(uri, 100_000),
                             "stage": "manifest", "error": f"row {index}: {problem}"})  # fmt: skip
            continue
        rows.append(ManifestRow(index, track_id, _resolve(uri, base), split))
    return rows


def _reject_duplicates(rows: list[ManifestRow], failures: list[dict]) -> list[ManifestRow]:
    where: dict[str, list[int]] = {}
    for r in rows:
        where.setdefault(r.track_id, []).append(r.row)
    kept = []
    for r in rows:
        seen = where[r.track_id]
        if len(seen) == 1:
            kept.append(r)
            continue
        listed = ", ".join(map(str, seen[:10])) + (" ..." if len(seen) > 10 else "")
        failures.append({"track_id": r.track_id, "audio_uri": r.audio_uri, "stage": "manifest",
                         "error": f"duplicate track_id in manifest rows {listed}"})  # fmt: skip
    return kept


def _glob_files(pattern: str, id_from: str) -> list[tuple[str, str]]:
    """(uri, id) per matched file; the id is the path relative to the glob's fixed prefix
    (``id_from="path"``) or the file name without its extension (``"stem"``)."""
    if id_from not in ID_FROM:
        raise ManifestError(f"--id-from {id_from!r}: expected one of {', '.join(ID_FROM)}")
    parts = pattern.split("/")
    fixed = []
    for part in parts:
        if any(c in part for c in _GLOB_CHARS):
            break
        fixed.append(part)
    base = "/".join(fixed)
    matched = storage.glob(pattern)
    if not matched:
        raise ManifestError(f"no files match {pattern!r} (check the folder and the extension; "
                            "quote the glob so that the shell does not expand it)")  # fmt: skip
    base_len = len(storage.local_path(base).rstrip("/")) + 1 if base else 0
    if id_from == "stem":
        return sorted((uri, os.path.splitext(uri.rsplit("/", 1)[-1])[0]) for uri in matched)
    return sorted((uri, uri[base_len:]) for uri in matched)


def read_manifest(spec: str, columns: Columns = Columns()) -> Manifest:
    """Rows to process and failure rows for every row that cannot be processed.

    ``spec`` is a Parquet, CSV or JSONL table (``columns`` names its id and audio columns) or a
    glob of audio files (``columns.id_from`` names the tracks). Raises ManifestError when
    nothing can be read at all (no file matches, a column is missing, not a table)."""
    failures: list[dict] = []
    if is_glob(spec):
        files = _glob_files(spec, columns.id_from)
        listing = "\n".join(f"{uri}\t{storage.file_size_and_mtime(uri)[0]}" for uri, _ in files)
        fingerprint = hashlib.sha256(listing.encode() + columns.fingerprint()).hexdigest()
        records: list[dict | None] = [{"track_id": tid, "audio_uri": uri} for uri, tid in files]
        base = ""
    else:
        data = storage.read_bytes(spec)
        fingerprint = hashlib.sha256(data + columns.fingerprint()).hexdigest()
        lower = spec.lower()
        if lower.endswith(".parquet"):
            records = _records_from_table(data, "parquet", spec, columns)
        elif lower.endswith(".csv"):
            records = _records_from_table(data, "csv", spec, columns)
        elif lower.endswith((".jsonl", ".json", ".ndjson")):
            records = _records_from_jsonl(data, failures)
            if columns != Columns():
                records = [None if r is None else
                           {"track_id": r.get(columns.track_id), "audio_uri": r.get(columns.audio_uri),
                            "split": r.get("split")} for r in records]  # fmt: skip
        else:
            raise ManifestError(
                f"unknown manifest format for {spec!r} (use .parquet, .csv, .jsonl or a glob)"
            )
        base = storage.dirname(spec)
    rows = _reject_duplicates(_check_rows(records, base, failures), failures)
    return Manifest(rows, failures, fingerprint, len(records))
