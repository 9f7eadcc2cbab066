"""``duet embed``: one vector per indexed track from a trained checkpoint.

A track's vector summarises the encoder's embeddings of its consecutive non-overlapping windows
of the recipe's crop length (the last, partial window is left out) as ``--summary`` says
(:mod:`duet.training.summary`; default: the recipe's paper's). A track shorter than one window
is looped — its frames or samples repeated from its start until the window is full — so every
indexed track gets a vector; the output's Parquet metadata records the summary
(``duet.summary``), the recipe (``duet.recipe``) and, under ``duet.short_tracks``, the rule,
the window and the ids of the looped tracks.
"""

from __future__ import annotations

import json
from typing import TypedDict

import numpy as np
import pyarrow as pa
import torch

from duet import progress, schemas
from duet.errors import DuetError
from duet.training import checkpoint, data, runfiles, systems
from duet.training import summary as summaries
from duet.training.store import Store

SHORT_TRACKS = "looped: repeated from the start to fill one window"
SHORT_TRACKS_KEY = b"duet.short_tracks"


class EmbedSummary(TypedDict):
    """What :func:`embed` wrote: tracks embedded, of which ``looped`` were shorter than the
    ``window`` (rows of the stream) and were looped."""

    tracks: int
    looped: int
    window: int
    stream: str


def windows_of(whole: np.ndarray, length: int) -> np.ndarray:
    """``[count, length, ...]`` consecutive windows of ``whole`` (``[rows, ...]``); a track
    shorter than one window is looped to fill exactly one."""
    rows = whole.shape[0]
    if rows == 0:
        raise DuetError("cannot embed a track of length 0")
    if rows < length:
        return whole[np.arange(length) % rows][None]
    count = rows // length
    return whole[: count * length].reshape(count, length, *whole.shape[1:])


def embed(checkpoint_uri: str, data_uri: str, output: str, endpoint_url: str | None = None,
          device: str | None = None, batch: int = 32, summary: str | None = None) -> EmbedSummary:  # fmt: skip
    """Embed every track of the checkpoint's stream in ``data_uri``; write ``output``
    (Parquet ``id``, ``vector``) and return what was done. Reads are verified against the
    index (:mod:`duet.index`)."""
    blob = runfiles.read(checkpoint_uri, endpoint_url)
    if blob is None:
        raise checkpoint.CheckpointError(f"{checkpoint_uri}: no such checkpoint")
    saved = checkpoint.loads(blob, checkpoint_uri)
    recipe = {**saved["recipe"], "views": tuple(data.View(**v) for v in saved["recipe"]["views"])}
    model = systems.build(recipe, saved["dims"])
    model.load_state_dict(saved["model"])
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = model.to(dev).eval()
    view = next(v for v in recipe["views"] if v.stream)
    assert view.stream is not None
    kind = summary or summaries.default_summary(recipe)
    length = summaries.window_length(recipe, view.length, kind)
    root = data.Root(Store(data_uri, endpoint_url=endpoint_url))
    members = root.members.get(view.stream, {})
    if not members:
        raise DuetError(f"{data_uri} has no {view.stream} tracks to embed (it has "
                        f"{', '.join(root.streams) or 'none'})")  # fmt: skip
    stats = root.stats(view.profile) if view.profile else None
    ids, vectors, looped = [], [], []
    with torch.no_grad():
        for track, member in progress.steps(sorted(members.items()), desc="embed", unit="trk"):
            whole = root.read_window(view.stream, track, 0, member.length, verify=True)
            if member.length < length:
                looped.append(track)
            windows = windows_of(whole, length)
            if stats is not None:
                windows = (windows - stats.mean) / stats.std
            ids.append(track)
            vectors.append(summaries.track_vector(model, windows, kind, dev, batch))
    matrix = np.stack(vectors).astype(np.float32)
    table = pa.table({"track_id": ids, "vector": pa.FixedSizeListArray.from_arrays(
        pa.array(matrix.reshape(-1)), matrix.shape[1])})  # fmt: skip
    short = {"stream": view.stream, "window": length, "rule": SHORT_TRACKS, "looped": len(looped),
             "looped_ids": looped}  # fmt: skip
    schema = schemas.embeddings_schema(matrix.shape[1]).with_metadata(
        {summaries.METADATA_KEY: kind.encode(), b"duet.recipe": str(recipe["name"]).encode(),
         SHORT_TRACKS_KEY: json.dumps(short).encode()}
    )  # fmt: skip
    runfiles.write(output, schemas.to_parquet_bytes(table, schema), endpoint_url)
    return {"tracks": len(ids), "looped": len(looped), "window": length,
            "stream": view.stream}  # fmt: skip
