"""Read published audio shards through their index: one ranged read per member.

    index = AudioIndex.open("out/")            # refuses folders without _SUCCESS
    wav = index.load("duet:track:00003", "wav-22050")          # int16 [samples]
    patch = index.read_frames("duet:track:00003", "mel-alonso", start=100, count=256)

``read_frames`` fetches only the bytes of the requested frames (or samples): members are
time-major ``.npy``, so any crop is one contiguous byte range.
"""

from __future__ import annotations

import io
import json

import numpy as np
import soundfile

from duet import layout, publish, schemas, storage
from duet.hashing import sha256_hex


class IntegrityError(ValueError):
    """A member's bytes do not match the sha256 recorded in the index."""


class AudioIndex:
    def __init__(self, root: str, table, success: dict):
        self.root = root
        self.success = success
        self._rows = {(r["track_id"], r["stream"]): r for r in table.to_pylist()}
        self.streams = sorted({s for _, s in self._rows})
        self.track_ids = sorted({t for t, _ in self._rows})

    @classmethod
    def open(cls, root: str) -> AudioIndex:
        success = publish.require_success(root)
        return cls(
            root, schemas.read_table(layout.at(root, layout.INDEX), schemas.AUDIO_INDEX), success
        )

    def __len__(self) -> int:
        return len(self.track_ids)

    def entry(self, track_id: str, stream: str) -> dict:
        try:
            return self._rows[(track_id, stream)]
        except KeyError:
            if stream not in self.streams:
                raise KeyError(f"unknown stream {stream!r}; published: {self.streams}") from None
            raise KeyError(f"track {track_id!r} is not in the index (see failures/)") from None

    def read_member(self, track_id: str, stream: str, *, verify: bool = False) -> bytes:
        """The member's bytes by one ranged read; ``verify`` checks its sha256."""
        e = self.entry(track_id, stream)
        data = storage.read_range(storage.join(self.root, e["shard"]), e["offset"], e["size"])
        if verify and sha256_hex(data) != e["sha256"]:
            raise IntegrityError(f"sha256 mismatch for {track_id!r} in {e['shard']}")
        return data

    def load(self, track_id: str, stream: str, *, verify: bool = False) -> np.ndarray:
        """The whole array: int16 ``[samples]`` for wav streams, float16 ``[frames, n_mels]`` for mel."""
        e = self.entry(track_id, stream)
        data = self.read_member(track_id, stream, verify=verify)
        if e["format"] == "flac":
            return soundfile.read(io.BytesIO(data), dtype="int16")[0]
        return np.load(io.BytesIO(data), allow_pickle=False)

    def read_frames(self, track_id: str, stream: str, start: int, count: int) -> np.ndarray:
        """Frames (mel) or samples (wav) ``[start, start + count)`` with one small ranged read."""
        e = self.entry(track_id, stream)
        if e["format"] != "npy":
            raise ValueError(f"{stream} is stored as {e['format']}; crops need --wav-format npy")
        length = e["frames"] if e["frames"] is not None else e["samples"]
        if start < 0 or count < 0 or start + count > length:
            raise IndexError(
                f"crop [{start}, {start + count}) outside [0, {length}) of {track_id!r}"
            )
        width = e["n_mels"] or 1
        item = np.dtype(e["dtype"]).itemsize
        offset = e["offset"] + e["payload_offset"] + start * width * item
        data = storage.read_range(storage.join(self.root, e["shard"]), offset, count * width * item)
        array = np.frombuffer(data, dtype=np.dtype(e["dtype"]).newbyteorder("<"))
        return array.reshape(count, width) if e["n_mels"] else array

    def stats(self, profile: str) -> dict:
        """Per-band ``mean`` and ``std`` of a mel profile over the training split."""
        body = json.loads(storage.read_bytes(layout.at(self.root, layout.mel_stats(profile))))
        return {**body, "mean": np.asarray(body["mean"]), "std": np.asarray(body["std"])}

    def failures(self):
        return schemas.read_table(layout.at(self.root, layout.FAILURES), schemas.FAILURES)
