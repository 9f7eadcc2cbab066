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
from duet.schemas import track_id_problem

_GLOB_CHARS = set("*?[")


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


def _records_from_table(data: bytes, kind: str) -> list[dict | None]:
    if kind == "parquet":
        table = schemas.parquet_from_bytes(data)
    else:
        options = pacsv.ConvertOptions(strings_can_be_null=False, column_types={
            "track_id": pa.string(), "audio_uri": pa.string(), "split": pa.string()})  # fmt: skip
        table = pacsv.read_csv(schemas.arrow_reader(data), convert_options=options)
    missing = {"track_id", "audio_uri"} - set(table.column_names)
    if missing:
        raise ValueError(f"manifest has no column(s) {sorted(missing)}; found {table.column_names}")
    columns = [c for c in ("track_id", "audio_uri", "split") if c in table.column_names]
    return table.select(columns).to_pylist()


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
        problem = track_id_problem(track_id)
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


def _glob_files(pattern: str) -> list[tuple[str, str]]:
    """(uri, id) per matched file; the id is the path relative to the glob's fixed prefix."""
    parts = pattern.split("/")
    fixed = []
    for part in parts:
        if any(c in part for c in _GLOB_CHARS):
            break
        fixed.append(part)
    base = "/".join(fixed)
    matched = storage.glob(pattern)
    base_len = len(storage.local_path(base).rstrip("/")) + 1 if base else 0
    return sorted((uri, uri[base_len:]) for uri in matched)


def read_manifest(spec: str) -> Manifest:
    """Rows to process and failure rows for everything that cannot be processed."""
    failures: list[dict] = []
    if is_glob(spec):
        files = _glob_files(spec)
        listing = "\n".join(f"{uri}\t{storage.file_size_and_mtime(uri)[0]}" for uri, _ in files)
        fingerprint = hashlib.sha256(listing.encode()).hexdigest()
        records: list[dict | None] = [{"track_id": tid, "audio_uri": uri} for uri, tid in files]
        base = ""
    else:
        data = storage.read_bytes(spec)
        fingerprint = hashlib.sha256(data).hexdigest()
        lower = spec.lower()
        if lower.endswith(".parquet"):
            records = _records_from_table(data, "parquet")
        elif lower.endswith(".csv"):
            records = _records_from_table(data, "csv")
        elif lower.endswith((".jsonl", ".json", ".ndjson")):
            records = _records_from_jsonl(data, failures)
        else:
            raise ValueError(
                f"unknown manifest format for {spec!r}: use .parquet, .csv, .jsonl or a glob"
            )
        base = storage.dirname(spec)
    rows = _reject_duplicates(_check_rows(records, base, failures), failures)
    return Manifest(rows, failures, fingerprint, len(records))
