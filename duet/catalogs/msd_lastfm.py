"""The Million Song Dataset with Last.fm tags (Bertin-Mahieux et al., ISMIR 2011) as a duet
catalogue: the 50-tag auto-tagging set of Choi et al. (ISMIR 2016) that CLMR also reports,
with its 201,680 / 11,774 / 28,435 train / valid / test split.

The split and tags circulate as Python pickles (``filtered_list_train.cP``,
``filtered_list_test.cP``, ``msd_id_to_tag_vector.cP`` with ``50tagList.txt``); duet never
unpickles data, so the user turns them into text once, outside duet (docs/papers.md gives the
one-line commands). Read here:

- split files in ``split_dir``: ``train``, ``valid`` (or ``val``, ``validation``) and
  ``test`` with the suffix ``.txt``, ``.csv`` or ``.tsv``; one MSD track id per line in the
  first column (tab or comma separated), a header line allowed;
- the tags file (``tags.tsv`` or ``tags.csv``): one row per track, its id then one tag per
  field (tab or comma separated), a header line allowed;
- audio: the 7digital previews named by track id, nested by the id's 3rd–5th letters
  (``<audio>/A/B/C/TRABC....mp3``) or flat (``<audio>/TRABC....mp3``).

A listed id that is not an MSD track id (``TR`` + 16 letters/digits: ids never become paths
unchecked), a missing or zero-byte preview is a failure with its reason; a track listed in two
split files is a ``DuetError`` (the split leaks). The marker records the split sizes found
beside the published ones.
"""

from __future__ import annotations

import os
import re

import pyarrow as pa

from duet.catalogs.common import Catalog, audio_problem, publish_catalog
from duet.errors import DuetError

PUBLISHED = {"train": 201_680, "val": 11_774, "test": 28_435}
SPLIT_NAMES = {"train": ("train",), "val": ("valid", "val", "validation"), "test": ("test",)}
SUFFIXES = (".txt", ".tsv", ".csv")
TAG_FILES = ("tags.tsv", "tags.csv")
TRACK_ID = re.compile(r"TR[A-Z0-9]{16}")
LABELS_SCHEMA = pa.schema([pa.field("track_id", pa.string(), nullable=False),
                           pa.field("tags", pa.list_(pa.string()), nullable=False)])  # fmt: skip


def fields(line: str) -> list[str]:
    """A text row's fields: tab-separated, else comma-separated, stripped of quotes."""
    parts = line.rstrip("\r\n").split("\t" if "\t" in line else ",")
    return [p.strip().strip('"').strip() for p in parts if p.strip().strip('"').strip()]


def read_rows(path: str) -> list[list[str]]:
    """Rows of a text list; a first row whose first field is not a track id is a header."""
    with open(path, encoding="utf-8-sig") as f:
        rows = [r for r in (fields(line) for line in f) if r]
    if rows and not TRACK_ID.fullmatch(rows[0][0]):
        rows = rows[1:]
    return rows


def split_file(split_dir: str, split: str) -> str:
    for name in SPLIT_NAMES[split]:
        for suffix in SUFFIXES:
            if os.path.isfile(path := os.path.join(split_dir, name + suffix)):
                return path
    raise DuetError(f"{split_dir}: no {SPLIT_NAMES[split][0]}.txt/.csv/.tsv split file "
                    "(convert the pickled split first: docs/papers.md)")  # fmt: skip


def audio_path(audio_dir: str, track_id: str) -> str:
    """The preview of ``track_id``: nested ``A/B/C/<id>.mp3`` if present, else flat."""
    nested = os.path.join(audio_dir, track_id[2], track_id[3], track_id[4], f"{track_id}.mp3")
    return nested if os.path.exists(nested) else os.path.join(audio_dir, f"{track_id}.mp3")


def prepare(input_dir: str, output: str, *, split_dir: str | None = None,
            tags: str | None = None, audio_dir: str | None = None) -> dict:  # fmt: skip
    """Read the MSD-Last.fm split, tags and previews (defaults: ``input_dir`` for the split
    files, ``input_dir/tags.tsv`` or ``tags.csv``, ``input_dir/audio``) and publish the
    catalogue in ``output``."""
    split_dir = split_dir or input_dir
    tags = tags or next((p for n in TAG_FILES if os.path.isfile(p := os.path.join(input_dir, n))),
                        os.path.join(input_dir, TAG_FILES[0]))  # fmt: skip
    audio_dir = audio_dir or os.path.join(input_dir, "audio")
    if not os.path.isfile(tags):
        raise DuetError(f"{tags}: no tags file (track id, tags; convert the pickled tags first: "
                        "docs/papers.md)")  # fmt: skip
    if not os.path.isdir(audio_dir):
        raise DuetError(f"{audio_dir}: no audio folder (the 7digital previews; --audio)")
    listed: dict[str, list[str]] = {s: [r[0] for r in read_rows(split_file(split_dir, s))]
                                    for s in SPLIT_NAMES}  # fmt: skip
    seen: dict[str, str] = {}
    for split, ids in listed.items():
        for track_id in ids:
            if seen.setdefault(track_id, split) != split:
                raise DuetError(f"{track_id} is in both the {seen[track_id]} and the {split} "
                                "split files (the split leaks)")  # fmt: skip
    tag_of = {r[0]: r[1:] for r in read_rows(tags)}
    vocabulary: dict[str, int] = {}
    catalog = Catalog("msd-lastfm")
    for split, ids in listed.items():
        for track_id in ids:
            if not TRACK_ID.fullmatch(track_id):
                catalog.fail(track_id, "", "not an MSD track id")
                continue
            path = audio_path(audio_dir, track_id)
            if problem := audio_problem(path):
                catalog.fail(track_id, path, problem)
                continue
            track_tags = tag_of.get(track_id, [])
            for tag in track_tags:
                vocabulary[tag] = vocabulary.get(tag, 0) + 1
            catalog.tracks.append({"track_id": track_id, "audio_uri": path, "split": split})
            catalog.labels.append({"track_id": track_id, "tags": track_tags})
    untagged = sum(1 for row in catalog.labels if not row["tags"])
    extra = {"split_sizes": {s: len(ids) for s, ids in listed.items()},
             "published_split_sizes": PUBLISHED, "untagged": untagged,
             "tags": sorted(vocabulary, key=lambda t: (-vocabulary[t], t))}  # fmt: skip
    return publish_catalog(catalog, output, LABELS_SCHEMA, extra)
