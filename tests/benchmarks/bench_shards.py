"""Shards job benchmark, side by side in one process run (issue targets in brackets):

- the job (decode + both resamples + alonso mel + npy encode + shard/index write), one worker,
  against the naive per-file librosa code a researcher writes            [>= 10x]
  and against bare ffmpeg decoding of the same files to f32              [>= 65%]
- two local worker processes against one                                 [>= 1.6x]
- peak RSS of the job's worker process on a 20-minute track              [<= 1.5 GB]
- the decode check (reading each file's declared length) per track, as a share of the
  job's time per track                                                   [<= 5 %]

Run: ``make bench`` or ``python tests/benchmarks/bench_shards.py [--files 40] [--seconds 30]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from duet import schemas
from duet.ffmpeg import ffmpeg_path
from duet.pipelines.audio import job as shards
from duet.pipelines.audio.declared import declared_length
from duet.pipelines.audio.mel import presets
from duet.pipelines.audio.track import AudioConfig
from duet.pipelines.beam_io import make_pipeline
from duet.sample_catalog import encode
from duet.synth import GENRES, render

STREAMS = "wav-16000,wav-22050,mel-alonso"
CONFIG = AudioConfig(wav_rates=(16000, 22050), profiles=(presets()["alonso"],))


def make_mp3s(folder: str, count: int, seconds: float) -> list[str]:
    """``count`` distinct 44.1 kHz stereo MP3s of ``seconds`` each (cached in ``folder``)."""
    os.makedirs(folder, exist_ok=True)

    def one(i: int) -> str:
        path = os.path.join(folder, f"{i:03d}-{seconds:g}s.mp3")
        if not os.path.exists(path):
            audio = render(GENRES[i % len(GENRES)], key=i % 12, tempo=90 + i, seconds=seconds,
                           sr=44100, channels=2, rng=np.random.default_rng(i))  # fmt: skip
            encode(audio, 44100, "mp3", path)
        return path

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        return list(pool.map(one, range(count)))


def manifest(files: list[str], path: str, copies: int = 1) -> str:
    """A manifest naming each file ``copies`` times under distinct ids."""
    rows = [
        {"track_id": f"{k}/{os.path.basename(f)}", "audio_uri": f}
        for k in range(copies)
        for f in files
    ]
    schemas.write_table(
        schemas.from_rows(rows, schemas.TRACK_MANIFEST), path, schemas.TRACK_MANIFEST
    )
    return path


def bare_decode(files: list[str]) -> float:
    """ffmpeg decode-only to f32 at the native rate and channel count, one file at a time."""
    start = time.perf_counter()
    for f in files:
        subprocess.run([ffmpeg_path(), "-nostdin", "-v", "error", "-i", f, "-f", "f32le", "pipe:1"],
                       capture_output=True, check=True)  # fmt: skip
    return time.perf_counter() - start


def naive_librosa(files: list[str]) -> float:
    """What a researcher writes: two librosa.load calls and a melspectrogram per file."""
    import librosa

    start = time.perf_counter()
    for f in files:
        y16, _ = librosa.load(f, sr=16000)
        librosa.load(f, sr=22050)
        mel = librosa.feature.melspectrogram(y=y16, sr=16000, n_fft=512, hop_length=256, n_mels=96)
        np.log10(1 + 10000 * mel)
    return time.perf_counter() - start


def job(files: list[str], work: str, beam_args: list[str], *, copies: int = 1, num_shards: int = 16,
        config: AudioConfig = CONFIG) -> float:  # fmt: skip
    """The real shards job through Beam, end to end (pipeline start-up included)."""
    out = tempfile.mkdtemp(dir=work)
    tracks = manifest(files, os.path.join(out, "tracks.parquet"), copies)
    start = time.perf_counter()
    pipeline = make_pipeline(beam_args)
    shards.build(pipeline, shards.ShardsJob(tracks=tracks, output=os.path.join(out, "data"),
                                            config=config, num_shards=num_shards))  # fmt: skip
    pipeline.run().wait_until_finish()
    return time.perf_counter() - start


def declared_seconds_per_file(files: list[str], repeats: int = 5) -> float:
    """Seconds to read one file's declared length (what the decode check adds per track)."""
    start = time.perf_counter()
    for _ in range(repeats):
        for f in files:
            declared_length(f)
    return (time.perf_counter() - start) / (repeats * len(files))


def peak_rss_mb(long_file: str, work: str) -> float:
    """Peak RSS of a one-worker job on one long track (the worker is the CLI process)."""
    out = tempfile.mkdtemp(dir=work)
    tracks = manifest([long_file], os.path.join(out, "tracks.parquet"))
    code = ("import resource, sys; from duet.cli import main; main(sys.argv[1:]); "
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code, "shards", "--tracks", tracks, "--output",
                             os.path.join(out, "data"), "--streams", STREAMS],
                            capture_output=True, text=True, check=True)  # fmt: skip
    return int(result.stdout.split("PEAK")[-1].split()[0]) / 1024


def loop_track(source: str, times: int, path: str) -> str:
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-stream_loop", str(times - 1), "-i", source,
                    "-c", "copy", path], check=True)  # fmt: skip
    return path


THREADS = ["--direct_num_workers", "2", "--direct_running_mode", "multi_threading"]
PROCESSES = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]


def run(files_count: int = 40, seconds: float = 30.0, naive_count: int = 10, long_minutes: float = 20.0,
        scale_copies: int = 6, cache: str | None = None) -> dict:  # fmt: skip
    cache = cache or os.path.join(tempfile.gettempdir(), "duet-bench-audio")
    files = make_mp3s(cache, files_count, seconds)
    ffmpeg_only = AudioConfig(
        wav_rates=CONFIG.wav_rates, profiles=CONFIG.profiles, decoder="ffmpeg"
    )
    r = {
        "files": files_count,
        "seconds": seconds,
        "copies": scale_copies,
        "long_minutes": long_minutes,
    }
    with tempfile.TemporaryDirectory() as work:
        r["check_s"] = declared_seconds_per_file(files)
        r["bare_s"] = bare_decode(files)
        r["naive_s"] = naive_librosa(files[:naive_count]) / naive_count * files_count
        r["job1_s"] = job(files, work, [])
        r["job1_ffmpeg_s"] = job(files, work, [], config=ffmpeg_only)
        r["scale1_s"] = job(files, work, [], copies=scale_copies)
        r["scale_threads_s"] = job(files, work, THREADS, copies=scale_copies)
        r["scale_procs_s"] = job(files, work, PROCESSES, copies=scale_copies)
        long_file = loop_track(
            files[0], max(1, round(long_minutes * 60 / seconds)), os.path.join(work, "long.mp3")
        )
        r["rss_mb"] = peak_rss_mb(long_file, work)
    r["vs_naive"] = r["naive_s"] / r["job1_s"]
    r["vs_bare"] = r["bare_s"] / r["job1_s"]
    r["vs_bare_ffmpeg"] = r["bare_s"] / r["job1_ffmpeg_s"]
    r["threads_x"] = r["scale1_s"] / r["scale_threads_s"]
    r["procs_x"] = r["scale1_s"] / r["scale_procs_s"]
    r["realtime"] = files_count * seconds / r["job1_s"]
    r["check_share"] = r["check_s"] * files_count / r["job1_s"]
    r["naive_realtime"] = files_count * seconds / r["naive_s"]
    return r


def report(r: dict) -> str:
    n, scaled = r["files"], r["files"] * r["copies"]
    return "\n".join([
        f"shards benchmark: {n} x {r['seconds']:g} s 44.1 kHz stereo MP3, streams {STREAMS}",
        f"  naive librosa (load x2 + mel)      {r['naive_s']:8.2f} s  ({r['naive_realtime']:.0f}x realtime)",
        f"  bare ffmpeg decode to f32          {r['bare_s']:8.2f} s",
        f"  duet shards, 1 worker              {r['job1_s']:8.2f} s  ({r['realtime']:.0f}x realtime)",
        f"  duet shards, 1 worker, --decoder ffmpeg {r['job1_ffmpeg_s']:5.2f} s",
        f"  ratio vs naive                     {r['vs_naive']:8.2f} x  [target >= 10]",
        f"  ratio vs bare decode               {r['vs_bare']:8.2f}    [target >= 0.65]",
        f"  ratio vs bare, --decoder ffmpeg    {r['vs_bare_ffmpeg']:8.2f}",
        f"scaling on {scaled} tracks: 1 worker {r['scale1_s']:.2f} s, 2 threads {r['scale_threads_s']:.2f} s, "
        f"2 processes {r['scale_procs_s']:.2f} s",
        f"  2 workers (multi_threading) vs 1   {r['threads_x']:8.2f} x  [target >= 1.6]",
        f"  2 workers (multi_processing) vs 1  {r['procs_x']:8.2f} x",
        f"  peak RSS, {r['long_minutes']:g}-min track            {r['rss_mb']:8.0f} MB [target <= 1536]",
        f"decode check: declared length read in {r['check_s'] * 1e3:.3f} ms per file, "
        f"{r['check_share']:.2%} of the job's time per track [target <= 5 %]",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--naive-files", type=int, default=10)
    parser.add_argument("--long-minutes", type=float, default=20.0)
    parser.add_argument(
        "--copies", type=int, default=6, help="manifest copies for the scaling runs"
    )
    args = parser.parse_args()
    results = run(args.files, args.seconds, args.naive_files, args.long_minutes, args.copies)
    print(report(results))


# ---------------------------------------------------------------- as tests


@pytest.mark.bench
def test_shards_benchmark_meets_its_targets():
    results = run()
    print("\n" + report(results))
    assert results["vs_bare"] >= 0.65
    assert results["threads_x"] >= 1.6
    assert results["rss_mb"] <= 1536
    assert results["check_share"] <= 0.05


def test_benchmark_harness_runs_every_comparison(tmp_path):
    results = run(files_count=2, seconds=3, naive_count=1, long_minutes=0.2, scale_copies=2,
                  cache=str(tmp_path))  # fmt: skip
    text = report(results)
    for key in (
        "naive_s",
        "bare_s",
        "job1_s",
        "job1_ffmpeg_s",
        "scale1_s",
        "scale_threads_s",
        "scale_procs_s",
        "check_s",
    ):
        assert results[key] > 0, key
    assert 100 < results["rss_mb"] < 1536
    assert "ratio vs naive" in text and "2 workers (multi_threading)" in text


if __name__ == "__main__":
    main()
