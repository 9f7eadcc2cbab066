"""Helpers shared by the tests: real inputs and one-call job runs."""

from __future__ import annotations

import os
import re
import struct

import numpy as np
import pyarrow as pa
import soundfile

from duet import lease, publish, schemas
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


def stored(folder: str, logical: str) -> str:
    """The path of a published folder's file ``logical`` (``stats/mel-ferraro.json``): the
    tagged name its ``_SUCCESS`` lists."""
    return os.path.join(folder, publish.open_folder(folder, "a test").name(logical))


def listed_names(folder: str) -> list[str]:
    """The files of ``folder`` (not below it) with the tags taken out of their names
    (``part-00000-<tag>.parquet`` → ``part-00000.parquet``) and no lock file, sorted: what a
    reader of the folder sees, whatever generation wrote it."""
    names = [n for n in os.listdir(folder) if not n.startswith(lease.LOCK)]
    return sorted(re.sub(rf"-[0-9a-f]{{{publish.TAG_LENGTH}}}(?=\.)", "", n) for n in names)


def by_logical(files: dict[str, bytes]) -> dict[str, bytes]:
    """A :func:`tree` of a published folder with each listed file under its logical name
    (``_SUCCESS`` kept; files the marker does not list dropped), to compare generations whose
    tags differ."""
    listed = publish.parse(files["_SUCCESS"])["files"]
    return {"_SUCCESS": files["_SUCCESS"],
            **{logical: files[e["name"]] for logical, e in listed.items()}}  # fmt: skip


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
    """Every file below ``root`` by relative path, with its bytes; lock files (``_LOCK``, which
    the commands keep and library runs do not make) are not output and are left out."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if name.startswith(lease.LOCK):
                continue
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


def _encode(samples: np.ndarray, rate: int, args: list[str], path: str) -> str:
    """Encode float32 ``[samples, channels]`` with the real ffmpeg and codec ``args``."""
    import subprocess

    from duet.ffmpeg import ffmpeg_path

    cmd = [ffmpeg_path(), "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(rate),
           "-ac", str(samples.shape[1]), "-i", "pipe:0", *args, "-fflags", "+bitexact",
           "-flags:a", "+bitexact", path]  # fmt: skip
    subprocess.run(cmd, input=np.ascontiguousarray(samples, "<f4").tobytes(), check=True)
    return path


def _join(path: str, *parts: str) -> str:
    with open(path, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                out.write(f.read())
    return path


def _cut(path: str, source: str, fraction: float) -> str:
    with open(source, "rb") as f:
        data = f.read()
    with open(path, "wb") as out:
        out.write(data[: int(len(data) * fraction)])
    return path


def damaged_audio(root: str) -> dict[str, str]:
    """name → path of files whose decoded length or level a decoder can get silently wrong,
    and the clean file of each accepted codec (2-s tones, made with the real ffmpeg)."""
    mp3, ogg = ["-c:a", "libmp3lame", "-b:a", "128k"], ["-c:a", "libvorbis", "-q:a", "4"]
    p = {}

    def make(name, seconds, rate, channels, args, freq=440.0):
        p[name] = _encode(tone(seconds, rate, channels, freq), rate, args, os.path.join(root, name))

    make("clean.mp3", 2, 44100, 2, mp3)
    make("second.mp3", 2, 44100, 2, mp3, freq=330.0)
    make("half-rate.mp3", 2, 22050, 2, mp3)
    make("mono.mp3", 2, 44100, 1, mp3)
    make("four.mp3", 4, 44100, 2, mp3)
    make("clean.flac", 2, 44100, 2, ["-c:a", "flac"])
    make("second.flac", 2, 44100, 2, ["-c:a", "flac"], freq=330.0)
    make("clean.ogg", 2, 44100, 2, ogg)
    make("second.ogg", 2, 44100, 2, ogg, freq=330.0)
    make("mono22k.ogg", 2, 22050, 1, ogg)
    make("clean.opus", 2, 48000, 2, ["-c:a", "libopus", "-b:a", "96k"])
    make("clean.wav", 2, 44100, 2, ["-c:a", "pcm_s16le"])
    make("clean.m4a", 2, 44100, 2, ["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart"])
    p["joined-same.mp3"] = _join(f"{root}/joined-same.mp3", p["clean.mp3"], p["second.mp3"])
    p["joined-rates.mp3"] = _join(f"{root}/joined-rates.mp3", p["clean.mp3"], p["half-rate.mp3"])
    p["joined-channels.mp3"] = _join(f"{root}/joined-channels.mp3", p["mono.mp3"], p["clean.mp3"])
    p["cut.mp3"] = _cut(f"{root}/cut.mp3", p["four.mp3"], 0.5)
    p["cut.wav"] = _cut(f"{root}/cut.wav", p["clean.wav"], 0.5)
    p["cut.m4a"] = _cut(f"{root}/cut.m4a", p["clean.m4a"], 0.5)
    p["joined.flac"] = _join(f"{root}/joined.flac", p["clean.flac"], p["second.flac"])
    p["chained.ogg"] = _join(f"{root}/chained.ogg", p["clean.ogg"], p["second.ogg"])
    p["chained-change.ogg"] = _join(f"{root}/chained-change.ogg", p["clean.ogg"], p["mono22k.ogg"])
    with open(p["clean.flac"], "rb") as f:  # STREAMINFO declaring half the samples present
        data = bytearray(f.read())
    fields = int.from_bytes(data[18:26], "big")
    total = fields & ((1 << 36) - 1)
    data[18:26] = ((fields & ~((1 << 36) - 1)) | (total // 2)).to_bytes(8, "big")
    p["understated.flac"] = os.path.join(root, "understated.flac")
    with open(p["understated.flac"], "wb") as f:
        f.write(data)
    for peak in (2.0, 8.0):  # float exports far beyond full scale
        p[f"peak{peak:g}.wav"] = os.path.join(root, f"peak{peak:g}.wav")
        soundfile.write(p[f"peak{peak:g}.wav"], tone(2, 44100) * 2 * peak, 44100, subtype="FLOAT")
    stray = tone(2, 44100)
    stray[30000] = 1e30
    p["stray.wav"] = os.path.join(root, "stray.wav")
    soundfile.write(p["stray.wav"], stray, 44100, subtype="FLOAT")
    return p
