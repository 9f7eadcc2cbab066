"""Helpers shared by the tests: real inputs and one-call job runs."""

from __future__ import annotations

import os
import struct

import numpy as np
import pyarrow as pa

from duet import publish, schemas
from duet.pipelines.audio import job as shards
from duet.pipelines.audio.mel import presets
from duet.pipelines.audio.track import AudioConfig
from duet.pipelines.beam_io import make_pipeline

FAST_CONFIG = AudioConfig(profiles=(presets()["alonso"], presets()["ferraro"]), max_duration=60.0)


def tone(seconds: float, sr: int, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    mono = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([mono * (1 - 0.3 * c) for c in range(channels)], axis=1)


def unsupported_codec_wav(path: str) -> None:
    """A WAV whose format tag (0x7777) names no codec ffmpeg knows."""
    payload = np.random.default_rng(0).integers(0, 255, 32000, dtype=np.uint8).tobytes()
    fmt = struct.pack("<HHIIHH", 0x7777, 1, 16000, 32000, 2, 16)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(payload))
        + payload
    )
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_manifest(path: str, rows: list[dict]) -> str:
    schemas.write_table(pa.Table.from_pylist(rows), path, schemas.TRACK_MANIFEST)
    return path


def catalog_rows(catalog: str) -> list[dict]:
    """The catalogue's manifest rows with absolute audio paths, to rewrite elsewhere."""
    rows = schemas.read_table(
        os.path.join(catalog, "tracks.parquet"), schemas.TRACK_MANIFEST
    ).to_pylist()
    return [{**r, "audio_uri": os.path.join(catalog, r["audio_uri"])} for r in rows]


def tree(root: str) -> dict[str, bytes]:
    """Every file below ``root`` by relative path, with its bytes."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def run_shards(tracks: str, output: str, *, config: AudioConfig = FAST_CONFIG, num_shards: int | None = 3,
               beam_args: list[str] | None = None) -> dict:  # fmt: skip
    """Run the real Beam job (FnApiRunner) and return its ``_SUCCESS`` body."""
    job = shards.ShardsJob(tracks=tracks, output=output, config=config, num_shards=num_shards)
    pipeline = make_pipeline(beam_args or [])
    shards.build(pipeline, job)
    pipeline.run().wait_until_finish()
    return publish.require_success(output)


def crash_on_call(real, n: int):
    """``real`` wrapped to raise "worker killed" on its ``n``-th call (a worker dying mid-run)."""
    calls = {"n": 0}

    def wrapped(*args):
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError("worker killed")
        return real(*args)

    return wrapped


def cli_error(capsys, argv: list[str]) -> str:
    """Run ``duet argv`` in-process; it must fail as a user sees it: exit status 1 and, last on
    stderr, one line ``duet <command>: <what is wrong>``. Returns that line."""
    from duet.cli import main

    capsys.readouterr()
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith(f"duet {argv[0]}: "), lines
    return lines[-1]
