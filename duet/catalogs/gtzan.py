"""GTZAN (Tzanetakis & Cook, 2002) as a duet catalogue: genre classification in CLMR, PEMR and
Ferraro et al., on the fault-filtered split (Kereliuk, Sturm & Larsen 2015) those papers use.

Obtain the audio from the dataset's page (``genres/<genre>/<genre>.000NN.wav`` or ``.au``;
the Kaggle copy names the folder ``genres_original``) and the fault-filtered split files
``train_filtered.txt``, ``valid_filtered.txt``, ``test_filtered.txt`` (lines such as
``blues/blues.00012.wav``; published with the sample-level CNN code of Lee et al. and
reused by CLMR); pass the split files' folder as ``split_files`` (default: the input folder).
Clips the filtered split leaves out (repetitions, distortions, mislabels) get no split; a
missing or zero-byte file (the Kaggle copy's ``jazz.00054.wav`` is unreadable) is a failure.

``mirdata`` has a ``gtzan_genre`` loader, but it resolves files through an index it fetches
from Zenodo on first use and has no filtered split; this reader needs neither.
"""

from __future__ import annotations

import os

import pyarrow as pa

from duet.catalogs.common import Catalog, audio_problem, publish_catalog
from duet.errors import DuetError

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae",
          "rock")  # fmt: skip
SPLIT_FILES = {"train_filtered.txt": "train", "valid_filtered.txt": "val",
               "test_filtered.txt": "test"}  # fmt: skip
LABELS_SCHEMA = pa.schema([pa.field("track_id", pa.string(), nullable=False),
                           pa.field("genre", pa.string(), nullable=False)])  # fmt: skip


def audio_folder(input_dir: str) -> str:
    for name in ("genres", "genres_original", "Data/genres_original"):
        if os.path.isdir(os.path.join(input_dir, name)):
            return os.path.join(input_dir, name)
    if all(os.path.isdir(os.path.join(input_dir, g)) for g in GENRES):
        return input_dir
    raise DuetError(f"{input_dir}: no genres/ (or genres_original/) folder with the 10 genres")


def read_split(folder: str) -> dict[str, str]:
    """``<genre>.000NN`` → split from the three filtered split files."""
    out: dict[str, str] = {}
    for name, split in SPLIT_FILES.items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise DuetError(f"{folder}: no {name} (the fault-filtered split files)")
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    out[os.path.basename(line.strip()).rsplit(".", 1)[0]] = split
    return out


def prepare(input_dir: str, output: str, *, split_files: str | None = None) -> dict:
    """Read GTZAN from ``input_dir`` and publish its catalogue in ``output``."""
    audio = audio_folder(input_dir)
    split = read_split(split_files or input_dir)
    catalog = Catalog("gtzan")
    for genre in GENRES:
        folder = os.path.join(audio, genre)
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        for name in names:
            if not name.endswith((".wav", ".au")):
                continue
            track_id = name.rsplit(".", 1)[0]
            path = os.path.join(folder, name)
            if problem := audio_problem(path):
                catalog.fail(track_id, path, problem)
                continue
            catalog.tracks.append({"track_id": track_id, "audio_uri": path,
                                   "genres": [genre], "split": split.get(track_id)})  # fmt: skip
            catalog.labels.append({"track_id": track_id, "genre": genre})
    if not catalog.tracks:
        raise DuetError(f"{audio}: no GTZAN audio file")
    seen = {r["track_id"] for r in catalog.tracks} | {r["track_id"] for r in catalog.failures}
    for track_id in sorted(set(split) - seen):  # listed by the split, absent from the folders
        catalog.fail(track_id, os.path.join(audio, track_id.split(".")[0], f"{track_id}.wav"),
                     "missing audio file")  # fmt: skip
    return publish_catalog(catalog, output, LABELS_SCHEMA, {"split": "fault-filtered"})
