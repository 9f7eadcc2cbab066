"""One tar member of a stream (encoded bytes and the fields its index row records), and the
encodings every producer shares: ``.npy`` without pickle and the ``.json`` sidecar."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

from duet.hashing import BLOCK_BYTES, block_digests, sha256_hex


@dataclass
class Member:
    """One encoded tar member of one stream and its index fields."""

    stream: str
    extension: str
    data: bytes
    payload_offset: int
    format: str
    dtype: str
    sample_rate: int
    duration: float
    profile: str | None = None
    samples: int | None = None
    frames: int | None = None
    n_mels: int | None = None

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)

    def blocks(self) -> dict:
        """The index fields that let a reader verify a crop (npy members; FLAC members are
        read whole and verified by ``sha256``)."""
        if self.format != "npy":
            return {"block_size": None, "block_digests": None}
        payload = memoryview(self.data)[self.payload_offset :]
        return {"block_size": BLOCK_BYTES, "block_digests": block_digests(payload)}


def npy_bytes(array: np.ndarray) -> tuple[bytes, int]:
    """``.npy`` bytes (no pickle) and the length of their header."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    data = buf.getvalue()
    return data, len(data) - array.nbytes


def mel_member(stream: str, profile: str, sample_rate: int, duration: float,
               frames: np.ndarray) -> Member:  # fmt: skip
    """A mel member: float16 time-major ``[frames, n_mels]``, so a crop is one byte range;
    ``duration`` in seconds of the audio it covers."""
    data, header = npy_bytes(frames)
    return Member(
        stream=stream, extension="npy", data=data, payload_offset=header, format="npy",
        dtype="float16", sample_rate=sample_rate, duration=duration,
        profile=profile, frames=frames.shape[0], n_mels=frames.shape[1],
    )  # fmt: skip


def sidecar_bytes(track_id: str, member: Member, info: dict) -> bytes:
    """The ``<key>.json`` member that travels with each array member."""
    body = {"track_id": track_id, "stream": member.stream, "format": member.format,
            "dtype": member.dtype, "sample_rate": member.sample_rate,
            "duration": member.duration, **info}  # fmt: skip
    if member.profile is not None:
        body.update(profile=member.profile, frames=member.frames, n_mels=member.n_mels)
    else:
        body["samples"] = member.samples
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
