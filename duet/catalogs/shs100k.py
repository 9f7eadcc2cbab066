"""SHS100K (Xu et al., ACM MM 2018: Second Hand Songs 100K) as a duet catalogue: PEMR's
large cover-song identification set, the cover-set id as the label (``clique``, as for
Covers80: ``duet evaluate --protocol pemr-cover --label-column clique``).

Obtain the metadata from the authors' SHS100K repository: ``list`` (tab-separated: set id,
version id, title, performer, YouTube url, status — whether the video could be fetched) and
``SHS100K-TRAIN`` / ``SHS100K-VAL`` / ``SHS100K-TEST`` (set id, version id). The audio is the
user's own download of the urls, one file per version named ``<set>_<version>`` with the
downloader's extension (``.mp3``, ``.m4a``, ``.webm``, ``.opus``, ``.ogg``, ``.wav`` or
``.flac``) in one folder. A header line in any list is skipped; a version whose status says it
is unavailable, or whose file is missing or empty, is a failure with its reason; versions in no
split file get none.
"""

from __future__ import annotations

import os

import pyarrow as pa

from duet.catalogs.common import Catalog, audio_problem, publish_catalog
from duet.errors import DuetError

SPLIT_FILES = {"train": "SHS100K-TRAIN", "val": "SHS100K-VAL", "test": "SHS100K-TEST"}
EXTENSIONS = (".mp3", ".m4a", ".webm", ".opus", ".ogg", ".wav", ".flac")
LABELS_SCHEMA = pa.schema([pa.field("track_id", pa.string(), nullable=False),
                           pa.field("clique", pa.string(), nullable=False),
                           pa.field("title", pa.string()),
                           pa.field("performer", pa.string())])  # fmt: skip


def read_list(path: str) -> list[list[str]]:
    """Tab-separated rows whose first two fields are integers (set id, version id); a first
    row that is not (a header) is skipped, a later one is an error."""
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            row = [field.strip() for field in line.rstrip("\r\n").split("\t")]
            if not any(row):
                continue
            if len(row) < 2 or not (row[0].isdigit() and row[1].isdigit()):
                if number == 1:
                    continue
                raise DuetError(f"{path}:{number}: expected set id and version id, got {line!r}")
            rows.append(row)
    return rows


def unavailable(status: str) -> bool:
    """Whether the list's status field marks the video as not downloadable."""
    return status.strip().lower() in {"0", "false", "no", "n", "unavailable", "not available",
                                      "failed", "error", "removed", "private"}  # fmt: skip


def audio_path(audio_dir: str, track_id: str) -> str:
    """The downloaded file of ``<set>_<version>`` with the first extension present."""
    for ext in EXTENSIONS:
        if os.path.exists(path := os.path.join(audio_dir, track_id + ext)):
            return path
    return os.path.join(audio_dir, track_id + EXTENSIONS[0])


def prepare(input_dir: str, output: str, *, audio_dir: str | None = None) -> dict:
    """Read SHS100K's lists from ``input_dir`` and the audio from ``audio_dir`` (default
    ``input_dir/audio``) and publish the catalogue in ``output``."""
    if not os.path.isfile(meta := os.path.join(input_dir, "list")):
        raise DuetError(f"{input_dir}: no list (SHS100K's metadata: set id, version id, title, "
                        "performer, url, status)")  # fmt: skip
    audio_dir = audio_dir or os.path.join(input_dir, "audio")
    if not os.path.isdir(audio_dir):
        raise DuetError(f"{audio_dir}: no audio folder (<set>_<version>.<ext>; --audio)")
    split_of = {}
    for split, name in SPLIT_FILES.items():
        path = next((p for p in (os.path.join(input_dir, name), os.path.join(input_dir, "meta",
                     name)) if os.path.isfile(p)), None)  # fmt: skip
        if path is None:
            raise DuetError(f"{input_dir}: no {name} (SHS100K's split lists)")
        for row in read_list(path):
            split_of[f"{int(row[0])}_{int(row[1])}"] = split
    catalog = Catalog("shs100k")
    cliques = set()
    for row in read_list(meta):
        track_id = f"{int(row[0])}_{int(row[1])}"
        cliques.add(row[0])
        status = row[5] if len(row) > 5 else ""
        path = audio_path(audio_dir, track_id)
        if unavailable(status):
            catalog.fail(track_id, path, f"video unavailable (list status {status!r})")
            continue
        if problem := audio_problem(path):
            catalog.fail(track_id, path, problem)
            continue
        catalog.tracks.append({"track_id": track_id, "audio_uri": path,
                               "split": split_of.get(track_id)})  # fmt: skip
        catalog.labels.append({"track_id": track_id, "clique": str(int(row[0])),
                               "title": row[2] if len(row) > 2 else None,
                               "performer": row[3] if len(row) > 3 else None})  # fmt: skip
    return publish_catalog(catalog, output, LABELS_SCHEMA, {"cliques": len(cliques)})
