"""MagnaTagATune (Law et al., ISMIR 2009) as a duet catalogue: the evaluation set of CLMR,
PEMR and Alonso-Jiménez et al.

Obtain it from the MIREX / Law et al. page: ``mp3.zip.001``–``003`` (concatenate, unzip: the
folders ``0``–``f``) and ``annotations_final.csv``; pass the folder holding both (the audio may
also sit under ``mp3/``). ``annotations_final.csv`` is tab-separated despite its name, every
field double-quoted: ``clip_id``, 188 tag columns of 0/1, ``mp3_path``.

- labels: the 50 most frequent tags over all clips (ties by name), as the tagging papers use;
- split: the standard 12 : 1 : 3 by folder (``0``–``b`` train, ``c`` val, ``d``–``f`` test),
  or ``split_files`` (``train``, ``valid``/``val``, ``test`` text files listing one
  ``mp3_path`` or ``clip_id`` per line, as CLMR and earlier tagging work publish theirs;
  clips in no file are left out of the splits table);
- song: clips cut from one song share a song id (the file name without its ``-<start>-<end>``
  suffix), kept in the labels table so that one song never appears twice in a batch or on both
  sides of a split; ``unit="song"`` makes the song the track, its clips decoded and
  concatenated in time order into ``output/audio/<hash>.flac`` as CLMR does (ids never
  become file names), its clips' tags merged;
- a listed file that is missing or has zero bytes (the archive has a few) is a failure with
  its reason, never a stop; undecodable audio is caught by ``duet shards``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re

import numpy as np
import pyarrow as pa
import soundfile

from duet import storage
from duet.catalogs.common import Catalog, audio_problem, publish_catalog
from duet.errors import DuetError

ANNOTATIONS = "annotations_final.csv"
TOP = 50
TRAIN_FOLDERS, VAL_FOLDERS, TEST_FOLDERS = set("0123456789ab"), {"c"}, set("def")
LABELS_SCHEMA = pa.schema([
    pa.field("track_id", pa.string(), nullable=False),
    pa.field("tags", pa.list_(pa.string()), nullable=False),
    pa.field("song", pa.string(), nullable=False),
    pa.field("clip_ids", pa.list_(pa.string()), nullable=False),
])  # fmt: skip
_CLIP_SUFFIX = re.compile(r"-\d+-\d+\.mp3$")


def song_of(mp3_path: str) -> str:
    """The song a clip was cut from: its file name without ``-<start>-<end>.mp3``."""
    name = mp3_path.rsplit("/", 1)[-1]
    return _CLIP_SUFFIX.sub("", name) if _CLIP_SUFFIX.search(name) else name.removesuffix(".mp3")


def folder_split(mp3_path: str) -> str | None:
    """The standard split of a clip from its folder (the first path component)."""
    folder = mp3_path.split("/", 1)[0]
    if folder in TRAIN_FOLDERS:
        return "train"
    if folder in VAL_FOLDERS:
        return "val"
    return "test" if folder in TEST_FOLDERS else None


def read_annotations(path: str) -> tuple[list[str], list[dict]]:
    """The tag names and the rows (``clip_id``, ``mp3_path``, ``tags``) of
    ``annotations_final.csv``; a malformed row is an error naming its line."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quotechar='"')
        header = next(reader, None)
        if not header or header[0] != "clip_id" or header[-1] != "mp3_path":
            raise DuetError(f"{path}: expected a tab-separated header clip_id ... mp3_path")
        tags = header[1:-1]
        rows = []
        for line, fields in enumerate(reader, start=2):
            if not fields:
                continue
            if len(fields) != len(header):
                raise DuetError(
                    f"{path}:{line}: {len(fields)} fields, the header has {len(header)}"
                )
            flags = fields[1:-1]
            rows.append({"clip_id": fields[0], "mp3_path": fields[-1],
                         "tags": [t for t, v in zip(tags, flags, strict=True) if v.strip() == "1"]})  # fmt: skip
    return tags, rows


def top_tags(rows: list[dict], top: int = TOP) -> list[str]:
    """The ``top`` most frequent tags, most frequent first, ties by name."""
    counts: dict[str, int] = {}
    for row in rows:
        for tag in row["tags"]:
            counts[tag] = counts.get(tag, 0) + 1
    return sorted(counts, key=lambda t: (-counts[t], t))[:top]


def read_split_files(folder: str) -> dict[str, str]:
    """``mp3_path`` or ``clip_id`` → split from ``train*``, ``valid*``/``val*``, ``test*`` text
    files in ``folder`` (one entry per line; a tab-separated line's last field is used)."""
    names = {"train": "train", "valid": "val", "val": "val", "test": "test"}
    out: dict[str, str] = {}
    for entry in sorted(os.listdir(folder)):
        stem = entry.split(".", 1)[0].split("_", 1)[0].lower()
        if stem not in names or not os.path.isfile(os.path.join(folder, entry)):
            continue
        with open(os.path.join(folder, entry), encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    out[line.rstrip("\n").split("\t")[-1].strip()] = names[stem]
    if not out:
        raise DuetError(f"{folder}: no train / valid / test split file")
    return out


def clip_start(mp3_path: str) -> int:
    """The clip's start in seconds within its song (``-<start>-<end>.mp3``), else 0."""
    found = re.search(r"-(\d+)-\d+\.mp3$", mp3_path)
    return int(found.group(1)) if found else 0


def join_clips(clips: list[tuple[str, str]], target: str, catalog: Catalog) -> list[str]:
    """One song's clips (``clip_id, path``, in time order) decoded and concatenated into one
    FLAC at ``target``, as CLMR concatenates them; returns the clip ids joined. A clip that
    does not decode, or whose rate or channels differ from the first one's, is a failure."""
    parts, joined, rate = [], [], None
    for clip_id, path in clips:
        try:
            audio, sr = soundfile.read(path, dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError) as exc:
            catalog.fail(clip_id, path, f"undecodable clip: {str(exc).splitlines()[0]}")
            continue
        if rate is not None and (sr != rate or audio.shape[1] != parts[0].shape[1]):
            catalog.fail(clip_id, path, "clip's rate or channels differ from its song's")
            continue
        rate = sr
        parts.append(audio)
        joined.append(clip_id)
    if parts:
        buffer = io.BytesIO()
        soundfile.write(buffer, np.concatenate(parts), rate, format="FLAC")
        storage.write_bytes(target, buffer.getvalue())
    return joined


def prepare(input_dir: str, output: str, *, split_files: str | None = None, top: int = TOP,
            unit: str = "clip") -> dict:  # fmt: skip
    """Read MagnaTagATune from ``input_dir`` and publish its catalogue in ``output``; returns
    the ``_SUCCESS`` body. Raises ``DuetError`` when the annotations are missing or malformed."""
    annotations = os.path.join(input_dir, ANNOTATIONS)
    if not os.path.isfile(annotations):
        raise DuetError(f"{input_dir}: no {ANNOTATIONS} (download it beside the mp3 folders)")
    if unit not in ("clip", "song"):
        raise DuetError(f"unit {unit!r}: expected clip or song")
    _, rows = read_annotations(annotations)
    vocabulary = top_tags(rows, top)
    keep = set(vocabulary)
    given = read_split_files(split_files) if split_files else None
    audio_root = (
        input_dir if os.path.isdir(os.path.join(input_dir, "0")) else os.path.join(input_dir, "mp3")
    )
    catalog = Catalog("magnatagatune")
    songs: dict[str, dict] = {}
    for row in rows:
        path = os.path.join(audio_root, row["mp3_path"])
        split = (given.get(row["mp3_path"], given.get(row["clip_id"])) if given is not None
                 else folder_split(row["mp3_path"]))  # fmt: skip
        if problem := audio_problem(path):
            catalog.fail(row["clip_id"], path, problem)
            continue
        song = song_of(row["mp3_path"])
        tags = [t for t in vocabulary if t in set(row["tags"]) & keep]
        if unit == "clip":
            catalog.tracks.append({"track_id": row["clip_id"], "audio_uri": path, "split": split})
            catalog.labels.append({"track_id": row["clip_id"], "tags": tags, "song": song,
                                   "clip_ids": [row["clip_id"]]})  # fmt: skip
        elif song not in songs:
            songs[song] = {"split": split, "tags": tags, "clips": [(row["clip_id"], path)]}
        else:
            songs[song]["tags"] = [
                t for t in vocabulary if t in set(songs[song]["tags"]) | set(tags)
            ]
            songs[song]["clips"].append((row["clip_id"], path))
    for song, entry in songs.items():
        clips = sorted(entry["clips"], key=lambda clip: clip_start(clip[1]))
        name = f"audio/{hashlib.sha1(song.encode()).hexdigest()[:20]}.flac"
        target = storage.join(output, *name.split("/"))
        joined = join_clips(clips, target, catalog)
        if not joined:
            continue
        catalog.audio[name] = storage.file_size_and_mtime(target)[0]
        catalog.tracks.append({"track_id": song, "audio_uri": target, "split": entry["split"]})
        catalog.labels.append({"track_id": song, "tags": entry["tags"], "song": song,
                               "clip_ids": joined})  # fmt: skip
    return publish_catalog(catalog, output, LABELS_SCHEMA,
                           {"tags": vocabulary, "unit": unit,
                            "split": "files" if given is not None else "folders 0-b / c / d-f"})  # fmt: skip
