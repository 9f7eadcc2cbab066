"""Every user mistake through the real command line (a subprocess, as a user runs it): one line
``duet <command>: <what is wrong> (<what to do>)``, exit status 1 (2 for a command line that
cannot be parsed), no traceback, and nothing published where nothing valid was produced."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from duet import schemas
from tests.support.tables import write_track_meta


def duet(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "duet.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, **kw)  # fmt: skip


def error_line(result: subprocess.CompletedProcess, command: str, status: int = 1) -> str:
    """The run failed as a user must see it: ``status``, no traceback, and stderr's last line
    ``duet <command>: ...``; returns that line."""
    assert result.returncode == status, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"duet {command}: "), result.stderr[-3000:]
    assert "a bug in duet" not in line, line
    return line


def markers(root: str) -> list[str]:
    """Every ``_SUCCESS`` and ``LATEST`` under ``root``."""
    return [p for name in ("_SUCCESS", "LATEST")
            for p in glob.glob(os.path.join(root, "**", name), recursive=True)]  # fmt: skip


@pytest.fixture(scope="module")
def audio_glob(catalog) -> str:
    return os.path.join(catalog, "audio", "*", "*")


def test_a_glob_matching_no_file_fails_and_publishes_nothing(tmp_path):
    out = tmp_path / "out"
    result = duet("shards", "--tracks", str(tmp_path / "none" / "*.mp3"), "--output", str(out))
    line = error_line(result, "shards")
    assert f"no files match '{tmp_path}/none/*.mp3'" in line
    assert not out.exists()


def test_an_option_neither_duet_nor_beam_knows_is_refused_with_the_closest(audio_glob, tmp_path):
    out = tmp_path / "out"
    result = duet("shards", "--tracks", audio_glob, "--output", str(out), "--max-secnds", "2")
    line = error_line(result, "shards", status=2)
    assert "unrecognized arguments: --max-secnds 2" in line and "--max-seconds" in line
    assert not out.exists()
    assert "Unparseable" not in result.stderr


def test_a_missing_option_is_a_one_line_usage_error():
    line = error_line(duet("shards", "--tracks", "x.parquet"), "shards", status=2)
    assert "--output" in line and "duet shards --help" in line


def test_a_command_that_takes_no_beam_options_refuses_them():
    line = error_line(duet("doctor", "--runner", "DataflowRunner"), "doctor", status=2)
    assert "unrecognized arguments: --runner DataflowRunner" in line


def test_a_manifest_missing_a_column_names_the_option_that_maps_it(catalog, tmp_path):
    manifest = tmp_path / "mine.csv"
    paths = sorted(glob.glob(os.path.join(catalog, "audio", "*", "*")))[:2]
    manifest.write_text("song,file\n" + "".join(f"s{i},{p}\n" for i, p in enumerate(paths)))
    out = tmp_path / "out"
    line = error_line(duet("shards", "--tracks", str(manifest), "--output", str(out)), "shards")
    assert "has no column 'track_id', 'audio_uri'" in line and "song, file" in line
    assert "--id-column and --audio-column" in line and not out.exists()
    result = duet("shards", "--tracks", str(manifest), "--output", str(out), "--streams",
                  "wav-16000", "--id-column", "song", "--audio-column", "file")  # fmt: skip
    assert result.returncode == 0, result.stderr
    index = schemas.read_table(str(out / "index"), schemas.AUDIO_INDEX)
    assert sorted(set(index.column("track_id").to_pylist())) == ["s0", "s1"]


def test_csv_text_where_parquet_is_expected_says_so(tmp_path):
    manifest = tmp_path / "tracks.parquet"
    manifest.write_text("track_id,audio_uri\na,a.mp3\n")
    line = error_line(duet("shards", "--tracks", str(manifest), "--output", str(tmp_path / "o")),
                      "shards")  # fmt: skip
    assert "is not a readable PARQUET table" in line


def test_a_misspelt_stream_suggests_the_closest(audio_glob, tmp_path):
    result = duet("shards", "--tracks", audio_glob, "--output", str(tmp_path / "o"),
                  "--streams", "wav-16000,mel-alnso")  # fmt: skip
    assert "did you mean 'alonso'?" in error_line(result, "shards")
    assert not (tmp_path / "o").exists()


def test_glob_ids_from_file_stems_and_a_no_op_rerun(audio_glob, tmp_path):
    out = str(tmp_path / "out")
    argv = ["shards", "--tracks", audio_glob, "--output", out, "--streams", "wav-16000",
            "--id-from", "stem"]  # fmt: skip
    first = duet(*argv)
    assert first.returncode == 0, first.stderr
    ids = set(
        schemas.read_table(os.path.join(out, "index"), schemas.AUDIO_INDEX)["track_id"].to_pylist()
    )
    assert ids == {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(audio_glob)}
    again = duet(*argv)
    assert again.returncode == 0, again.stderr
    assert f"0 decoded, {len(ids)} unchanged" in again.stdout
    assert "realtime" not in again.stdout


def test_a_missing_checkpoint_is_one_line(tmp_path):
    result = duet("embed", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(tmp_path),
                  "--output", str(tmp_path / "e.parquet"))  # fmt: skip
    assert "no such checkpoint" in error_line(result, "embed")


def test_a_recipe_setting_of_the_wrong_kind_is_one_line(tmp_path):
    result = duet("train", "--recipe", "alonso-co", "--data", str(tmp_path), "--out",
                  str(tmp_path / "run"), "--set", "lr=abc")  # fmt: skip
    assert "--set lr='abc': recipe alonso-co needs a float" in error_line(result, "train")
    assert not (tmp_path / "run").exists()


@pytest.fixture
def embeddings(tmp_path) -> str:
    """12 tracks in 2 clusters, ``t00``..``t11``, as an embedding table."""
    rng = np.random.default_rng(0)
    ids = [f"t{i:02d}" for i in range(12)]
    vectors = np.concatenate([rng.normal(i % 2 * 4, 1, 8) for i in range(12)]).astype(np.float32)
    path = str(tmp_path / "emb.parquet")
    table = pa.table({"track_id": ids, "vector": pa.FixedSizeListArray.from_arrays(vectors, 8)})
    schemas.write_table(table, path, schemas.embeddings_schema(8))
    return path


def test_a_label_column_that_does_not_exist_is_one_line(embeddings, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("track_id,genre\n" + "".join(f"t{i:02d},g{i % 2}\n" for i in range(12)))
    result = duet("evaluate", "--embeddings", embeddings, "--labels", str(labels))
    line = error_line(result, "evaluate")
    assert "has no column 'genres'" in line and "--label-column" in line


def test_evaluate_with_no_labelled_track_matched_shows_ids_of_both_sides(embeddings, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("track_id,genre\n" + "".join(f"x{i},g{i % 2}\n" for i in range(12)))
    result = duet("evaluate", "--embeddings", embeddings, "--labels", str(labels),
                  "--label-column", "genre")  # fmt: skip
    line = error_line(result, "evaluate")
    assert "none of the 12 labelled tracks" in line and "'x0'" in line and "'t00'" in line


def test_evaluate_reports_n_test_and_the_majority_baseline(embeddings, tmp_path):
    meta = write_track_meta(str(tmp_path), {f"t{i:02d}": [f"g{i % 2}"] for i in range(12)})
    result = duet("evaluate", "--embeddings", embeddings, "--labels",
                  os.path.join(meta, "part-00000.parquet"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)["probe"]
    assert probe["n_test"] == 2 and probe["n_train"] == 10
    assert probe["majority_accuracy"] in (0.0, 0.5, 1.0) and probe["accuracy"] == 1.0


def test_debug_shows_the_traceback(tmp_path):
    result = duet("shards", "--tracks", str(tmp_path / "*.mp3"), "--output", str(tmp_path / "o"),
                  "--debug")  # fmt: skip
    assert result.returncode != 0 and "Traceback" in result.stderr
    assert "no files match" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_job_stops_its_workers_and_says_how_to_resume(sig, audio_glob, tmp_path):
    """A decoder that never ends (an ffmpeg that hangs) keeps the job busy; the signal must
    end it at once: its workers gone, exit status 130, one line, nothing published."""
    hang = tmp_path / "ffmpeg"
    hang.write_text("#!/bin/sh\nexec sleep 600\n")
    hang.chmod(0o755)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "duet.cli", "shards", "--tracks", audio_glob, "--output", str(out),
         "--streams", "wav-16000", "--decoder", "ffmpeg"],
        env={**os.environ, "DUET_FFMPEG": str(hang)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not any("sleep" in " ".join(c.cmdline()) for c in _children(proc.pid)):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    workers = _children(proc.pid)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1] == (
        "duet shards: interrupted; re-run the same command to resume"
    )
    assert "Traceback" not in stderr
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    assert not markers(str(out))


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_a_format_that_reads_nothing_prints_the_parsers_reason(catalog, tmp_path):
    slices = glob.glob(os.path.join(catalog, "mpd", "*.json"))
    out = tmp_path / "data"
    result = duet("playlists", "--input", *slices, "--format", "melon", "--output", str(out))
    line = error_line(result, "playlists")
    assert "no playlist read from 1 file(s) as --format melon" in line
    assert "expected a JSON list of records" in line and "check --format" in line
    assert not markers(str(out))


def test_playlist_ids_matching_no_audio_show_both_sides_and_the_options(audio_glob, catalog,
                                                                        tmp_path):  # fmt: skip
    root = str(tmp_path / "data")
    shards = duet("shards", "--tracks", audio_glob, "--output", root, "--streams", "wav-16000",
                  "--id-from", "stem")  # fmt: skip
    assert shards.returncode == 0, shards.stderr
    result = duet("playlists", "--input", os.path.join(catalog, "mpd"), "--format", "mpd",
                  "--output", root, "--tracks", root)  # fmt: skip
    line = error_line(result, "playlists")
    assert "none of the playlists' track ids matches a track under --tracks" in line
    assert "'duet:track:00000'" in line and "'00000'" in line
    assert "--id-from" in line and "--track-key" in line
    assert markers(root) == [os.path.join(root, "_SUCCESS")]


def test_pairs_split_reads_the_split_column_of_the_shards_manifest(catalog, tmp_path):
    paths = sorted(glob.glob(os.path.join(catalog, "audio", "*", "*")))
    split = {f"t{i}": "test" if i % 3 == 0 else "train" for i in range(len(paths))}
    manifest = tmp_path / "tracks.csv"
    manifest.write_text("track_id,audio_uri,split\n" + "".join(
        f"t{i},{p},{split[f't{i}']}\n" for i, p in enumerate(paths)))  # fmt: skip
    root = str(tmp_path / "data")
    shards = duet("shards", "--tracks", str(manifest), "--output", root, "--streams", "mel-alonso")
    assert shards.returncode == 0, shards.stderr
    pairs = duet("pairs", "--data", root, "--strategies", "self_mel", "--epochs", "1",
                 "--split", "train")  # fmt: skip
    assert pairs.returncode == 0, pairs.stderr
    parts = glob.glob(os.path.join(root, "pairs", "run-*", "self_mel", "*", "*.parquet"))
    table = pa.concat_tables([schemas.read_table(p, schemas.PAIRS) for p in parts])
    assert set(table.column("anchor_id").to_pylist()) == {
        t for t, s in split.items() if s == "train"
    }


def test_a_data_root_that_is_not_published_is_one_line(tmp_path):
    result = duet("train", "--recipe", "alonso-co", "--data", str(tmp_path), "--out",
                  str(tmp_path / "run"))  # fmt: skip
    line = error_line(result, "train")
    assert "is not published" in line and "(run duet shards)" in line


def test_a_missing_file_is_one_line(embeddings, tmp_path):
    result = duet("evaluate", "--embeddings", embeddings, "--triplets", str(tmp_path / "none.csv"))
    line = error_line(result, "evaluate")
    assert f"no such file or directory: {tmp_path}/none.csv (check the path)" in line


def test_csv_text_where_a_parquet_table_is_read_says_it_must_be_parquet(tmp_path):
    embeddings = tmp_path / "emb.parquet"
    embeddings.write_text("id,vector\na,1\n")
    line = error_line(duet("evaluate", "--embeddings", str(embeddings)), "evaluate")
    assert f"{embeddings} must be a Parquet table but is text (CSV?)" in line


def test_a_mistake_inside_a_beam_step_is_one_line_without_beams_tracebacks(tmp_path):
    """Pairs run their epochs on worker threads, which hand a step's exception back as
    traceback text (and print it themselves): the command still ends in one line."""
    result = duet("pairs", "--data", str(tmp_path), "--strategies", "self", "--epochs", "1")
    assert "crop strategies need the audio index" in error_line(result, "pairs")
    assert not markers(str(tmp_path))


def test_cooccurrence_over_a_csv_or_a_table_without_track_ids_is_one_line(tmp_path):
    flat = tmp_path / "flat.parquet"
    pq.write_table(pa.table({"playlist_id": ["p"], "track_id": ["t"]}), flat)
    line = error_line(duet("cooccurrence", "--playlists", str(flat), "--output",
                           str(tmp_path / "o1")), "cooccurrence")  # fmt: skip
    assert "required column 'track_ids' is missing" in line and "duet playlists" in line
    text = tmp_path / "ids.csv"
    text.write_text("a,b\n1,2\n")
    line = error_line(duet("cooccurrence", "--playlists", str(text), "--output",
                           str(tmp_path / "o2")), "cooccurrence")  # fmt: skip
    assert "must be a Parquet table but is text (CSV?)" in line
    assert markers(str(tmp_path / "o1")) == markers(str(tmp_path / "o2")) == []


def test_a_misspelt_beam_runner_is_a_user_error_naming_the_runners(tmp_path):
    flat = tmp_path / "flat.parquet"
    pq.write_table(pa.table({"playlist_id": ["p"], "track_ids": [["t"]]}), flat)
    line = error_line(duet("cooccurrence", "--playlists", str(flat), "--output",
                           str(tmp_path / "o"), "--runner", "DirectRuner"), "cooccurrence")  # fmt: skip
    assert "DirectRuner" in line and "DirectRunner" in line and "a bug" not in line
